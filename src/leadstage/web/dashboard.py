"""The marketing dashboard (DOMAIN.md R17, R21): what works, from the same reports as ``leadstage report``.

Sections: the funnel and conversion by source, by campaign and by content; the webinar and eBook report
(attribution by content asset); MQL acceptance and rejection reasons by source and the disqualification
reasons (feedback); velocity; score band against conversion (calibration). Each is a server-drawn chart
with its numbers on hover and in a table.

Reports over many leads take seconds, so documents come from the container's report cache
(``services/report_cache.py``, ADR 19): shown with their age, refreshed by the background loop, computed
on the first request when there is none. A section not cached yet is loaded by its own request (htmx
``hx-trigger="load"``), so the page itself answers at once and the sections fill in as they are ready.

Who sees it: administrators, marketing, sales managers (feedback on lead quality is theirs to give) and
viewers (read only); sales reps work from their queue and are refused.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from leadstage.domain.analytics import NO_VALUE, AttributionModel, ReportRequest, parse_request
from leadstage.domain.errors import ValidationError
from leadstage.domain.stages import Role
from leadstage.services.report_cache import CachedReport
from leadstage.web import charts
from leadstage.web.base import Viewer, WebUser, container, humanize, query_with, render, require

router = APIRouter(include_in_schema=False)

DASHBOARD_ROLES = (Role.MARKETING, Role.SALES_MANAGER, Role.VIEWER)  # and administrators
MODELS = tuple(m.value for m in AttributionModel)
BANDS = ("fit_grade", "engagement_level", "priority", "predictive_decile")
CHART_ROWS = 12  # a chart shows the biggest groups; its table lists them all
NARROW, NARROW_LABEL = 430, 130  # charts in a third of the page
PRESETS = (("Last 90 days", 90), ("Last 12 months", 365), ("All time", None))


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    report: str
    by: str | None


SECTIONS: tuple[Section, ...] = (
    Section("funnel", "Funnel and conversion by source", "funnel", "source"),
    Section("campaign", "Conversion by campaign", "funnel", "campaign"),
    Section("content", "Conversion by content", "funnel", "content"),
    Section("assets", "Webinars and eBooks: what they brought", "attribution", "content"),
    Section("feedback", "Sales feedback: acceptance and reasons by source", "feedback", "source"),
    Section("velocity", "Velocity: days in each stage", "velocity", None),
    Section("calibration", "Score band against conversion", "calibration", "fit_grade"),
)
BY_KEY = {s.key: s for s in SECTIONS}


@dataclass(frozen=True)
class Params:
    """The dashboard's choices, from the query string: a date range, the mode, the attribution model and
    the calibration band."""

    date_from: str | None = None
    date_to: str | None = None
    mode: str = "cohort"
    model: str = "w_shaped"
    band: str = "fit_grade"

    @classmethod
    def read(cls, q: Mapping[str, str]) -> Params:
        """The choices from query parameters; an unknown model or band is refused naming it."""
        model = q.get("model") or "w_shaped"
        band = q.get("band") or "fit_grade"
        if model not in MODELS:
            raise ValidationError(f"model: unknown attribution model {model!r}; one of {', '.join(MODELS)}",
                                  field="model")  # fmt: skip
        if band not in BANDS:
            raise ValidationError(
                f"band: unknown score band {band!r}; one of {', '.join(BANDS)}", field="band"
            )
        return cls(q.get("from") or None, q.get("to") or None, q.get("mode") or "cohort", model, band)

    def query(self) -> dict[str, str | None]:
        return {
            "from": self.date_from,
            "to": self.date_to,
            "mode": None if self.mode == "cohort" else self.mode,
            "model": None if self.model == "w_shaped" else self.model,
            "band": None if self.band == "fit_grade" else self.band,
        }

    def request(self, section: Section) -> ReportRequest:
        """The report request of a section (calibration always follows cohorts: period mode does not apply)."""
        by = self.band if section.key == "calibration" else section.by
        mode = "cohort" if section.report == "calibration" else self.mode
        try:
            return parse_request(
                section.report, by=by, date_from=self.date_from, date_to=self.date_to, mode=mode
            )
        except ValidationError as exc:
            raise ValidationError(fields_named(exc), field=exc.field) from None


OPTION = re.compile(r"--([a-z][a-z-]*)")


def fields_named(exc: ValidationError) -> str:
    """The reports' messages name the CLI's options (``--from``); on the page they are fields (``from``)."""
    return OPTION.sub(r"\1", str(exc))


def _check(user: WebUser) -> None:
    require(user, *DASHBOARD_ROLES, what="see the marketing dashboard")


# ---- what each section shows ---------------------------------------------------------------------------


def _stage(doc_stages: list[dict[str, Any]], name: str) -> int:
    return next((int(s["count"]) for s in doc_stages if s["stage"] == name), 0)


def _rate(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def funnel_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    stages = doc["stages"]
    first = _stage(stages, "lead")
    rows = [{**s, "share": _rate(s["count"], first), "label": humanize(s["stage"])} for s in stages]
    unit = doc["unit"]
    chart = charts.bar_chart(
        [r["label"] for r in rows],
        [
            charts.Series(
                unit,
                [r["count"] for r in rows],
                charts.count,
                notes=[
                    " · ".join(
                        part
                        for part in (
                            f"{charts.percent(r['share'])} of the first stage"
                            if r["share"] is not None
                            else "",
                            f"{charts.percent(r['conversion_to_next'])} went on"
                            if r["conversion_to_next"] is not None
                            else "",
                            f"median {charts.days(r['median_days'])} from creation"
                            if r["median_days"] is not None
                            else "",
                        )
                        if part
                    )
                    for r in rows
                ],
            )
        ],
    )
    return {"rows": rows, "chart": chart, "unit": unit, "lead_to_customer": doc.get("lead_to_customer")}


def groups_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Conversion per group of a grouped funnel: biggest groups first, ``(none)`` last."""
    rows = []
    for g in doc.get("groups", []):
        st = g["stages"]
        leads, mqls, sqls = _stage(st, "lead"), _stage(st, "mql"), _stage(st, "sql")
        customers = _stage(st, "customer")
        rows.append(
            {
                "group": g["group"],
                "leads": leads,
                "mqls": mqls,
                "sqls": sqls,
                "customers": customers,
                "to_mql": _rate(mqls, leads),
                "mql_to_sql": _rate(sqls, mqls),
                "to_customer": g.get("lead_to_customer"),
            }
        )
    rows.sort(key=lambda r: (r["group"] == NO_VALUE, -r["leads"], r["group"]))
    shown = rows[:CHART_ROWS]
    chart = charts.bar_chart(
        [humanize(r["group"]) for r in shown],
        [
            charts.Series("lead → MQL", [r["to_mql"] for r in shown], charts.percent, cls="alt",
                          notes=[f"{r['mqls']:,} of {r['leads']:,} leads" for r in shown]),
            charts.Series("lead → customer", [r["to_customer"] for r in shown], charts.percent,
                          notes=[f"{r['customers']:,} of {r['leads']:,} leads" for r in shown]),
        ],
        max_value=max([1e-9, *(r["to_mql"] or 0 for r in shown)]),
    )  # fmt: skip
    return {"rows": rows, "chart": chart, "dimension": doc.get("by")}


