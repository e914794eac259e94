"""What the reports mean (DOMAIN.md R17, R21): names, dimensions, modes, and the arithmetic on aggregates.

The database computes the aggregates (``adapters/db/reports.py``); this module validates what a report
is asked for and turns the small aggregated results into the figures people read:

* :func:`parse_request` checks a report request before anything is queried: the report name, the
  dimension (``--by``), the mode, the date range (a reversed or empty range is refused), and the
  attribution parameters. Every refusal is a ``ValidationError`` naming the parameter (CLI exit 2).
* Funnel stages are the transition table's stages in lifecycle order; ``prospect`` is a status. A stage
  is reached by the forward action into it (:data:`FORWARD_ACTIONS`); every lead starts at ``lead``.
* Percentiles are linear interpolation between closest ranks (PostgreSQL's ``percentile_cont``): for
  ``n`` sorted values and ``p = a/b`` the position is ``a*(n-1)/b``. The database returns only the two
  values around that position (:func:`quantile_positions`), :func:`interpolate` finishes.
* Rates carry Wilson score intervals (:func:`wilson_interval`), which stay inside 0..1 for small counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from leadstage.domain.errors import ValidationError
from leadstage.domain.stages import STAGE_ORDER, Action, Stage


class Report(StrEnum):
    FUNNEL = "funnel"
    VELOCITY = "velocity"
    ATTRIBUTION = "attribution"
    FEEDBACK = "feedback"
    CALIBRATION = "calibration"


class Mode(StrEnum):
    COHORT = "cohort"  # leads created in the range: how far they got, and how long it took
    PERIOD = "period"  # what happened in the range: each transition once


class Dimension(StrEnum):
    SOURCE = "source"  # the lead's original (first-touch) source
    CAMPAIGN = "campaign"  # for lead reports: the campaign of the lead's first activity that has one
    CONTENT = "content"  # for lead reports: the content asset of the lead's first activity that has one
    SEGMENT = "segment"  # every saved segment the lead is a member of now (a lead may be in several)
    OWNER = "owner"
    FIT_GRADE = "fit_grade"
    ENGAGEMENT_LEVEL = "engagement_level"
    PRIORITY = "priority"
    PREDICTIVE_DECILE = "predictive_decile"  # calibration, once leads carry a predictive score


LEAD_DIMENSIONS: tuple[Dimension, ...] = (
    Dimension.SOURCE,
    Dimension.CAMPAIGN,
    Dimension.CONTENT,
    Dimension.SEGMENT,
    Dimension.OWNER,
    Dimension.FIT_GRADE,
    Dimension.ENGAGEMENT_LEVEL,
    Dimension.PRIORITY,
)
#: Which ``--by`` each report takes, and its default (None: no breakdown unless asked).
DIMENSIONS: Mapping[Report, tuple[Dimension, ...]] = {
    Report.FUNNEL: LEAD_DIMENSIONS,
    Report.VELOCITY: LEAD_DIMENSIONS,
    Report.FEEDBACK: LEAD_DIMENSIONS,
    Report.ATTRIBUTION: (Dimension.SOURCE, Dimension.CAMPAIGN, Dimension.CONTENT),
    Report.CALIBRATION: (
        Dimension.FIT_GRADE,
        Dimension.ENGAGEMENT_LEVEL,
        Dimension.PRIORITY,
        Dimension.PREDICTIVE_DECILE,
    ),
}
DEFAULT_DIMENSION: Mapping[Report, Dimension | None] = {
    Report.FUNNEL: None,
    Report.VELOCITY: None,
    Report.FEEDBACK: None,
    Report.ATTRIBUTION: Dimension.SOURCE,
    Report.CALIBRATION: Dimension.FIT_GRADE,
}

#: Funnel stages in lifecycle order (the transition table's; prospect is a status, not a stage).
FUNNEL_STAGES: tuple[Stage, ...] = STAGE_ORDER
#: The action that brings a lead forward into each stage after ``lead``.
FORWARD_ACTIONS: Mapping[Stage, Action] = {
    Stage.MQL: Action.PROMOTE_MQL,
    Stage.SQL: Action.QUALIFY_SQL,
    Stage.OPPORTUNITY: Action.OPEN_OPPORTUNITY,
    Stage.CUSTOMER: Action.WIN,
    Stage.EVANGELIST: Action.ADVOCATE,
}


class AttributionModel(StrEnum):
    FIRST_TOUCH = "first_touch"
    LAST_TOUCH = "last_touch"
    LINEAR = "linear"
    U_SHAPED = "u_shaped"  # 40% first, 40% last, 20% shared by the touches between
    W_SHAPED = "w_shaped"  # 30% first, 30% MQL touch, 30% opportunity touch, 10% shared by the rest
    TIME_DECAY = "time_decay"  # weight halves every half-life before the outcome


#: What attribution credits, in order: the first MQL, SQL and win of each lead (and the win's revenue).
OUTCOMES: tuple[str, ...] = ("mql", "sql", "customer")

#: Activity types that are not marketing touches: passive impressions (a page view, an email open),
#: work done by sales, negative signals, and what customers do after the sale.
NON_TOUCH_TYPES: frozenset[str] = frozenset(
    {
        "page_view",
        "email_open",
        "email_sent",
        "call",
        "meeting",
        "email_bounce",
        "unsubscribe",
        "referral_made",
        "review",
        "case_study",
        "nps_response",
    }
)

#: Priorities the rule-based score calls hot: fit A or B with engagement level 1 or 2.
HOT_PRIORITIES: tuple[str, ...] = ("A1", "A2", "B1", "B2")

DEFAULT_HALF_LIFE_DAYS = 7.0
MAX_HALF_LIFE_DAYS = 3650.0
NO_VALUE = "(none)"  # the group of leads without a value for the dimension


@dataclass(frozen=True)
class ReportRequest:
    """A validated report request. ``start``/``end`` are UTC instants, ``end`` exclusive; None: unbounded."""

    report: Report
    by: Dimension | None
    mode: Mode
    start: datetime | None
    end: datetime | None
    first_day: date | None = None
    last_day: date | None = None
    per_cycle: bool = False
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS
    limit: int = 20
    segments: tuple[str, ...] = field(default=())


def _choice(text: str, kind: type[StrEnum], option: str, allowed: Iterable[StrEnum] | None = None) -> StrEnum:
    value = text.strip().lower().replace("-", "_")
    names = [m.value for m in (allowed if allowed is not None else kind)]
    if value not in names:
        raise ValidationError(
            f"{option}: unknown value {text!r}; one of: {', '.join(names)}", field=option.lstrip("-")
        )
    return kind(value)


def parse_day(text: str | None, option: str) -> date | None:
    """An ISO date given on the command line (None when the option was not given)."""
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


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def parse_request(
    name: str,
    *,
    by: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    mode: str | None = None,
    per_cycle: bool = False,
    half_life_days: float | None = None,
    limit: int | None = None,
) -> ReportRequest:
    """Validate a report request; raise ``ValidationError`` naming the parameter at the first problem."""
    report = Report(_choice(name, Report, "report"))
    allowed = DIMENSIONS[report]
    dimension = (
        Dimension(_choice(by, Dimension, "--by", allowed)) if by is not None else DEFAULT_DIMENSION[report]
    )
    chosen_mode = Mode(_choice(mode, Mode, "--mode")) if mode is not None else Mode.COHORT
    first, last = parse_day(date_from, "--from"), parse_day(date_to, "--to")
    if first is not None and last is not None and last < first:
        raise ValidationError(
            f"--from {first.isoformat()} is after --to {last.isoformat()}: the date range is reversed",
            field="to",
        )
    if report is Report.CALIBRATION and chosen_mode is Mode.PERIOD:
        raise ValidationError(
            "--mode: calibration follows the leads created in the range to their outcome (cohort mode); "
            "period mode does not apply",
            field="mode",
        )
    if per_cycle and (report is not Report.FUNNEL or chosen_mode is not Mode.COHORT):
        raise ValidationError(
            "--per-cycle applies to the funnel in cohort mode only (period mode counts each transition)",
            field="per-cycle",
        )
    half_life = DEFAULT_HALF_LIFE_DAYS
    if half_life_days is not None:
        if report is not Report.ATTRIBUTION:
            raise ValidationError("--half-life applies to the attribution report only", field="half-life")
        if not math.isfinite(half_life_days) or not 0 < half_life_days <= MAX_HALF_LIFE_DAYS:
            raise ValidationError(
                f"--half-life: {half_life_days:g} days is out of range; give more than 0 and at most "
                f"{MAX_HALF_LIFE_DAYS:g} days",
                field="half-life",
            )
        half_life = float(half_life_days)
    if limit is not None and not 1 <= limit <= 1000:
        raise ValidationError(f"--limit: {limit} is out of range; give 1 to 1000", field="limit")
    return ReportRequest(
        report=report,
        by=dimension,
        mode=chosen_mode,
        start=day_start(first) if first else None,
        end=day_start(last) + timedelta(days=1) if last else None,
        first_day=first,
        last_day=last,
        per_cycle=per_cycle,
        half_life_days=half_life,
        limit=limit if limit is not None else 20,
    )


# ---- arithmetic on aggregates --------------------------------------------------------------------------

#: Percentiles as fractions a/b, so positions are exact integer arithmetic in SQL and here.
MEDIAN: tuple[int, int] = (1, 2)
P80: tuple[int, int] = (4, 5)


def quantile_positions(n: int, p: tuple[int, int]) -> tuple[int, int]:
    """The 1-based ranks whose values a percentile of ``n`` sorted values interpolates between."""
    a, b = p
    lo = (a * (n - 1)) // b + 1
    return lo, min(lo + 1, n)


def interpolate(n: int, p: tuple[int, int], values: Mapping[int, float]) -> float | None:
    """The percentile ``p`` of ``n`` sorted values given the values at the ranks of :func:`quantile_positions`."""
    if n <= 0:
        return None
    a, b = p
    lo, hi = quantile_positions(n, p)
    frac = ((a * (n - 1)) % b) / b
    low = values[lo]
    return low if frac == 0 or hi == lo else low + (values[hi] - low) * frac


def rate(part: int | float, whole: int | float) -> float:
    """``part / whole``, 0 when the whole is 0."""
    return float(part) / whole if whole else 0.0


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float] | None:
    """The 95% Wilson score interval of a proportion (None without observations)."""
    if n <= 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def stage_rows(counts: Mapping[Stage, int]) -> list[dict[str, object]]:
    """The funnel's stages in order with their counts and conversion to the next stage (a fraction)."""
    rows: list[dict[str, object]] = []
    for i, stage in enumerate(FUNNEL_STAGES):
        count = counts.get(stage, 0)
        following = counts.get(FUNNEL_STAGES[i + 1], 0) if i + 1 < len(FUNNEL_STAGES) else None
        rows.append(
            {
                "stage": stage.value,
                "count": count,
                "conversion_to_next": None if following is None else rate(following, count),
            }
        )
    return rows


def cumulative(furthest: Mapping[Stage, int]) -> dict[Stage, int]:
    """Leads per stage reached, from leads per furthest stage (reaching a stage means passing the earlier)."""
    out: dict[Stage, int] = {}
    running = 0
    for stage in reversed(FUNNEL_STAGES):
        running += furthest.get(stage, 0)
        out[stage] = running
    return out


def ordered_groups(values: Iterable[str]) -> list[str]:
    """Group names in a stable order, the no-value group last."""
    return sorted(set(values), key=lambda g: (g == NO_VALUE, g))


def round_days(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def percentiles(n: int, values: Mapping[int, float]) -> dict[str, float | None]:
    """Median and 80th percentile (days, rounded) of ``n`` values, given the values at the ranks the
    database picked (:func:`quantile_positions` of both)."""
    return {
        "median_days": round_days(interpolate(n, MEDIAN, values)),
        "p80_days": round_days(interpolate(n, P80, values)),
    }
