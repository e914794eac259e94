"""Reports that show marketing what works (DOMAIN.md R17, R21): funnel, velocity, attribution, sales
feedback and score calibration.

Each report is one function ``(uow, request, *, as_of) -> document``: the request is validated by
``domain.analytics.parse_request`` first; the database computes every aggregate (``uow.reports``); this
module only shapes the small results into the documents that ``leadstage report NAME --json`` prints
and that the API and web UI will serve. ``as_of`` is the "now" for segment filters with relative times.

Counting rules (ADR 10):

* funnel, cohort mode: each lead created in the range counts once in every stage it ever reached
  (its furthest stage and all before it), whatever its cycles and current status; ``per_cycle``
  counts attempts: every cycle a lead started, and each forward transition of those leads; period mode counts each transition into a stage (and
  each creation for ``lead``) that happened in the range;
* velocity: completed stage visits (a visit ends at the first transition to another stage), and days
  from creation to the first win;
* attribution: the first MQL, SQL and win of each lead, credited to the lead's touches before it;
* feedback: the review of each MQL by sales, and every reason given;
* calibration: leads created in the range per score band against whether they reached SQL and customer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from leadstage.domain.analytics import (
    FUNNEL_STAGES,
    HOT_PRIORITIES,
    NO_VALUE,
    OUTCOMES,
    AttributionModel,
    Dimension,
    Mode,
    Report,
    ReportRequest,
    cumulative,
    ordered_groups,
    percentiles,
    rate,
    stage_rows,
    wilson_interval,
)
from leadstage.domain.errors import ValidationError
from leadstage.domain.stages import Action, Stage
from leadstage.services import segments as segment_service
from leadstage.services.ports import Grouping, RankedValues, UnitOfWork

PARTITIONING = frozenset(set(Dimension) - {Dimension.SEGMENT})  # every lead in exactly one group


def run_report(uow: UnitOfWork, request: ReportRequest, *, as_of: datetime) -> dict[str, Any]:
    """The document of any report."""
    runners = {
        Report.FUNNEL: funnel_report,
        Report.VELOCITY: velocity_report,
        Report.ATTRIBUTION: attribution_report,
        Report.FEEDBACK: feedback_report,
        Report.CALIBRATION: calibration_report,
    }
    return runners[request.report](uow, request, as_of=as_of)


def _header(request: ReportRequest) -> dict[str, Any]:
    return {
        "report": request.report.value,
        "mode": request.mode.value,
        "by": request.by.value if request.by else None,
        "from": request.first_day.isoformat() if request.first_day else None,
        "to": request.last_day.isoformat() if request.last_day else None,
    }


def grouping_for(uow: UnitOfWork, request: ReportRequest, *, as_of: datetime) -> Grouping:
    """The lead grouping of a request; for segments, every saved segment's parsed filter."""
    if request.by is not Dimension.SEGMENT:
        return Grouping(request.by)
    saved = uow.segments.all()
    if not saved:
        raise ValidationError(
            "--by segment: no segments are saved yet (create one with `leadstage segments create`)",
            field="by",
        )
    return Grouping(
        Dimension.SEGMENT,
        tuple((s.name, segment_service.parse(uow, s.filter)) for s in saved),
        as_of,
    )


def _ranked(rows: RankedValues) -> dict[tuple[str, str], tuple[int, dict[int, float]]]:
    out: dict[tuple[str, str], tuple[int, dict[int, float]]] = {}
    for grp, key, n, rn, value in rows:
        out.setdefault((grp, key), (n, {}))[1][rn] = value
    return out


def _pcts(
    ranked: Mapping[tuple[str, str], tuple[int, dict[int, float]]], grp: str, key: str
) -> dict[str, Any]:
    n, values = ranked.get((grp, key), (0, {}))
    return {"n": n, **percentiles(n, values)}


# ---- funnel --------------------------------------------------------------------------------------------