def assets_view(doc: Mapping[str, Any], model: str) -> dict[str, Any]:
    items = doc["models"][model]
    rows = [
        {
            **item,
            "revenue_text": ", ".join(f"{cur} {amount:,.0f}" for cur, amount in item["revenue"].items())
            or "–",
        }
        for item in items
    ]
    rows.sort(key=lambda r: (-r["customer"], -r["sql"], -r["mql"], r["value"]))
    shown = rows[:CHART_ROWS]
    chart = charts.bar_chart(
        [r["value"] for r in shown],
        [
            charts.Series("MQLs credited", [r["mql"] for r in shown], charts.count, cls="alt",
                          notes=[f"touched {r['leads_touched']['mql']:,} leads who became MQLs" for r in shown]),
            charts.Series("customers credited", [r["customer"] for r in shown], charts.count,
                          notes=[f"revenue {r['revenue_text']}" for r in shown]),
        ],
    )  # fmt: skip
    return {"rows": rows, "chart": chart, "outcomes": doc["outcomes"], "model": model, "models": MODELS}


def feedback_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    groups = []
    for g in doc.get("groups", []):
        rejects = [r for r in g["reasons"] if r["action"] == "reject"]
        groups.append({**g, "rejects": rejects})
    groups.sort(key=lambda g: (g["group"] == NO_VALUE, -g["mqls"], g["group"]))
    shown = groups[:CHART_ROWS]
    acceptance = charts.bar_chart(
        [humanize(g["group"]) for g in shown],
        [
            charts.Series("accepted", [g["acceptance_rate"] if g["reviewed"] else None for g in shown],
                          charts.percent,
                          notes=[f"{g['accepted']:,} of {g['reviewed']:,} reviewed MQLs" for g in shown]),
        ],
        max_value=1.0,
        width=NARROW,
        label_width=NARROW_LABEL,
    )  # fmt: skip
    by_action: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in doc["reasons"]:
        by_action[r["action"]].append(r)

    def reasons_chart(action: str, cls: str) -> charts.Chart:
        items = by_action.get(action, [])
        return charts.bar_chart(
            [humanize(r["reason"]) for r in items],
            [
                charts.Series(
                    action,
                    [r["count"] for r in items],
                    charts.count,
                    cls=cls,
                    notes=[f"{charts.percent(r['share_of_action'])} of {action}s" for r in items],
                )
            ],
            width=NARROW,
            label_width=NARROW_LABEL,
        )

    return {
        "overall": doc,
        "groups": groups,
        "acceptance": acceptance,
        "rejections": by_action.get("reject", []),
        "rejections_chart": reasons_chart("reject", "alt"),
        "disqualifications": by_action.get("disqualify", []),
        "disqualifications_chart": reasons_chart("disqualify", "warn"),
        "other_reasons": [r for a in ("recycle", "lose") for r in by_action.get(a, [])],
        "hot": doc["hot_rejected"],
    }


