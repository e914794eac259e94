"""Backtest a candidate scoring model against history, beside the active one (R15, R22; journey 1).

The candidate is validated exactly like ``score activate`` (known properties and activity types; errors
name the line and key) but never stored. Leads are read chunk by chunk (facts, creation time, the
activities either model scores, transitions into SQL and customer); each lead is replayed with both
models by the pure :mod:`leadstage.domain.backtest` and added to weekly tallies at once. Only with a
capacity does the candidate keep a small per-lead summary (its crossings and outcomes) for the
threshold search. Nothing is written: the unit of work is left without a commit.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from leadstage.domain.backtest import (
    NO_OUTCOMES,
    LeadSummary,
    Outcomes,
    Tally,
    Weeks,
    capacity_threshold,
    first_mql,
    readable_threshold,
    replay,
    tally,
    week_range,
)
from leadstage.domain.errors import ValidationError
from leadstage.domain.scoring import FitEvaluator, ScoringModel
from leadstage.services.ports import NullProgress, Progress, UnitOfWorkFactory
from leadstage.services.scoring import Loader, activity_facts, compile_model, load_active

OUTCOME_STAGES = ("sql", "customer")
ACTIVITY_FIELDS = ("source", "campaign", "content")


@dataclass
class _Side:
    """One model being replayed: its fit cache and its tally."""

    model: ScoringModel
    fit_of: FitEvaluator
    tally: Tally
    keep: bool = False  # keep per-lead summaries (the candidate, when a capacity is asked for)
    summaries: list[LeadSummary] = field(default_factory=list)


def _needs_properties(models: Iterable[ScoringModel]) -> bool:
    return any(key not in ACTIVITY_FIELDS for m in models for r in m.engagement_rules for key, _c in r.where)


def _week_rows(weeks: Weeks, candidate: Tally, active: Tally | None) -> list[dict[str, Any]]:
    return [
        {
            "week": weeks.label(i),
            "start": weeks.monday(i).isoformat(),
            "candidate": candidate.by_week[i].to_json(),
            "active": active.by_week[i].to_json() if active is not None else None,
        }
        for i in range(weeks.count)
    ]


def backtest(
    uow_factory: UnitOfWorkFactory,
    source: str,
    *,
    name: str,
    load: Loader,
    start: date | None = None,
    end: date | None = None,
    capacity: int | None = None,
    chunk: int = 2_000,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Replay history with the candidate model (and the active one): weekly MQLs, precision, recall.

    Returns the JSON document of ``leadstage score backtest --json``. Raises ``ValidationError`` for an
    invalid candidate, a reversed or empty range, or a capacity below one.
    """
    started = time.perf_counter()
    progress = progress or NullProgress()
    if capacity is not None and capacity < 1:
        raise ValidationError(f"--capacity: at least 1 lead a week, got {capacity}", field="capacity")
    if start is not None and end is not None:
        week_range(start, end, None)  # a reversed range is bad input before anything is read
    with uow_factory() as uow:
        known = {k: v.value for k, v in uow.properties.definitions("lead").items()}
        candidate = compile_model(
            source, name=name, load=load, known_properties=known, activity_types=uow.activities.known_types()
        )
        active = load_active(uow, load)
        span = uow.scoring.history_span()
        weeks = week_range(start, end, (span[0].date(), span[1].date()) if span else None)
        sides = [_Side(candidate, FitEvaluator(candidate), Tally(weeks), keep=capacity is not None)]
        if active is not None:
            sides.append(_Side(active[1], FitEvaluator(active[1]), Tally(weeks)))
        models = [s.model for s in sides]
        types = sorted({r.activity_type for m in models for r in m.engagement_rules})
        with_props = _needs_properties(models)
        leads = 0
        for id_range in list(uow.scoring.lead_id_ranges(chunk)):
            rows = uow.scoring.lead_rows(id_range=id_range)
            created = uow.scoring.created_times(id_range=id_range)
            acts = activity_facts(
                uow.scoring.activities_of(
                    id_range=id_range, types=types, with_properties=with_props, pending=True
                )
            )
            transitions: dict[int, list[tuple[str, float]]] = {}
            for lead_id, stage, ts in uow.scoring.stage_entries(id_range=id_range, stages=OUTCOME_STAGES):
                transitions.setdefault(lead_id, []).append((stage, ts))
            for row in rows:
                lead_acts = acts.get(row.lead_id, [])
                found = transitions.get(row.lead_id)
                outcomes = Outcomes.of(found) if found else NO_OUTCOMES
                for side in sides:
                    crossings = replay(
                        side.model,
                        side.fit_of(row.facts),
                        created[row.lead_id],
                        lead_acts,
                        all_crossings=side.keep,
                    )
                    side.tally.add(first_mql(crossings), outcomes)
                    if side.keep and (crossings or outcomes is not NO_OUTCOMES):
                        side.summaries.append(LeadSummary(crossings, outcomes))
            leads += len(rows)
            progress.advance(rows=len(rows), bytes_read=leads)
    cand_side = sides[0]
    active_tally = sides[1].tally if len(sides) > 1 else None
    doc: dict[str, Any] = {
        "from": weeks.first.isoformat(),
        "to": weeks.last_day.isoformat(),
        "models": {
            "candidate": {"name": candidate.name, "file": name, "warnings": list(candidate.warnings)},
            "active": {"name": active[1].name, "version": active[0].version} if active else None,
        },
        "leads": leads,
        "weeks": _week_rows(weeks, cand_side.tally, active_tally),
        "totals": {
            "candidate": cand_side.tally.totals().to_json(),
            "active": active_tally.totals().to_json() if active_tally is not None else None,
        },
        "capacity": None,
    }
    if capacity is not None:
        doc["capacity"] = _fit_capacity(cand_side.summaries, weeks, capacity)
    doc["seconds"] = round(time.perf_counter() - started, 3)
    return doc


def _fit_capacity(summaries: list[LeadSummary], weeks: Weeks, per_week: int) -> dict[str, Any]:
    exact = capacity_threshold(summaries, weeks, per_week)
    threshold = None if exact is None else readable_threshold(summaries, weeks, per_week, exact)
    result = tally(summaries, weeks, threshold)
    totals = result.totals()
    return {
        "per_week": per_week,
        "threshold": threshold,
        "mean_weekly_mqls": totals.mean_weekly_mqls,
        "precision_sql": totals.precision_sql,
        "precision_customer": totals.precision_customer,
        "recall_customer": totals.recall_customer,
        "mqls": totals.mqls,
        "weeks": [
            {"week": weeks.label(i), "start": weeks.monday(i).isoformat(), **fig.to_json()}
            for i, fig in enumerate(result.by_week)
        ],
    }
