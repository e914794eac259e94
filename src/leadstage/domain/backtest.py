"""Backtesting a scoring model against history (DOMAIN.md R15, R22; JOURNEYS.md journey 1).

Replaying history asks, for every lead: *when* would this model first have made it an MQL? A lead's
fit comes from its current facts; its engagement only rises at activity times and decays in between,
so the model is evaluated at the lead's creation time and right after each of its activities, in time
order. The first such moment that meets the MQL criteria (:func:`leadstage.domain.scoring.mql_reasons`)
is the lead's MQL time under the model; a lead counts once, in the ISO week (Monday start, UTC) of that
moment. An excluded lead (a fit exclusion) never counts.

Outcomes come from the stage history: an MQL "reached SQL" (or customer) when the lead has a
transition to that stage at or after its MQL time. Recall is the share of the leads that became
customers within the range whose MQL time under the model came strictly before their first win.

Capacity (R15: sales must not be flooded): a minimum engagement score ``T`` is added to the criteria
(criteria met *and* engagement >= T at that moment). Each lead's replay keeps its *crossings*: the
moments meeting the criteria at which the engagement score beat every earlier such moment. Under a
threshold ``T`` the lead's MQL time is its first crossing with a score >= T, so sweeping ``T`` upwards
over the crossing scores moves one lead at a time and finds the smallest ``T`` whose mean weekly
volume fits (:func:`capacity_threshold`).

Everything here is pure: no clock, no storage. Times are Unix seconds (UTC), like ``ActivityFacts.ts``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from leadstage.domain.errors import ValidationError
from leadstage.domain.scoring import (
    ActivityFacts,
    EngagementResult,
    EngagementRule,
    FitResult,
    RuleState,
    ScoringModel,
    band_of,
    engagement_score,
    fold,
    mql_reasons,
    qualifying_now,
)

WEEK_SECONDS = 7 * 86_400.0


# ---- the weeks of a backtest ----------------------------------------------------------------------------


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def parse_day(text: str | None, option: str) -> date | None:
    """An ISO date given on the command line (``None`` when the option was not given)."""
    if text is None:
        return None
    name = option.lstrip("-")
    if not text.strip():
        raise ValidationError(f"{option}: empty; give an ISO date such as 2026-01-31", field=name)
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(
            f"{option}: {text!r} is not an ISO date (YYYY-MM-DD, e.g. 2026-01-31)", field=name
        ) from None


@dataclass(frozen=True)
class Weeks:
    """Consecutive ISO weeks (Monday start, UTC): ``count`` of them from the Monday ``first``."""

    first: date
    count: int

    @property
    def start(self) -> float:
        return datetime(self.first.year, self.first.month, self.first.day, tzinfo=UTC).timestamp()

    @property
    def end(self) -> float:
        """The end of the last week (exclusive)."""
        return self.start + self.count * WEEK_SECONDS

    @property
    def last_day(self) -> date:
        """The Sunday that closes the last week."""
        return self.first + timedelta(days=7 * self.count - 1)

    def index(self, ts: float) -> int | None:
        """The week ``ts`` falls in, or ``None`` outside the range."""
        start = self.start
        if ts < start or ts >= start + self.count * WEEK_SECONDS:
            return None
        return int((ts - start) // WEEK_SECONDS)

    def contains(self, ts: float) -> bool:
        return self.index(ts) is not None

    def monday(self, i: int) -> date:
        return self.first + timedelta(days=7 * i)

    def label(self, i: int) -> str:
        """The ISO week, e.g. ``2026-W05``."""
        iso = self.monday(i).isocalendar()
        return f"{iso.year}-W{iso.week:02d}"


def week_range(start: date | None, end: date | None, span: tuple[date, date] | None) -> Weeks:
    """The whole ISO weeks from ``start`` to ``end`` (inclusive); a missing bound comes from ``span``.

    ``span`` is the first and last day of the recorded history (lead creation and activities), or
    ``None`` when there is none. Reversed or empty ranges are bad input.
    """
    if start is not None and end is not None and start > end:
        raise ValidationError(
            f"--from {start.isoformat()} is after --to {end.isoformat()}: the range is reversed", field="from"
        )
    if span is None and (start is None or end is None):
        raise ValidationError(
            "nothing to backtest: there are no leads or activities yet "
            "(import last year's history first, or give both --from and --to)"
        )
    lo = start if start is not None else span[0] if span else None
    hi = end if end is not None else span[1] if span else None
    assert lo is not None
    assert hi is not None
    if lo > hi:
        if start is not None:
            raise ValidationError(
                f"empty range: --from {start.isoformat()} is after the last recorded lead or activity "
                f"({hi.isoformat()})",
                field="from",
            )
        raise ValidationError(
            f"empty range: --to {hi.isoformat()} is before the first recorded lead or activity "
            f"({lo.isoformat()})",
            field="to",
        )
    first = monday_of(lo)
    return Weeks(first, (monday_of(hi) - first).days // 7 + 1)


# ---- replaying one lead ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Crossing:
    """A moment the lead met the MQL criteria with a higher engagement score than at any earlier one."""

    ts: float
    score: float


def replay(
    model: ScoringModel,
    fit: FitResult,
    created_at: float,
    activities: Sequence[ActivityFacts],
    *,
    all_crossings: bool = False,
) -> tuple[Crossing, ...]:
    """When ``model`` would have made the lead an MQL: its crossings, in time order (scores rising).

    The first crossing is the MQL time under the model's criteria. With ``all_crossings`` the replay
    goes on to the last activity, so a minimum engagement score can be applied later
    (:func:`first_mql`); without it the replay stops at the first crossing. ``activities`` may hold
    types the model does not score (they are skipped) and need not be sorted.
    """
    if fit.excluded_by is not None:
        return ()
    # (no past predictive scores: criteria that read one are never met in a replay)
    grades_ok = any(c.met(fit.grade, 1) for c in model.mql_criteria)
    if not grades_ok and not model.qualifying_rules:
        return ()  # no engagement can make this fit grade an MQL
    by_type: dict[str, list[EngagementRule]] = {}
    for rule in model.engagement_rules:
        by_type.setdefault(rule.activity_type, []).append(rule)
    states: dict[str, RuleState] = {}
    crossings: list[Crossing] = []
    best = -math.inf

    def evaluate(at: float) -> bool:
        """Record a crossing at ``at`` if there is one; True when the replay may stop."""
        nonlocal best
        score = engagement_score(model, states, at)
        if score <= best:
            return False
        qualified = qualifying_now(model, states, at)
        engagement = EngagementResult(score, int(band_of(model.engagement_bands, score)), (), qualified)
        if mql_reasons(model, fit, engagement):
            best = score
            crossings.append(Crossing(at, score))
            return not all_crossings
        return False

    created_done = False
    ordered = sorted(activities, key=lambda a: a.ts)
    for activity in ordered:
        rules = by_type.get(activity.type)
        if rules is None:
            continue
        if not created_done and activity.ts > created_at:
            created_done = True
            if evaluate(created_at):
                return tuple(crossings)
        for rule in rules:
            if rule.matches(activity):
                states[rule.name] = fold(rule, states.get(rule.name), activity.ts)
        if evaluate(activity.ts):
            return tuple(crossings)
    if not created_done:
        evaluate(created_at)
    return tuple(crossings)


def first_mql(crossings: Sequence[Crossing], threshold: float | None = None) -> float | None:
    """The MQL time: the first crossing (with a minimum engagement score: the first one reaching it)."""
    if threshold is None:
        return crossings[0].ts if crossings else None
    for crossing in crossings:
        if crossing.score >= threshold:
            return crossing.ts
    return None


# ---- outcomes and tallies -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcomes:
    """When the lead reached SQL and customer (every transition into the stage, sorted)."""

    sql_at: tuple[float, ...] = ()
    customer_at: tuple[float, ...] = ()

    @staticmethod
    def of(transitions: Iterable[tuple[str, float]]) -> Outcomes:
        """From (stage, time) pairs of the stage history; other stages are ignored."""
        sql: list[float] = []
        customer: list[float] = []
        for stage, ts in transitions:
            if stage == "sql":
                sql.append(ts)
            elif stage == "customer":
                customer.append(ts)
        return Outcomes(tuple(sorted(sql)), tuple(sorted(customer)))

    def sql_since(self, ts: float) -> bool:
        return bool(self.sql_at) and self.sql_at[-1] >= ts

    def customer_since(self, ts: float) -> bool:
        return bool(self.customer_at) and self.customer_at[-1] >= ts

    @property
    def won_at(self) -> float | None:
        return self.customer_at[0] if self.customer_at else None


NO_OUTCOMES = Outcomes()


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass
class Figures:
    """MQLs of one week (or a whole range) and how many of them later reached SQL and customer."""

    mqls: int = 0
    sqls: int = 0
    customers: int = 0

    @property
    def precision_sql(self) -> float | None:
        return _ratio(self.sqls, self.mqls)

    @property
    def precision_customer(self) -> float | None:
        return _ratio(self.customers, self.mqls)

    def to_json(self) -> dict[str, Any]:
        return {
            "mqls": self.mqls,
            "sqls": self.sqls,
            "customers": self.customers,
            "precision_sql": self.precision_sql,
            "precision_customer": self.precision_customer,
        }


@dataclass
class Totals(Figures):
    weeks: int = 1
    customers_won: int = 0  # leads whose first win falls in the range
    customers_caught: int = 0  # of those, flagged as MQL before the win

    @property
    def mean_weekly_mqls(self) -> float:
        return round(self.mqls / self.weeks, 2)

    @property
    def recall_customer(self) -> float | None:
        return _ratio(self.customers_caught, self.customers_won)

    def to_json(self) -> dict[str, Any]:
        return {
            **super().to_json(),
            "mean_weekly_mqls": self.mean_weekly_mqls,
            "recall_customer": self.recall_customer,
            "customers_won": self.customers_won,
            "customers_caught": self.customers_caught,
        }


@dataclass
class Tally:
    """Adds leads one by one (MQL time under a model, outcomes) into weekly figures and totals."""

    weeks: Weeks
    by_week: list[Figures] = field(init=False)
    customers_won: int = 0
    customers_caught: int = 0

    def __post_init__(self) -> None:
        self.by_week = [Figures() for _ in range(self.weeks.count)]

    def add(self, mql_at: float | None, outcomes: Outcomes) -> None:
        if mql_at is not None:
            i = self.weeks.index(mql_at)
            if i is not None:
                week = self.by_week[i]
                week.mqls += 1
                week.sqls += outcomes.sql_since(mql_at)
                week.customers += outcomes.customer_since(mql_at)
        won = outcomes.won_at
        if won is not None and self.weeks.contains(won):
            self.customers_won += 1
            self.customers_caught += mql_at is not None and mql_at < won

    def totals(self) -> Totals:
        return Totals(
            mqls=sum(w.mqls for w in self.by_week),
            sqls=sum(w.sqls for w in self.by_week),
            customers=sum(w.customers for w in self.by_week),
            weeks=self.weeks.count,
            customers_won=self.customers_won,
            customers_caught=self.customers_caught,
        )


# ---- fitting a capacity ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeadSummary:
    """What the capacity search keeps of a lead: its crossings under the candidate and its outcomes."""

    crossings: tuple[Crossing, ...]
    outcomes: Outcomes = NO_OUTCOMES


def tally(summaries: Iterable[LeadSummary], weeks: Weeks, threshold: float | None = None) -> Tally:
    out = Tally(weeks)
    for s in summaries:
        out.add(first_mql(s.crossings, threshold), s.outcomes)
    return out


def capacity_threshold(summaries: Sequence[LeadSummary], weeks: Weeks, per_week: float) -> float | None:
    """The smallest minimum engagement score that brings the mean weekly MQL volume to ``per_week`` or less.

    ``None`` when the criteria alone already fit. Candidates are the scores observed at the crossings
    (between two of them nothing changes), swept upwards: passing a score moves each lead whose
    crossing had it on to its next crossing (or out), so the count is updated, not recomputed.
    """
    limit = per_week * weeks.count
    count = sum(1 for s in summaries if s.crossings and weeks.contains(s.crossings[0].ts))
    if count <= limit:
        return None
    events = sorted(
        (crossing.score, lead, k)
        for lead, s in enumerate(summaries)
        for k, crossing in enumerate(s.crossings)
    )
    i = 0
    while i < len(events):
        score = events[i][0]
        while i < len(events) and events[i][0] == score:
            _, lead, k = events[i]
            crossings = summaries[lead].crossings
            count -= weeks.contains(crossings[k].ts)
            if k + 1 < len(crossings):
                count += weeks.contains(crossings[k + 1].ts)
            i += 1
        if count <= limit:
            # every threshold in (score, next score] gives this volume; the smallest observed one is next
            return events[i][0] if i < len(events) else math.nextafter(score, math.inf)
    raise AssertionError("a threshold above every score leaves no MQLs")  # pragma: no cover


def readable_threshold(
    summaries: Sequence[LeadSummary], weeks: Weeks, per_week: float, exact: float
) -> float:
    """``exact`` rounded up to two decimals, when the rounded threshold still fits the capacity."""
    rounded = math.ceil(exact * 100 - 1e-9) / 100
    if rounded == exact:
        return exact
    if tally(summaries, weeks, rounded).totals().mqls <= per_week * weeks.count:
        return rounded
    return exact
