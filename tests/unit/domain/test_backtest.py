"""Backtest replay: when a model would have made each lead an MQL, weekly tallies, recall, capacity."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadstage.adapters.scoring_yaml import default_model_source, load_yaml
from leadstage.domain.backtest import (
    Crossing,
    LeadSummary,
    Outcomes,
    Tally,
    Weeks,
    capacity_threshold,
    first_mql,
    parse_day,
    readable_threshold,
    replay,
    tally,
    week_range,
)
from leadstage.domain.errors import ValidationError
from leadstage.domain.scoring import (
    SECONDS_PER_DAY,
    ActivityFacts,
    engagement_score,
    evaluate_engagement,
    evaluate_fit,
    fold_all,
    parse_model,
)

DAY = SECONDS_PER_DAY
MONDAY = datetime(2026, 3, 2, tzinfo=UTC).timestamp()  # 2026-W10 starts on Monday 2 March 2026

# Webinars give 10 points with a 7-day half-life; "at least B and level 2" needs fit >= 25 and
# engagement >= 17. Three webinars a week apart give 10, 10/2 + 10 = 15, 15/2 + 10 = 17.5: the lead
# crosses on its third one.
MODEL = """name: tiny
fit:
  rules:
    - {name: exec, property: Seniority, op: equals, value: VP, points: 30}
  exclusions:
    - {name: students, property: Seniority, op: equals, value: Student, reason: student_or_job_seeker}
engagement:
  rules:
    - {name: webinar, activity: webinar_attended, points: 10, decay: {half_life_days: 7}}
    - {name: demo, activity: demo, points: 5, repeat: false, qualifies: true, decay: {window_days: 30}}
grades:
  fit: {A: {min: 40}, B: {min: 25, max: 40}, C: {min: 10, max: 25}, D: {max: 10}}
  engagement: {1: {min: 30}, 2: {min: 17, max: 30}, 3: {min: 5, max: 17}, 4: {max: 5}}
mql:
  when:
    - {fit: B, engagement: 2}