def velocity_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    rows = [{**s, "label": humanize(s["stage"])} for s in doc["stages"]]
    won = doc["lead_to_customer"]
    labels = [*[r["label"] for r in rows], "lead → customer"]
    medians = [*[r["median_days"] for r in rows], won["median_days"]]
    p80s = [*[r["p80_days"] for r in rows], won["p80_days"]]
    counts = [*[f"{r['visits']:,} visits" for r in rows], f"{won['count']:,} customers"]
    chart = charts.bar_chart(
        labels,
        [
            charts.Series("median", medians, charts.days, notes=counts),
            charts.Series("80th percentile", p80s, charts.days, cls="alt", notes=counts),
        ],
    )
    return {"rows": rows, "won": won, "chart": chart}


def calibration_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    bands = doc["bands"]

    def ci(value: list[float] | None) -> tuple[float, float] | None:
        return (value[0], value[1]) if value else None

    chart = charts.bar_chart(
        [humanize(b["band"]) for b in bands],
        [
            charts.Series("reached SQL", [b["sql_rate"] if b["leads"] else None for b in bands], charts.percent,
                          cls="alt", intervals=[ci(b["sql_ci95"]) for b in bands],
                          notes=[f"{b['sql']:,} of {b['leads']:,} leads" for b in bands]),
            charts.Series("became customers", [b["customer_rate"] if b["leads"] else None for b in bands],
                          charts.percent, intervals=[ci(b["customer_ci95"]) for b in bands],
                          notes=[f"{b['customer']:,} of {b['leads']:,} leads" for b in bands]),
        ],
    )  # fmt: skip
    return {"bands": bands, "overall": doc["overall"], "band": doc["band"], "chart": chart,
            "predictive_available": doc["predictive_available"]}  # fmt: skip


