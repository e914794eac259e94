"""The transition table of DOMAIN.md, exactly."""

from __future__ import annotations

from datetime import timedelta

import pytest

from leadstage.domain.errors import (
    InvalidTransition,
    MissingField,
    PermissionDenied,
    PolicyNotMet,
    UnknownAction,
    UnknownReasonCode,
    ValidationError,
)
from leadstage.domain.qualification import Policy, evaluate
from leadstage.domain.stages import (
    TRANSITIONS,
    QualificationCheck,
    TransitionRequest,
    allowed_actions,
    creation_entry,
    plan_transition,
    time_in_stages,
)
from tests.builders import T0, actor, state

PASSED = QualificationCheck(passed=True, summary="budget, authority, need, timeline confirmed")

# (action, from stage/status, to stage/status, acting role, request fields)
HAPPY = [
    (
        "promote_mql",
        ("lead", "open"),
        ("mql", "open"),
        "marketing",
        {"reason": "manual", "note": "met at fair"},
    ),
    (
        "promote_mql",
        ("lead", "nurture"),
        ("mql", "open"),
        "system",
        {"criteria": ["fit>=B", "engagement>=2"]},
    ),
    ("accept", ("mql", "open"), ("mql", "working"), "sales_rep", {}),
    ("reject", ("mql", "open"), ("lead", "nurture"), "sales_rep", {"reason": "no_need"}),
    ("reject", ("mql", "working"), ("lead", "nurture"), "sales_manager", {"reason": "bad_timing"}),
    ("qualify_sql", ("mql", "working"), ("sql", "working"), "sales_rep", {}),
    (
        "open_opportunity",
        ("sql", "working"),
        ("opportunity", "working"),
        "sales_rep",
        {"amount": "40000", "currency": "eur", "close_date": "2026-03-31"},
    ),
    (
        "win",
        ("opportunity", "working"),
        ("customer", "open"),
        "sales_rep",
        {"amount": "38000", "close_date": "2026-03-20"},
    ),
    ("lose", ("opportunity", "working"), ("lead", "nurture"), "sales_rep", {"reason": "price"}),
    ("recycle", ("sql", "working"), ("lead", "nurture"), "sales_rep", {"reason": "unresponsive"}),
    ("recycle", ("opportunity", "working"), ("lead", "nurture"), "sales_manager", {"reason": "bad_timing"}),
    ("advocate", ("customer", "open"), ("evangelist", "open"), "marketing", {"note": "wrote a case study"}),
    (
        "advocate",
        ("customer", "open"),
        ("evangelist", "open"),
        "system",
        {"advocacy_activity": "referral_made"},
    ),
    (
        "disqualify",
        ("lead", "open"),
        ("lead", "disqualified"),
        "marketing",
        {"reason": "student_or_job_seeker", "note": "student email"},
    ),
    (
        "disqualify",
        ("opportunity", "working"),
        ("opportunity", "disqualified"),
        "sales_rep",
        {"reason": "no_budget", "note": "budget frozen"},
    ),
    (
        "disqualify",
        ("lead", "nurture"),
        ("lead", "disqualified"),
        "sales_rep",
        {"reason": "bad_timing", "note": "next fiscal year"},
    ),
    ("reopen", ("sql", "disqualified"), ("lead", "open"), "system", {"reason": "recheck_due"}),
]


@pytest.mark.parametrize(("action", "src", "dst", "role", "fields"), HAPPY)
def test_each_row_of_the_table_moves_the_lead_as_documented(action, src, dst, role, fields):
    outcome = plan_transition(
        state(*src),
        TransitionRequest(action=action, **fields),
        actor=actor(role),
        at=T0,
        qualification=PASSED,
    )
    assert (outcome.state.stage.value, outcome.state.status.value) == dst
    assert outcome.entry.action == action
    assert outcome.entry.actor == role
    assert outcome.entry.at == T0
    assert (outcome.entry.from_stage.value, outcome.entry.from_status.value) == src