"""

VP = {"properties": {"Seniority": "VP"}}
STUDENT = {"properties": {"Seniority": "Student"}}
NOBODY = {"properties": {"Seniority": "Intern"}}


def model(text: str = MODEL):
    data, locate = load_yaml(text, source="model.yaml")
    return parse_model(data, locate=locate)


def webinar(day: float) -> ActivityFacts:
    return ActivityFacts("webinar_attended", MONDAY + day * DAY)


def crossings_of(facts, days, created_day=0.0, **kw):
    m = model()
    return replay(m, evaluate_fit(m, facts), MONDAY + created_day * DAY, [webinar(d) for d in days], **kw)


# ---- replaying one lead -----------------------------------------------------------------------------


def test_a_lead_that_crosses_on_its_third_activity_counts_in_that_week():
    # webinars on Tuesday of weeks 10, 11 and 12: 10, 15, then 17.5 >= 17 (level 2)
    crossings = crossings_of(VP, [1, 8, 15])
    assert len(crossings) == 1
    assert crossings[0].ts == MONDAY + 15 * DAY
    assert crossings[0].score == pytest.approx(17.5)
    weeks = Weeks(date(2026, 3, 2), 4)
    counted = Tally(weeks)
    counted.add(first_mql(crossings), Outcomes())
    assert [w.mqls for w in counted.by_week] == [0, 0, 1, 0]
    assert weeks.label(2) == "2026-W12"


def test_decay_between_activities_can_keep_a_lead_below_the_criteria():
    # the third webinar three weeks after the second: 15 / 4 + 10 = 13.75, never an MQL
    assert crossings_of(VP, [1, 8, 29]) == ()


def test_activities_are_replayed_in_time_order_whatever_order_they_arrive_in():
    assert crossings_of(VP, [15, 1, 8]) == crossings_of(VP, [1, 8, 15])


def test_an_excluded_lead_never_counts_whatever_it_does():
    m = model()
    fit = evaluate_fit(m, STUDENT)
    assert fit.excluded_by == "students"
    acts = [webinar(d) for d in range(0, 30, 2)] + [ActivityFacts("demo", MONDAY + DAY)]
    assert replay(m, fit, MONDAY, acts, all_crossings=True) == ()


def test_a_low_fit_lead_never_meets_fit_and_engagement_criteria():
    assert crossings_of(NOBODY, range(0, 30, 2), all_crossings=True) == ()


def test_a_qualifying_activity_makes_an_mql_on_its_own():
    m = model()
    fit = evaluate_fit(m, NOBODY)
    crossings = replay(m, fit, MONDAY, [ActivityFacts("demo", MONDAY + 3 * DAY)])
    assert [c.ts for c in crossings] == [MONDAY + 3 * DAY]


def test_the_creation_time_is_a_moment_too():
    # "fit at least A with any engagement" is met the moment an A-fit lead is created
    m = model(MODEL.replace("{fit: B, engagement: 2}", "{fit: A, engagement: 4}").replace("30}", "45}", 1))
    fit = evaluate_fit(m, VP)
    assert fit.grade == "A"
    crossings = replay(m, fit, MONDAY + 2 * DAY, [webinar(5)])
    assert [c.ts for c in crossings] == [MONDAY + 2 * DAY]


def test_activities_before_creation_count_at_their_own_times():
    crossings = crossings_of(VP, [1, 8, 15], created_day=20)
    assert [c.ts for c in crossings] == [MONDAY + 15 * DAY]


def test_all_crossings_keep_every_new_high_while_the_criteria_hold():
    crossings = crossings_of(VP, [1, 8, 15, 16, 40, 41], all_crossings=True)
    assert [c.ts for c in crossings] == [MONDAY + d * DAY for d in (15, 16)]
    assert crossings[1].score == pytest.approx(17.5 * 2 ** (-1 / 7) + 10)
    assert first_mql(crossings) == MONDAY + 15 * DAY
    assert first_mql(crossings, threshold=20) == MONDAY + 16 * DAY
    assert first_mql(crossings, threshold=100) is None


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "page_view",
                    "email_click",
                    "email_open",
                    "content_download",
                    "webinar_attended",
                    "unsubscribe",
                    "demo",
                    "free_trial",
                ]
            ),
            st.floats(0, 200),
            st.sampled_from(["/pricing", "/demo", "/blog"]),
        ),
        max_size=25,
    ),
    st.floats(0, 300),
)
def test_the_fast_engagement_score_is_exactly_evaluate_engagement(events, read_day):
    m = model(default_model_source())
    acts = [ActivityFacts(t, MONDAY + d * DAY, properties={"page": p}) for t, d, p in events]
    states = fold_all(m, acts)
    at = MONDAY + read_day * DAY
    assert engagement_score(m, states, at) == evaluate_engagement(m, states, at).score


# ---- outcomes, weekly figures and recall --------------------------------------------------------------


def test_precision_counts_outcomes_at_or_after_the_mql_and_recall_only_customers_flagged_before_winning():
    weeks = Weeks(date(2026, 3, 2), 4)
    t = Tally(weeks)
    mql = MONDAY + 15 * DAY
    # 1: MQL in week 12, later SQL and customer: counts everywhere, caught before the win
    t.add(mql, Outcomes.of([("sql", mql + DAY), ("customer", mql + 9 * DAY)]))
    # 2: SQL only before its MQL time (an earlier cycle): not an SQL from this MQL
    t.add(mql, Outcomes.of([("sql", mql - DAY)]))
    # 3: never flagged, won in the range: a customer missed
    t.add(None, Outcomes.of([("customer", MONDAY + 3 * DAY)]))
    # 4: flagged only after it had already won: missed for recall, and its week counts it as a customer
    t.add(MONDAY + 20 * DAY, Outcomes.of([("sql", MONDAY + 5 * DAY), ("customer", MONDAY + 20 * DAY)]))
    # 5: won after the range: not in the recall denominator
    t.add(mql, Outcomes.of([("customer", weeks.end + DAY)]))
    week12 = t.by_week[2]
    assert (week12.mqls, week12.sqls, week12.customers) == (4, 1, 3)
    assert week12.precision_sql == 0.25
    totals = t.totals()
    assert (totals.customers_won, totals.customers_caught) == (3, 1)
    assert totals.recall_customer == pytest.approx(1 / 3, abs=1e-4)
    assert totals.mean_weekly_mqls == 1.0
    assert t.by_week[0].precision_sql is None  # no MQLs: no precision, not zero


def test_mqls_outside_the_range_are_not_counted():
    weeks = Weeks(date(2026, 3, 2), 1)
    t = Tally(weeks)
    t.add(MONDAY - 1, Outcomes())
    t.add(MONDAY + 7 * DAY, Outcomes())
    t.add(MONDAY, Outcomes())
    assert t.totals().mqls == 1


# ---- ranges -------------------------------------------------------------------------------------------


def test_the_range_is_whole_iso_weeks_defaulting_to_the_history():
    weeks = week_range(None, None, (date(2026, 3, 4), date(2026, 3, 16)))
    assert (weeks.first, weeks.count, weeks.last_day) == (date(2026, 3, 2), 3, date(2026, 3, 22))
    assert [weeks.label(i) for i in range(3)] == ["2026-W10", "2026-W11", "2026-W12"]
    assert week_range(date(2026, 3, 10), None, (date(2026, 1, 1), date(2026, 3, 11))).count == 1
    assert week_range(date(2026, 3, 1), date(2026, 3, 1), None).first == date(2026, 2, 23)


def test_iso_week_labels_cross_years():
    assert Weeks(date(2025, 12, 29), 1).label(0) == "2026-W01"


@pytest.mark.parametrize(
    ("start", "end", "span", "expected"),
    [
        (date(2026, 3, 9), date(2026, 3, 1), None, "is after --to 2026-03-01: the range is reversed"),
        (date(2026, 5, 1), None, (date(2026, 1, 1), date(2026, 3, 1)), "empty range: --from 2026-05-01"),
        (None, date(2025, 5, 1), (date(2026, 1, 1), date(2026, 3, 1)), "empty range: --to 2025-05-01"),
        (None, None, None, "nothing to backtest"),
    ],
)
def test_reversed_or_empty_ranges_are_bad_input(start, end, span, expected):
    with pytest.raises(ValidationError) as info:
        week_range(start, end, span)
    assert expected in str(info.value)


@pytest.mark.parametrize("text", ["", "  ", "2026-13-01", "March 3rd", "2026/03/01"])
def test_dates_must_be_iso_dates(text):
    with pytest.raises(ValidationError, match="--from"):
        parse_day(text, "--from")
    assert parse_day("2026-03-01", "--from") == date(2026, 3, 1)
    assert parse_day(None, "--from") is None


# ---- capacity -----------------------------------------------------------------------------------------


def lead(*points: tuple[float, float]) -> LeadSummary:
    """Crossings from (day, score) pairs."""
    return LeadSummary(tuple(Crossing(MONDAY + d * DAY, s) for d, s in points))


def test_the_smallest_engagement_threshold_that_fits_the_capacity():
    weeks = Weeks(date(2026, 3, 2), 2)
    leads = [lead((0, 20), (1, 30)), lead((2, 25)), lead((8, 40)), lead((9, 18), (10, 26))]
    assert capacity_threshold(leads, weeks, 2) is None  # 4 MQLs in 2 weeks already fit 2 a week
    threshold = capacity_threshold(leads, weeks, 1.5)  # at most 3: lifting T above 18 drops lead 4...
    # ... only to its second crossing (26), still an MQL; above 20 lead 1 moves to 30; above 25 lead 2
    # drops out: T = 26 leaves leads 1 (at 30), 3 and 4 (at 26)
    assert threshold == 26
    assert tally(leads, weeks, threshold).totals().mqls == 3
    assert capacity_threshold(leads, weeks, 0.5) == 40
    assert tally(leads, weeks, 40).totals().mqls == 1


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.integers(0, 30), st.integers(0, 60)), max_size=4),
        max_size=12,
    ),
    st.integers(1, 6),
    st.integers(1, 5),
)
def test_the_sweep_agrees_with_trying_every_observed_score(raw, per_week, count):
    leads = []
    for pairs in raw:  # crossings rise in time and score
        points, best = [], -1.0
        for d, s in sorted(pairs):
            if s > best:
                points.append((d, float(s)))
                best = s
        leads.append(lead(*points))
    weeks = Weeks(date(2026, 3, 2), count)
    limit = per_week * count
    found = capacity_threshold(leads, weeks, per_week)
    if tally(leads, weeks).totals().mqls <= limit:
        assert found is None
        return
    assert found is not None
    assert tally(leads, weeks, found).totals().mqls <= limit
    smaller = sorted({c.score for s in leads for c in s.crossings if c.score < found})
    assert all(tally(leads, weeks, t).totals().mqls > limit for t in smaller)


def test_a_readable_threshold_is_rounded_up_only_when_it_still_fits():
    weeks = Weeks(date(2026, 3, 2), 1)
    leads = [lead((0, 10.123456)), lead((1, 10.125)), lead((2, 3.0))]
    exact = capacity_threshold(leads, weeks, 2)
    assert exact == 10.123456
    # rounding up to 10.13 would drop the lead at 10.125 too, which still fits: 10.13 it is
    assert readable_threshold(leads, weeks, 2, exact) == 10.13