def funnel_report(uow: UnitOfWork, request: ReportRequest, *, as_of: datetime) -> dict[str, Any]:
    """Counts per stage and conversion to the next one, overall and per group (see the module doc)."""
    grouping = grouping_for(uow, request, as_of=as_of)
    q = uow.reports

    def counts(g: Grouping) -> dict[str, dict[Stage, int]]:
        per: dict[str, dict[Stage, int]] = defaultdict(dict)
        if request.mode is Mode.PERIOD:
            for grp, stage, n in q.funnel_period(request, g):
                per[grp][Stage(stage)] = per[grp].get(Stage(stage), 0) + n
            return per
        if request.per_cycle:
            for grp, stage, n in q.funnel_cycles(request, g):
                per[grp][Stage(stage)] = n
            return per
        furthest: dict[str, dict[Stage, int]] = defaultdict(dict)
        for grp, stage, n in q.funnel_furthest(request, g):
            furthest[grp][Stage(stage)] = n
        return {grp: cumulative(f) for grp, f in furthest.items()}

    def with_days(rows: list[dict[str, Any]], ranked: Any, grp: str) -> list[dict[str, Any]]:
        for row in rows:
            if request.mode is Mode.PERIOD or row["stage"] == Stage.LEAD.value:
                row["median_days"] = row["p80_days"] = None
                continue
            figures = _pcts(ranked, grp, row["stage"])
            row["median_days"], row["p80_days"] = figures["median_days"], figures["p80_days"]
        return rows

    cohort = request.mode is Mode.COHORT
    total_grouping = Grouping(None)
    if grouping.dimension is None:
        grouped: dict[str, dict[Stage, int]] = {}
        total = counts(total_grouping).get("all", {})
    else:
        grouped = counts(grouping)
        if grouping.dimension in PARTITIONING:
            total = {s: sum(g.get(s, 0) for g in grouped.values()) for s in FUNNEL_STAGES}
        else:
            total = counts(total_grouping).get("all", {})
    total_days = _ranked(q.days_to_stages(request, total_grouping)) if cohort else {}
    group_days = _ranked(q.days_to_stages(request, grouping)) if cohort and grouped else {}
    doc = _header(request)
    doc["per_cycle"] = request.per_cycle
    doc["unit"] = "transitions" if not cohort else ("attempts" if request.per_cycle else "leads")
    doc["stages"] = with_days(stage_rows(total), total_days, "all")
    first = total.get(Stage.LEAD, 0)
    doc["lead_to_customer"] = rate(total.get(Stage.CUSTOMER, 0), first)
    if grouping.dimension is not None:
        doc["groups"] = [
            {
                "group": grp,
                "stages": with_days(stage_rows(grouped[grp]), group_days, grp),
                "lead_to_customer": rate(
                    grouped[grp].get(Stage.CUSTOMER, 0), grouped[grp].get(Stage.LEAD, 0)
                ),
            }
            for grp in ordered_groups(grouped)
        ]
    return doc


# ---- velocity ------------------------------------------------------------------------------------------

LEAD_TO_CUSTOMER = "lead_to_customer"


def velocity_report(uow: UnitOfWork, request: ReportRequest, *, as_of: datetime) -> dict[str, Any]:
    """Median and 80th percentile days in each stage (completed visits) and from lead to customer."""
    grouping = grouping_for(uow, request, as_of=as_of)

    def block(ranked: Any, grp: str) -> dict[str, Any]:
        stages = []
        for stage in FUNNEL_STAGES:
            figures = _pcts(ranked, grp, stage.value)
            stages.append(
                {
                    "stage": stage.value,
                    "visits": figures["n"],
                    "median_days": figures["median_days"],
                    "p80_days": figures["p80_days"],
                }
            )
        won = _pcts(ranked, grp, LEAD_TO_CUSTOMER)
        return {
            "stages": stages,
            LEAD_TO_CUSTOMER: {
                "count": won["n"],
                "median_days": won["median_days"],
                "p80_days": won["p80_days"],
            },
        }

    doc = _header(request)
    doc.update(block(_ranked(uow.reports.stage_durations(request, Grouping(None))), "all"))
    if grouping.dimension is not None:
        ranked = _ranked(uow.reports.stage_durations(request, grouping))
        doc["groups"] = [
            {"group": grp, **block(ranked, grp)} for grp in ordered_groups(g for g, _k in ranked)
        ]
    return doc