VIEWS: dict[str, Callable[[Mapping[str, Any], Params], dict[str, Any]]] = {
    "funnel": lambda doc, _p: {"funnel": funnel_view(doc), "groups": groups_view(doc)},
    "campaign": lambda doc, _p: {"groups": groups_view(doc)},
    "content": lambda doc, _p: {"groups": groups_view(doc)},
    "assets": lambda doc, p: assets_view(doc, p.model),
    "feedback": lambda doc, _p: feedback_view(doc),
    "velocity": lambda doc, _p: velocity_view(doc),
    "calibration": lambda doc, _p: calibration_view(doc),
}


# ---- pages ---------------------------------------------------------------------------------------------


def _section_context(
    section: Section, params: Params, cached: CachedReport | None, error: str | None, request: Request
) -> dict[str, Any]:
    context: dict[str, Any] = {"section": section, "error": error, "cached": cached, "query": params.query()}
    if cached is not None:
        cache = container(request).report_cache
        context["view"] = VIEWS[section.key](cached.doc, params)
        context["refresh_every"] = cache.refresh_age(cached)
    return context


def _presets(params: Params, today: date) -> list[dict[str, Any]]:
    out = []
    for label, days in PRESETS:
        start = (today - timedelta(days=days - 1)).isoformat() if days else None
        end = today.isoformat() if days else None
        query = {**params.query(), "from": start, "to": end}
        out.append({"label": label, "href": "/dashboard?" + query_with(query),
                    "current": params.date_from == start and params.date_to == end})  # fmt: skip
    return out


@router.get("/dashboard")
def dashboard(request: Request, user: Viewer) -> HTMLResponse:
    """Every section: the cached ones at once, the others loading by themselves (or by a link without JS)."""
    _check(user)
    params = Params.read(request.query_params)
    cache = container(request).report_cache
    sections = []
    for section in SECTIONS:
        report = params.request(section)  # bad dates or mode: refused before anything is computed
        sections.append(_section_context(section, params, cache.peek(report), None, request))
    c = container(request)
    now = c.clock.now()
    ages = [s["cached"].age(now) for s in sections if s["cached"] is not None]
    context = {
        "params": params,
        "query": params.query(),
        "sections": sections,
        "oldest": max(ages) if ages else None,
        "presets": _presets(params, now.astimezone(c.settings.tz).date()),
        "models": MODELS,
        "bands": BANDS,
    }
    return render(request, "dashboard.html", context, user=user)


@router.get("/dashboard/sections/{key}")
def dashboard_section(
    request: Request, user: Viewer, key: Annotated[str, Path(max_length=40)]
) -> HTMLResponse:
    """One section, computed now when it is not cached yet (htmx swaps it in; without htmx, a page)."""
    _check(user)
    section = BY_KEY.get(key)
    if section is None:
        raise ValidationError(f"no dashboard section {key!r}", field="section")
    params = Params.read(request.query_params)
    report = params.request(section)
    cached, error = None, None
    try:
        cached = container(request).report_cache.get(report)
    except ValidationError as exc:  # e.g. predictive deciles before any predictive score exists
        error = fields_named(exc)
    context = _section_context(section, params, cached, error, request)
    template = (
        "dashboard_section.html" if request.headers.get("hx-request") == "true" else "dashboard_one.html"
    )
    return render(request, template, {"s": context, "params": params}, user=user)


@router.post("/dashboard/refresh")
def refresh(
    request: Request,
    user: Viewer,
    query: Annotated[str, Form(max_length=1000)] = "",
) -> RedirectResponse:
    """Forget the cached documents of the page's sections; they are computed again as the page loads."""
    _check(user)
    params = Params.read(dict(parse_qsl(query)))
    container(request).report_cache.forget([params.request(s) for s in SECTIONS])
    back = query_with(params.query())
    return RedirectResponse("/dashboard" + (f"?{back}" if back else ""), status_code=303)
