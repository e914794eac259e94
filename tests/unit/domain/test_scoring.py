"""The scoring model: validation that names the place, fit, engagement with decay, grades, MQL criteria."""

from __future__ import annotations

import itertools
import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadstage.adapters.scoring_yaml import default_model_source, load_yaml
from leadstage.domain.errors import ValidationError
from leadstage.domain.scoring import (
    SECONDS_PER_DAY,
    ActivityFacts,
    ActivityGroup,
    FitEvaluator,
    GroupFolder,
    Predictive,
    RuleState,
    evaluate_engagement,
    evaluate_fit,
    fold_all,
    mql_reasons,
    parse_model,
    states_json,
)
from tests.builders import assert_same_states

T0 = datetime(2026, 6, 1, tzinfo=UTC).timestamp()
DAY = SECONDS_PER_DAY

MODEL = """name: test model
fit:
  groups:
    role: {cap: 30}
  rules:
    - {name: exec, group: role, property: Seniority, op: in, value: [C-level, VP], points: 25}
    - {name: finance, group: role, property: Department, op: equals, value: Finance, points: 15}
    - {name: big, field: account.employees, op: range, min: 200, points: 20}
    - {name: no phone, field: phone, op: missing, points: -5}
  exclusions:
    - {name: students, property: Seniority, op: equals, value: Student, reason: student_or_job_seeker}
engagement:
  groups:
    web: {cap: 20}
  rules:
    - {name: pricing, activity: page_view, where: {page: {contains: /pricing}}, points: 8, group: web,
       decay: {half_life_days: 10}}
    - {name: webinar, activity: webinar_attended, points: 15, decay: {half_life_days: 30}}
    - {name: trial, activity: free_trial, points: 20, repeat: false, decay: {half_life_days: 60}}
    - {name: clicks, activity: email_click, points: 2, decay: none}
    - {name: demo, activity: demo, points: 30, repeat: false, qualifies: true, decay: {window_days: 30}}
    - {name: events, activity: event_attended, points: 5, decay: {window_days: 14}}
grades:
  fit: {A: {min: 40}, B: {min: 25, max: 40}, C: {min: 10, max: 25}, D: {max: 10}}
  engagement: {1: {min: 30}, 2: {min: 15, max: 30}, 3: {min: 5, max: 15}, 4: {max: 5}}
mql:
  when:
    - {fit: B, engagement: 2}
"""


def model(text: str = MODEL, **kw):
    data, locate = load_yaml(text, source="model.yaml")
    return parse_model(data, locate=locate, **kw)


def test_the_default_model_is_valid():
    m = model(default_model_source())
    assert m.fit_rules
    assert m.engagement_rules
    assert m.qualifying_rules == ("demo request",)


def error_of(text: str, **kw) -> str:
    with pytest.raises(ValidationError) as info:
        model(text, **kw)
    return str(info.value)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "op: in, value: [C-level, VP]",
            "op: like, value: [C-level, VP]",
            "line 6: fit.rules[0].op: unknown operator 'like'",
        ),
        (
            "op: range, min: 200",
            "op: range, min: lots",
            "line 8: fit.rules[2].min: expected a number, got 'lots'",
        ),
        (
            "field: account.employees, op: range, min: 200",
            "field: job_title, op: range, min: 200",
            "line 8: fit.rules[2].op: range compares numbers, but this field holds text",
        ),
        (
            "{half_life_days: 10}",
            "{half_life_days: 0}",
            "line 17: engagement.rules[0].decay.half_life_days: must be greater than zero",
        ),
        (
            "{half_life_days: 30}",
            "{half_life_days: -3}",
            "line 18: engagement.rules[1].decay.half_life_days: must be greater than zero",
        ),
        (
            "{name: webinar,",
            "{name: pricing,",
            "line 18: engagement.rules[1].name: duplicate rule name 'pricing'",
        ),
        ("B: {min: 25, max: 40}", "B: {min: 25, max: 35}", "grades.fit: bands B and A leave a gap"),
        ("B: {min: 25, max: 40}", "B: {min: 25, max: 45}", "grades.fit: bands B and A overlap"),
        ("D: {max: 10}", "D: {max: 5}", "grades.fit: bands D and C leave a gap"),
        ("D: {max: 10}", "D: {min: 0, max: 10}", "band D must have no min"),
        ("group: web,", "group: webs,", "line 16: engagement.rules[0].group: unknown group 'webs'"),
        (
            "activity: free_trial",
            "activity: free_trail",
            "line 19: engagement.rules[2].activity: unknown activity type",
        ),
        (
            "    - {fit: B, engagement: 2}",
            "    - {fit: E, engagement: 2}",
            "mql.when[0].fit: fit is a grade A, B, C, D",
        ),
        ("  when:", "  wen:", "line 27: mql.wen: unknown key 'wen'"),
        (
            "    - {fit: B, engagement: 2}",
            "    - {fit: B, predictive_decile: 0}",
            "line 28: mql.when[0].predictive_decile: predictive_decile is a decile 1-10",
        ),
        (
            "    - {fit: B, engagement: 2}",
            "    - {predictive_decile: true}",
            "mql.when[0].predictive_decile: predictive_decile is a decile 1-10",
        ),
        (
            "    - {fit: B, engagement: 2}",
            "    - {predictive_score: 1.5}",
            "mql.when[0].predictive_score: predictive_score is a probability above 0 and at most 1",
        ),
        (
            "    - {fit: B, engagement: 2}",
            "    - {predictive_score: high}",
            "mql.when[0].predictive_score: expected a number, got 'high'",
        ),
        (
            "    - {fit: B, engagement: 2}",
            "    - {}",
            "mql.when[0]: a criterion needs at least one of fit, engagement, predictive_decile",
        ),
        (
            "    - {fit: B, engagement: 2}",
            "    - {fit: B, predictive: 2}",
            "mql.when[0].predictive: unknown key 'predictive'",
        ),
    ],
)
def test_invalid_models_are_refused_naming_line_and_key(old, new, expected):
    assert old in MODEL
    assert expected in error_of(MODEL.replace(old, new, 1))