# ---- feedback ------------------------------------------------------------------------------------------

REASON_ACTIONS = (Action.REJECT.value, Action.DISQUALIFY.value, Action.RECYCLE.value, Action.LOSE.value)


def _feedback_block(rows: Iterable[tuple[str, str | None, str | None, str | None, int]]) -> dict[str, Any]:
    mqls = accepted = rejected = rejected_later = 0
    reasons: dict[tuple[str, str], int] = defaultdict(int)
    for action, from_stage, from_status, reason, n in rows:
        if action == Action.PROMOTE_MQL.value:
            mqls += n
        elif action == Action.ACCEPT.value:
            accepted += n
        elif action == Action.REJECT.value:
            if from_status == "working":
                rejected_later += n
            else:
                rejected += n
        elif action == Action.DISQUALIFY.value and from_stage == Stage.MQL.value and from_status == "open":
            rejected += n
        if action in REASON_ACTIONS:
            reasons[(action, reason or NO_VALUE)] += n
    per_action: dict[str, int] = defaultdict(int)
    for (action, _r), n in reasons.items():
        per_action[action] += n
    return {
        "mqls": mqls,
        "reviewed": accepted + rejected,
        "accepted": accepted,
        "rejected": rejected,
        "rejected_after_acceptance": rejected_later,
        "acceptance_rate": rate(accepted, accepted + rejected),
        "reasons": [
            {"action": action, "reason": reason, "count": n, "share_of_action": rate(n, per_action[action])}
            for (action, reason), n in sorted(
                reasons.items(), key=lambda item: (REASON_ACTIONS.index(item[0][0]), -item[1], item[0][1])
            )
        ],
    }


def feedback_report(uow: UnitOfWork, request: ReportRequest, *, as_of: datetime) -> dict[str, Any]:
    """MQL acceptance, rejection and disqualification reasons, and hot leads that sales rejected."""
    grouping = grouping_for(uow, request, as_of=as_of)
    q = uow.reports
    doc = _header(request)
    doc.update(_feedback_block(r[1:] for r in q.decisions(request, Grouping(None))))
    if grouping.dimension is not None:
        per: dict[str, list[tuple[str, str | None, str | None, str | None, int]]] = defaultdict(list)
        for grp, action, from_stage, from_status, reason, n in q.decisions(request, grouping):
            per[grp].append((action, from_stage, from_status, reason, n))
        doc["groups"] = [{"group": grp, **_feedback_block(per[grp])} for grp in ordered_groups(per)]
    total, leads = q.hot_rejections(request)
    doc["hot_rejected"] = {
        "hot_priorities": list(HOT_PRIORITIES),
        "total": total,
        "leads": [{**lead, "at": lead["at"].isoformat()} for lead in leads],
    }
    return doc


# ---- calibration ---------------------------------------------------------------------------------------


def _band_order(band: Dimension, value: str) -> tuple[int, float, str]:
    if value == NO_VALUE:
        return (1, 0.0, value)
    if band in (Dimension.PREDICTIVE_DECILE, Dimension.ENGAGEMENT_LEVEL) and value.isdigit():
        return (0, float(value), value)
    return (0, 0.0, value)