def test_the_table_has_exactly_the_eleven_actions_of_the_domain():
    assert [a.value for a in TRANSITIONS] == [
        "promote_mql",
        "accept",
        "reject",
        "qualify_sql",
        "open_opportunity",
        "win",
        "lose",
        "recycle",
        "advocate",
        "disqualify",
        "reopen",
    ]


def test_promotion_from_nurture_starts_a_new_cycle_and_from_open_does_not():
    from_nurture = plan_transition(
        state("lead", "nurture", cycle=2),
        TransitionRequest("promote_mql", criteria=["fit A"]),
        actor=actor("system"),
        at=T0,
    )
    from_open = plan_transition(
        state("lead", "open"),
        TransitionRequest("promote_mql", criteria=["fit A"]),
        actor=actor("system"),
        at=T0,
    )
    assert from_nurture.state.cycle == 3
    assert from_nurture.new_cycle
    assert from_open.state.cycle == 1
    assert not from_open.new_cycle
    assert from_open.entry.reason == "criteria_met"
    assert from_open.entry.data["criteria"] == ["fit A"]


def test_reopen_always_starts_a_new_cycle_and_keeps_the_furthest_stage():
    outcome = plan_transition(
        state("opportunity", "disqualified", cycle=1, furthest="opportunity"),
        TransitionRequest("reopen", reason="fit_changed"),
        actor=actor("marketing"),
        at=T0,
    )
    assert outcome.state.cycle == 2
    assert outcome.state.stage.value == "lead"
    assert outcome.state.furthest_stage.value == "opportunity"


def test_moving_back_keeps_the_furthest_stage_reached():
    outcome = plan_transition(
        state("opportunity", "working", furthest="opportunity"),
        TransitionRequest("lose", reason="competitor"),
        actor=actor("sales_rep"),
        at=T0,
    )
    assert outcome.state.stage.value == "lead"
    assert outcome.state.furthest_stage.value == "opportunity"


def test_a_transition_not_allowed_from_the_state_names_the_allowed_actions():
    with pytest.raises(InvalidTransition) as info:
        plan_transition(
            state("lead", "open"),
            TransitionRequest("win", amount="1", close_date="2026-01-01"),
            actor=actor("admin"),
            at=T0,
        )
    message = str(info.value)
    assert "lead/open" in message
    assert "allowed from lead/open: promote_mql, disqualify" in message
    assert info.value.allowed == ("promote_mql", "disqualify")


def test_marketing_cannot_make_a_lead_an_sql_whatever_its_state():
    for st in (state("mql", "working"), state("lead", "open")):
        with pytest.raises(PermissionDenied):
            plan_transition(
                st, TransitionRequest("qualify_sql"), actor=actor("marketing"), at=T0, qualification=PASSED
            )


def test_permission_is_checked_before_the_state_so_nothing_leaks():
    with pytest.raises(PermissionDenied) as info:
        plan_transition(state("customer", "open"), TransitionRequest("accept"), actor=actor("viewer"), at=T0)
    assert "customer" not in str(info.value)


def test_marketing_may_disqualify_only_at_lead_and_mql_stages():
    request = TransitionRequest("disqualify", reason="not_icp", note="wrong industry")
    plan_transition(state("mql", "open"), request, actor=actor("marketing"), at=T0)
    with pytest.raises(PermissionDenied):
        plan_transition(state("sql", "working"), request, actor=actor("marketing"), at=T0)


def test_sales_reps_act_on_their_own_and_unassigned_leads_only():
    rep = actor("sales_rep", name="rita", user_id=7)
    plan_transition(state("mql", "open", owner_id=7), TransitionRequest("accept"), actor=rep, at=T0)
    plan_transition(state("mql", "open", owner_id=None), TransitionRequest("accept"), actor=rep, at=T0)
    with pytest.raises(PermissionDenied):
        plan_transition(state("mql", "open", owner_id=8), TransitionRequest("accept"), actor=rep, at=T0)