def test_yaml_syntax_errors_name_line_and_column():
    message = error_of("name: x\nfit: {rules: [\n")
    assert message.startswith("model.yaml: line 3, column 1: invalid YAML")


def test_an_empty_model_is_refused():
    assert "the model is empty" in error_of("")
    assert "no fit rules and no engagement rules" in error_of(
        "grades: {fit: {A: {min: 1}, B: {min: 0, max: 1}, C: {min: -1, max: 0}, D: {max: -1}},"
        " engagement: {1: {min: 1}, 2: {min: 0, max: 1}, 3: {min: -1, max: 0}, 4: {max: -1}}}\n"
        "mql: {when: [{fit: A, engagement: 1}]}\n"
    )


def test_comparisons_of_the_wrong_type_with_known_property_types():
    text = MODEL.replace(
        "property: Department, op: equals, value: Finance", "property: Department, op: range, min: 3"
    )
    assert "range compares numbers, but this field holds text" in error_of(
        text, known_properties={"Department": "string"}
    )


def test_rules_on_properties_no_lead_has_warn():
    m = model(known_properties={"Seniority": "string"})
    assert any("'Department'" in w for w in m.warnings)


def test_fit_lines_add_up_exactly_and_caps_show_as_a_line():
    m = model()
    facts = {"properties": {"Seniority": "VP", "Department": "finance"}, "account.employees": 400}
    fit = evaluate_fit(m, facts)
    names = [c.rule for c in fit.contributions]
    assert names == ["exec", "finance", "big", "no phone", "cap role (30)"]
    assert fit.score == sum(c.points for c in fit.contributions) == 25 + 15 + 20 - 5 - 10
    assert fit.grade == "A"


def test_an_exclusion_forces_the_lowest_grade_and_says_why():
    fit = evaluate_fit(
        model(), {"properties": {"Seniority": "Student"}, "account.employees": 5000, "phone": "1"}
    )
    assert (fit.grade, fit.excluded_by, fit.exclusion_reason) == ("D", "students", "student_or_job_seeker")
    assert fit.score == 20


def test_the_fit_evaluator_remembers_results_and_agrees_with_evaluation():
    m = model()
    evaluator = FitEvaluator(m)
    for facts in ({"properties": {"Seniority": "VP"}}, {"properties": {"Seniority": "VP"}, "phone": "x"}):
        assert evaluator(facts) == evaluate_fit(m, facts)


def act(type_: str, days_ago: float, **props):
    return ActivityFacts(type_, T0 - days_ago * DAY, properties=props)


def test_exponential_decay_halves_points_every_half_life():
    m = model()
    states = fold_all(m, [act("webinar_attended", 30)])
    result = evaluate_engagement(m, states, T0)
    assert result.contributions[0].points == 15
    assert math.isclose(result.contributions[0].decayed_points, 7.5, rel_tol=1e-12)