def calibration_report(uow: UnitOfWork, request: ReportRequest, *, as_of: datetime) -> dict[str, Any]:
    """Score bands (or predictive deciles) against actual conversion to SQL and customer, with 95% CIs."""
    band = request.by or Dimension.FIT_GRADE
    q = uow.reports
    predictive = q.has_predictive_score()
    if band is Dimension.PREDICTIVE_DECILE and not predictive:
        raise ValidationError(
            "--by predictive_decile: no predictive score yet (leads have no predictive_score; train and "
            "activate a predictive model first); use fit_grade, engagement_level or priority",
            field="by",
        )
    rows = sorted(q.calibration(request, band), key=lambda r: _band_order(band, r[0]))

    def ci(successes: int, n: int) -> list[float] | None:
        interval = wilson_interval(successes, n)
        return None if interval is None else [round(interval[0], 4), round(interval[1], 4)]

    doc = _header(request)
    doc["band"] = band.value
    doc["predictive_available"] = predictive
    doc["bands"] = [
        {
            "band": value,
            "leads": n,
            "sql": to_sql,
            "sql_rate": rate(to_sql, n),
            "sql_ci95": ci(to_sql, n),
            "customer": won,
            "customer_rate": rate(won, n),
            "customer_ci95": ci(won, n),
        }
        for value, n, to_sql, won in rows
    ]
    n_all = sum(r[1] for r in rows)
    doc["overall"] = {
        "leads": n_all,
        "sql_rate": rate(sum(r[2] for r in rows), n_all),
        "customer_rate": rate(sum(r[3] for r in rows), n_all),
    }
    return doc


# ---- attribution ---------------------------------------------------------------------------------------


def attribution_report(uow: UnitOfWork, request: ReportRequest, *, as_of: datetime) -> dict[str, Any]:
    """MQLs, SQLs, customers and won revenue credited to sources, campaigns or content by six models."""
    q = uow.reports
    totals = q.attribution_totals(request)
    rows = q.attribution(request)
    outcome_counts = {
        "mql": sum(r[1] for r in totals),
        "sql": sum(r[2] for r in totals),
        "customer": sum(r[3] for r in totals),
    }
    revenue = {cur: round(r[4], 2) for r in totals if (cur := r[0]) is not None and r[3]}
    values: dict[str, dict[str, Any]] = {}
    for row in rows:
        value = values.setdefault(
            row["grp"],
            {
                "leads_touched": dict.fromkeys(OUTCOMES, 0),
                "touches": dict.fromkeys(OUTCOMES, 0),
                "credit": {m.value: dict.fromkeys(OUTCOMES, 0.0) for m in AttributionModel},
                "revenue": {m.value: defaultdict(float) for m in AttributionModel},
            },
        )
        for o, outcome in enumerate(OUTCOMES, start=1):
            value["leads_touched"][outcome] += int(row[f"touched_{o}"] or 0)
            value["touches"][outcome] += int(row[f"touches_{o}"] or 0)
            for model in AttributionModel:
                value["credit"][model.value][outcome] += float(row[f"{model.value}_{o}"] or 0)
        if row["cur"] is not None:
            for model in AttributionModel:
                value["revenue"][model.value][row["cur"]] += float(row[f"{model.value}_rev"] or 0)
    attributed = {
        outcome: round(sum(v["credit"][AttributionModel.FIRST_TOUCH.value][outcome] for v in values.values()))
        for outcome in OUTCOMES
    }
    models: dict[str, list[dict[str, Any]]] = {}
    for model in AttributionModel:
        items = []
        for name, v in values.items():
            credit = v["credit"][model.value]
            items.append(
                {
                    "value": name,
                    "mql": round(credit["mql"], 4),
                    "sql": round(credit["sql"], 4),
                    "customer": round(credit["customer"], 4),
                    "revenue": {
                        cur: round(x, 2)
                        for cur, x in sorted(v["revenue"][model.value].items())
                        if round(x, 2) > 0
                    },
                    "leads_touched": dict(v["leads_touched"]),
                    "touches": dict(v["touches"]),
                }
            )
        items.sort(key=lambda i: (-i["customer"], -i["sql"], -i["mql"], i["value"]))
        models[model.value] = items
    doc = _header(request)
    doc["half_life_days"] = request.half_life_days
    doc["outcomes"] = {
        outcome: {
            "count": outcome_counts[outcome],
            "attributed": attributed[outcome],
            "unattributed": outcome_counts[outcome] - attributed[outcome],
        }
        for outcome in OUTCOMES
    }
    doc["revenue"] = revenue
    doc["models"] = models
    return doc