def test_sales_managers_act_on_their_teams_leads():
    manager = actor("sales_manager", name="max", user_id=1, team="east")
    plan_transition(
        state("mql", "open", owner_id=7, owner_team="east"), TransitionRequest("accept"), actor=manager, at=T0
    )
    with pytest.raises(PermissionDenied):
        plan_transition(
            state("mql", "open", owner_id=9, owner_team="west"),
            TransitionRequest("accept"),
            actor=manager,
            at=T0,
        )


def test_qualify_sql_needs_the_policy_and_lists_what_is_missing():
    check = evaluate({"budget": True, "need": True})
    with pytest.raises(PolicyNotMet) as info:
        plan_transition(
            state("mql", "working"),
            TransitionRequest("qualify_sql"),
            actor=actor("sales_rep"),
            at=T0,
            qualification=check,
        )
    assert info.value.missing == ("authority", "timeline")


def test_a_policy_can_ask_for_need_plus_two_of_the_others():
    policy = Policy(required=("need",), optional=("budget", "authority", "timeline"), at_least=2)
    assert evaluate({"need": True, "budget": True, "timeline": True}, policy).passed
    assert not evaluate({"need": True, "budget": True}, policy).passed


@pytest.mark.parametrize(
    ("action", "fields", "error", "field"),
    [
        ("reject", {}, MissingField, "reason"),
        ("reject", {"reason": "too_expensive"}, UnknownReasonCode, "reason"),
        ("disqualify", {"reason": "bad_timing"}, MissingField, "note"),
        ("reject", {"reason": "other"}, MissingField, "note"),
        ("open_opportunity", {"currency": "EUR", "close_date": "2026-05-01"}, MissingField, "amount"),
        (
            "open_opportunity",
            {"amount": "lots", "currency": "EUR", "close_date": "2026-05-01"},
            ValidationError,
            "amount",
        ),
        (
            "open_opportunity",
            {"amount": "10", "currency": "euro", "close_date": "2026-05-01"},
            ValidationError,
            "currency",
        ),
        (
            "open_opportunity",
            {"amount": "10", "currency": "EUR", "close_date": "31/05/2026"},
            ValidationError,
            "close_date",
        ),
        ("promote_mql", {"reason": "manual"}, MissingField, "note"),
        ("promote_mql", {}, MissingField, "reason"),
        ("advocate", {}, MissingField, "note"),
    ],
)
def test_input_is_validated_before_any_rule_and_names_the_field(action, fields, error, field):
    with pytest.raises(error) as info:
        # the state is wrong for every one of these: input errors must win over state errors
        plan_transition(
            state("evangelist", "open"), TransitionRequest(action, **fields), actor=actor("admin"), at=T0
        )
    assert info.value.field == field


def test_an_unknown_action_is_refused_with_the_known_ones():
    with pytest.raises(UnknownAction) as info:
        plan_transition(state(), TransitionRequest("promote"), actor=actor(), at=T0)
    assert "promote_mql" in str(info.value)


def test_allowed_actions_depend_on_state_and_role():
    assert allowed_actions(state("mql", "open")) == ["accept", "reject", "disqualify"]
    assert allowed_actions(state("mql", "open"), actor("marketing")) == ["disqualify"]
    assert allowed_actions(state("customer", "open"), actor("viewer")) == []
    assert allowed_actions(state("lead", "disqualified")) == ["reopen"]


def test_time_in_each_stage_is_derived_from_history():
    entries = [creation_entry(actor="import", at=T0)]
    st = state()
    for action, fields, days in [
        ("promote_mql", {"criteria": ["x"]}, 2),
        ("accept", {}, 3),
        ("qualify_sql", {}, 10),
    ]:
        who = "system" if action == "promote_mql" else "sales_rep"
        out = plan_transition(
            st,
            TransitionRequest(action, **fields),
            actor=actor(who),
            at=entries[-1].at + timedelta(days=days),
            qualification=PASSED,
        )
        entries.append(out.entry)
        st = out.state
    spent = time_in_stages(entries, as_of=entries[-1].at + timedelta(days=1))
    assert spent[st.stage] == 86400
    assert {k.value: v / 86400 for k, v in spent.items()} == {"lead": 2, "mql": 13, "sql": 1}