def test_window_rules_count_only_the_last_n_days():
    m = model()
    states = fold_all(m, [act("event_attended", 20), act("event_attended", 10), act("event_attended", 3)])
    result = evaluate_engagement(m, states, T0)
    assert [c.decayed_points for c in result.contributions] == [10]
    later = evaluate_engagement(m, states, T0 + 12 * DAY)
    assert later.score == 0


def test_once_only_rules_count_once_and_decay_from_the_latest_hit():
    m = model()
    states = fold_all(m, [act("free_trial", 120), act("free_trial", 60)])
    line = evaluate_engagement(m, states, T0).contributions[0]
    assert line.points == 20
    assert math.isclose(line.decayed_points, 10, rel_tol=1e-12)


def test_activity_filters_and_group_caps():
    m = model()
    acts = [act("page_view", 0, page="/pricing")] * 4 + [act("page_view", 0, page="/blog")]
    result = evaluate_engagement(m, fold_all(m, acts), T0)
    assert [(c.rule, c.decayed_points) for c in result.contributions] == [
        ("pricing", 32),
        ("cap web (20)", -12),
    ]
    assert result.score == 20
    assert result.level == 2


def test_engagement_lines_add_up_exactly_to_the_score():
    m = model()
    rng = random.Random(5)
    types = ["page_view", "webinar_attended", "free_trial", "email_click", "demo", "event_attended"]
    acts = [
        act(rng.choice(types), rng.uniform(0, 200), page=rng.choice(["/pricing", "/"])) for _ in range(300)
    ]
    result = evaluate_engagement(m, fold_all(m, acts), T0)
    assert result.score == sum(c.decayed_points for c in result.contributions)


def test_mql_criteria_are_at_least_semantics_and_qualifying_rules_stand_alone():
    m = model()
    fit_b = evaluate_fit(m, {"properties": {"Seniority": "VP"}, "phone": "1"})
    assert fit_b.grade == "B"
    engaged = evaluate_engagement(m, fold_all(m, [act("webinar_attended", 0)]), T0)
    assert engaged.level == 2
    assert mql_reasons(m, fit_b, engaged) == ["fit at least B and engagement at least 2"]
    cold = evaluate_engagement(m, {}, T0)
    assert mql_reasons(m, fit_b, cold) == []
    fit_d = evaluate_fit(m, {"properties": {}})
    demo = evaluate_engagement(m, fold_all(m, [act("demo", 1)]), T0)
    assert mql_reasons(m, fit_d, demo) == ["qualifying activity: demo"]
    excluded = evaluate_fit(m, {"properties": {"Seniority": "Student"}})
    assert mql_reasons(m, excluded, demo) == []


def test_mql_criteria_may_read_the_predictive_score():
    m = model(
        MODEL.replace(
            "    - {fit: B, engagement: 2}",
            "    - {fit: B, engagement: 2}\n    - {fit: C, predictive_decile: 2}\n    - {predictive_score: 0.8}",
        )
    )
    assert [c.name for c in m.predictive_criteria] == [
        "fit at least C and predictive decile at most 2",
        "predictive score at least 0.8",
    ]
    fit_c = evaluate_fit(m, {"properties": {"Department": "Finance"}, "phone": "1"})
    assert fit_c.grade == "C"
    cold = evaluate_engagement(m, {}, T0)
    assert mql_reasons(m, fit_c, cold) == []  # no predictive score: no predictive criterion is met
    assert mql_reasons(m, fit_c, cold, Predictive(0.41, 2)) == [
        "fit at least C and predictive decile at most 2"
    ]
    assert mql_reasons(m, fit_c, cold, Predictive(0.41, 3)) == []
    fit_d = evaluate_fit(m, {"properties": {}})
    assert mql_reasons(m, fit_d, cold, Predictive(0.41, 1)) == []  # the fit condition holds too
    assert mql_reasons(m, fit_d, cold, Predictive(0.8, 1)) == ["predictive score at least 0.8"]
    excluded = evaluate_fit(m, {"properties": {"Seniority": "Student"}})
    assert mql_reasons(m, excluded, cold, Predictive(0.99, 1)) == []


