"""The report arithmetic: percentiles from picked ranks, Wilson intervals, cumulative funnels, requests."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from leadstage.domain.analytics import (
    MEDIAN,
    P80,
    Dimension,
    Mode,
    Report,
    cumulative,
    interpolate,
    parse_request,
    quantile_positions,
    stage_rows,
    wilson_interval,
)
from leadstage.domain.errors import ValidationError
from leadstage.domain.stages import Stage


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 10, 11, 99, 1000])
def test_percentiles_from_the_two_picked_ranks_equal_linear_interpolation(n: int) -> None:
    values = sorted(random.Random(n).uniform(0, 100) for _ in range(n))
    for p, fraction in ((MEDIAN, 0.5), (P80, 0.8)):
        lo, hi = quantile_positions(n, p)
        picked = {lo: values[lo - 1], hi: values[hi - 1]}
        expected = statistics.quantiles(values, n=10, method="inclusive")[7] if n > 1 and p == P80 else None
        got = interpolate(n, p, picked)
        assert got is not None
        if p == MEDIAN:
            assert got == pytest.approx(statistics.median(values))
        elif expected is not None:
            assert got == pytest.approx(expected)
        else:
            assert got == values[0]
        assert fraction  # documents which percentile p stands for


def test_no_values_have_no_percentile() -> None:
    assert interpolate(0, MEDIAN, {}) is None


def test_wilson_interval_contains_the_rate_and_stays_in_bounds() -> None:
    assert wilson_interval(0, 0) is None
    low, high = wilson_interval(0, 10) or (0.0, 0.0)
    assert low == 0.0
    assert 0.27 < high < 0.29
    low, high = wilson_interval(50, 100) or (0.0, 0.0)
    assert low == pytest.approx(0.4038, abs=1e-4)
    assert high == pytest.approx(0.5962, abs=1e-4)
    low, high = wilson_interval(10, 10) or (0.0, 0.0)
    assert high == pytest.approx(1.0)
    assert not math.isnan(low)


def test_a_lead_counts_in_every_stage_up_to_its_furthest() -> None:
    counts = cumulative({Stage.LEAD: 50, Stage.MQL: 30, Stage.CUSTOMER: 20})
    assert counts[Stage.LEAD] == 100
    assert counts[Stage.MQL] == 50
    assert counts[Stage.SQL] == counts[Stage.OPPORTUNITY] == counts[Stage.CUSTOMER] == 20
    assert counts[Stage.EVANGELIST] == 0
    rows = stage_rows(counts)
    assert [r["stage"] for r in rows] == ["lead", "mql", "sql", "opportunity", "customer", "evangelist"]
    assert rows[0]["conversion_to_next"] == 0.5
    assert rows[4]["conversion_to_next"] == 0.0
    assert rows[5]["conversion_to_next"] is None


def test_requests_default_to_cohort_mode_over_all_history() -> None:
    req = parse_request("Attribution")
    assert req.report is Report.ATTRIBUTION
    assert req.mode is Mode.COHORT
    assert req.by is Dimension.SOURCE
    assert req.start is None
    assert req.end is None
    assert req.half_life_days == 7.0
    ranged = parse_request("funnel", date_from="2026-01-01", date_to="2026-01-31", by="fit-grade")
    assert ranged.by is Dimension.FIT_GRADE
    assert ranged.start is not None
    assert ranged.end is not None
    assert (ranged.end - ranged.start).days == 31  # --to is included


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "pipeline"}, "report"),
        ({"name": "funnel", "by": "colour"}, "by"),
        ({"name": "attribution", "by": "owner"}, "by"),
        ({"name": "funnel", "date_from": "2026-02-01", "date_to": "2026-01-01"}, "to"),
        ({"name": "funnel", "date_from": " "}, "from"),
        ({"name": "funnel", "mode": "weekly"}, "mode"),
        ({"name": "attribution", "half_life_days": 0.0}, "half-life"),
        ({"name": "attribution", "half_life_days": float("inf")}, "half-life"),
        ({"name": "velocity", "half_life_days": 3.0}, "half-life"),
        ({"name": "funnel", "per_cycle": True, "mode": "period"}, "per-cycle"),
        ({"name": "calibration", "mode": "period"}, "mode"),
        ({"name": "feedback", "limit": 5000}, "limit"),
    ],
)
def test_bad_requests_name_the_parameter(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_request(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