events = st.lists(
    st.tuples(
        st.sampled_from(
            ["page_view", "webinar_attended", "free_trial", "email_click", "demo", "event_attended", "chat"]
        ),
        st.floats(min_value=0, max_value=400, allow_nan=False),
        st.booleans(),
    ),
    min_size=0,
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(
    events=events,
    split=st.integers(min_value=0, max_value=60),
    seed=st.integers(0, 10_000),
    read_after=st.floats(min_value=0, max_value=100, allow_nan=False),
)
def test_incremental_and_batch_scoring_agree(events, split, seed, read_after):
    """Folding activities as they arrive (any order, in several steps) equals folding them all at once."""
    m = model()
    acts = [act(t, days, page="/pricing" if pricing else "/") for t, days, pricing in events]
    arrival = list(acts)
    random.Random(seed).shuffle(arrival)
    incremental = fold_all(m, arrival[:split])
    incremental = fold_all(m, arrival[split:], incremental)
    batch = fold_all(m, sorted(acts, key=lambda a: a.ts))
    as_of = T0 + read_after * DAY
    a, b = evaluate_engagement(m, incremental, as_of), evaluate_engagement(m, batch, as_of)
    assert abs(a.score - b.score) <= 1e-9
    assert a.level == b.level
    for x, y in zip(a.contributions, b.contributions, strict=True):
        assert x.rule == y.rule
        assert abs((x.decayed_points or 0) - (y.decayed_points or 0)) <= 1e-9


def test_states_survive_a_round_trip_through_json():
    m = model()
    from leadstage.domain.scoring import RuleState

    states = fold_all(m, [act("event_attended", 3), act("webinar_attended", 5), act("free_trial", 9)])
    again = {k: RuleState.from_json(v.to_json()) for k, v in states.items()}
    assert evaluate_engagement(m, again, T0) == evaluate_engagement(m, states, T0)
    assert datetime.fromtimestamp(T0, UTC) - timedelta(days=0) == datetime(2026, 6, 1, tzinfo=UTC)


def test_a_qualifying_rule_qualifies_only_while_it_still_gives_points():
    m = model()
    fit_d = evaluate_fit(m, {"properties": {}})
    old_demo = evaluate_engagement(m, fold_all(m, [act("demo", 45)]), T0)  # window 30 days
    assert mql_reasons(m, fit_d, old_demo) == []
    recent = evaluate_engagement(m, fold_all(m, [act("demo", 5)]), T0)
    assert mql_reasons(m, fit_d, recent) == ["qualifying activity: demo"]


def _groups(m, activities, ref):
    """What the database's aggregate gives for these activities (GroupPlan), computed here in Python."""
    plan = m.group_plan
    found: dict = {}
    for a in activities:
        if a.type not in plan.types:
            continue
        keys = tuple(
            getattr(a, k) if k in ("source", "campaign", "content") else a.properties.get(k)
            for k in plan.keys[a.type]
        )
        at = a.ts if a.type in plan.timed else None
        slot = found.setdefault((a.type, repr(keys), at), [keys, 0, -math.inf, [0.0] * 4])
        slot[1] += 1
        slot[2] = max(slot[2], a.ts)
        for i, h in enumerate(plan.half_lives[a.type]):
            slot[3][i] += 2.0 ** ((a.ts - ref) / h)
    return [
        ActivityGroup(type_, keys, hits, last, tuple(sums[: len(plan.half_lives[type_])]))
        for (type_, _k, _t), (keys, hits, last, sums) in found.items()
    ]


@settings(max_examples=200, deadline=None)
@given(events=events, ref_day=st.floats(min_value=-50, max_value=500, allow_nan=False))
def test_states_from_aggregated_groups_equal_the_fold(events, ref_day):
    """Batch scoring's aggregates (counts, last times, sums of powers of two per half-life;
    types with window rules grouped by time too) give the states the one-by-one fold gives."""
    m = model()
    pages = itertools.cycle(["/pricing", "/", 1, True, "/Pricing ", None])
    acts = [act(t, days, page="/pricing" if pricing else next(pages)) for t, days, pricing in events]
    ref = T0 - ref_day * DAY
    got = GroupFolder(m, m.group_plan).states(_groups(m, acts, ref), ref)
    expected = fold_all(m, [a for a in sorted(acts, key=lambda a: a.ts) if a.type in m.group_plan.types])
    assert got is not None
    assert_same_states(got, expected)


def test_times_too_far_from_the_reference_are_left_to_the_fold():
    m = model()
    acts = [act("webinar_attended", 100 * 365)]  # 1,217 half-lives back
    assert GroupFolder(m, m.group_plan).states(_groups(m, acts, T0), T0) is None
    assert GroupFolder(m, m.group_plan).states(_groups(m, [act("webinar_attended", 4)], T0), T0)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=12),
        st.tuples(
            st.floats(allow_nan=True, allow_infinity=True),
            st.floats(min_value=-1e12, max_value=1e12),
            st.integers(min_value=0, max_value=10**6),
            st.floats(min_value=-1e12, max_value=1e12),
            st.lists(st.floats(min_value=-1e12, max_value=1e12), max_size=3).map(tuple),
        ),
        max_size=5,
    )
)
def test_states_json_is_json_dumps(raw):
    import json

    states = {k: RuleState(*v) for k, v in raw.items()}
    expected = json.dumps({k: v.to_json() for k, v in states.items()}, separators=(",", ":"))
    assert states_json(states) == expected


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.0, -0.0, 1.0, 250.0, 5000.5, "250", " vp ", "VP", "Finance", "", [1], {"a": 1}]),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.fixed_dictionaries({"Seniority": VALUES, "Department": VALUES, "phone": VALUES}), max_size=30)
)
def test_the_fit_evaluator_agrees_with_evaluation_for_values_equal_as_keys(rows):
    m = model()
    evaluator = FitEvaluator(m)
    for row in rows:
        facts = {"properties": {k: v for k, v in row.items() if k != "phone"}, "phone": row["phone"]}
        assert evaluator(facts) == evaluate_fit(m, facts)


@settings(max_examples=200, deadline=None)
@given(events=events, split=st.integers(min_value=0, max_value=60), seed=st.integers(0, 10_000))
def test_fold_all_is_fold_after_fold_bit_for_bit(events, split, seed):
    """fold_all keeps states in lists and remembers rule matches; it gives exactly what folding one
    activity into one rule at a time gives, from scratch and onto stored states."""
    from leadstage.domain.scoring import fold

    m = model()
    pages = itertools.cycle(["/pricing", "/", 1, True, "/Pricing ", None])
    acts = [act(t, days, page="/pricing" if pricing else next(pages)) for t, days, pricing in events]
    random.Random(seed).shuffle(acts)

    def one_by_one(activities, states=None):
        out = dict(states or {})
        for a in activities:
            for rule in m.engagement_rules:
                if rule.matches(a):
                    out[rule.name] = fold(rule, out.get(rule.name), a.ts)
        return out

    first = one_by_one(acts[:split])
    assert fold_all(m, acts[:split]) == first
    assert fold_all(m, acts[split:], first) == one_by_one(acts[split:], first)


@settings(max_examples=300, deadline=None)
@given(
    events=events,
    split=st.integers(min_value=0, max_value=60),
    second=st.integers(min_value=0, max_value=60),
    seed=st.integers(0, 10_000),
)
def test_states_folded_apart_merge_into_what_folding_onto_stored_states_gives(events, split, second, seed):
    """An import folds a batch's activities from nothing in its read-ahead process and merges the result
    into the stored states (stored as JSON), piece after piece: hits, last hits and window times exactly
    as folding onto the stored states, values equal within rounding, scores and levels the same."""
    from leadstage.domain.scoring import merge_states

    m = model(MODEL.replace("points: 2, decay: none}", "points: -2.5, decay: none}"))  # negative, halves
    acts = [act(t, days, page="/pricing" if pricing else "/") for t, days, pricing in events]
    random.Random(seed).shuffle(acts)
    first, later = sorted((split, second))

    def stored_as_json(states):
        return {name: RuleState.from_json(state.to_json()) for name, state in states.items()}

    merged = stored_as_json(fold_all(m, acts[:first]))
    for piece in (acts[first:later], acts[later:]):
        apart = {name: (*state,) for name, state in fold_all(m, piece).items()}  # as pickled
        merged = stored_as_json(merge_states(m, merged, apart))
    onto = fold_all(m, acts[later:], fold_all(m, acts[first:later], fold_all(m, acts[:first])))
    assert_same_states(merged, onto)
    for read_after in (0, 7, 45):
        a = evaluate_engagement(m, merged, T0 + read_after * DAY)
        b = evaluate_engagement(m, onto, T0 + read_after * DAY)
        assert abs(a.score - b.score) <= 1e-9
        assert a.level == b.level


def test_merging_nothing_changes_nothing_and_new_rules_are_taken_as_folded():
    from leadstage.domain.scoring import merge_states

    m = model()
    stored = fold_all(m, [act("webinar_attended", 30), act("demo", 5)])
    assert merge_states(m, stored, {}) == stored
    new = fold_all(m, [act("email_click", 2), act("email_click", 1)])
    assert merge_states(m, {}, new) == new
    both = merge_states(m, stored, new)
    assert both["clicks"] == new["clicks"]
    assert both["webinar"] == stored["webinar"]
