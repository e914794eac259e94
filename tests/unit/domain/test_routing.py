"""Routing decisions: the document's validation, rule matching, weighted round-robin, capacity, queues."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

import pytest
import yaml

from leadstage.adapters.scoring_yaml import load_yaml
from leadstage.domain.errors import ValidationError
from leadstage.domain.routing import (
    Directory,
    LeadFacts,
    MemberLoad,
    RoutingDocument,
    TeamDay,
    choose_member,
    parse_document,
    plan,
    priority_key,
)

USERS = {
    "max": ("sales_manager", True),
    "ana": ("sales_rep", True),
    "ben": ("sales_rep", True),
    "cy": ("sales_rep", True),
    "gone": ("sales_rep", False),
    "nina": ("marketing", True),
}
DIRECTORY = Directory(users=USERS, segments=frozenset({"enterprise"}))
TODAY = date(2026, 11, 2)

DOC = """\
name: test routing
territories:
  DACH: [Germany, Austria, Switzerland]
  Nordics: [Sweden, Norway]
teams:
  emea:
    manager: max
    timezone: Europe/Berlin
    hours:
      mon-fri: "09:00-17:00"
    holidays: [2026-12-25]
    first_response: 2h
    daily_capacity: 3
    reroute_on_breach: true
    members:
      ana: {weight: 2, territories: [DACH]}
      ben: {weight: 1}
      cy: {weight: 1, max_open: 5, out_of_office_until: 2026-11-10}
rules:
  - name: enterprise to ana
    segment: enterprise
    user: ana
  - name: dach
    territory: DACH
    filter: fit_grade >= B
    team: emea
  - name: everyone else
    team: emea
"""


def _parse(text: str = DOC, checked: list[str] | None = None) -> RoutingDocument:
    data, locate = load_yaml(text, source="routing.yaml")

    def check(expr: str) -> None:
        if "bogus" in expr:
            raise ValidationError("position 1: unknown field 'bogus'", field="filter")
        if checked is not None:
            checked.append(expr)

    return parse_document(data, locate, source="routing.yaml", directory=DIRECTORY, check_filter=check)


def test_a_valid_document_reads_teams_members_and_ordered_rules() -> None:
    checked: list[str] = []
    doc = _parse(checked=checked)
    team = doc.teams["emea"]
    assert team.manager == "max"
    assert team.first_response_minutes == 120
    assert team.daily_capacity == 3
    assert team.week[0] == ((540, 1020),)
    assert team.week[5] == ()
    assert [m.username for m in team.members] == ["ana", "ben", "cy"]
    assert team.members[2].away(TODAY)
    assert not team.members[2].away(date(2026, 11, 10))
    assert [r.name for r in doc.rules] == ["enterprise to ana", "dach", "everyone else"]
    assert checked == ["fit_grade >= B"]
    assert doc.territory_of("germany") == "DACH"
    assert doc.territory_of("France") is None
    assert RoutingDocument.from_json(doc.as_json()) == doc


def _edit(path: list[Any], value: Any) -> str:
    data = yaml.safe_load(DOC)
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return yaml.safe_dump(data, sort_keys=False)


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["teams", "emea", "members", "zed"], {}, r"teams\.emea\.members\.zed: no user 'zed'"),
        (["teams", "emea", "manager"], "ghost", r"teams\.emea\.manager: no user 'ghost'"),
        (["teams", "emea", "manager"], "nina", "not a sales_manager"),
        (["teams", "emea", "members", "nina"], {}, "only sales reps and managers take leads"),
        (["teams", "emea", "members", "gone"], {}, "deactivated"),
        (["teams", "emea", "timezone"], "Europe/Atlantis", r"teams\.emea\.timezone: unknown time zone"),
        (["teams", "emea", "hours"], {"mon-fri": ["09:00-13:00", "12:00-17:00"]}, "overlap"),
        (
            ["teams", "emea", "hours"],
            {"mon-fri": "9 to 5"},
            r"teams\.emea\.hours\.mon-fri: .*not a time span",
        ),
        (["teams", "emea", "holidays"], ["Christmas"], "must be a date"),
        (["teams", "emea", "daily_capacity"], -1, "whole number"),
        (["teams", "emea", "members", "ben", "weight"], 0, "above 0"),
        (["teams", "emea", "members", "ben", "territories"], ["Atlantis"], "no territory 'Atlantis'"),
        (["teams", "emea", "colour"], "blue", r"teams\.emea\.colour: unknown key"),
        (["rules", 0, "segment"], "whales", r"rules\.0\.segment: no segment 'whales'"),
        (["rules", 1, "team"], "apac", r"rules\.1\.team: no team 'apac'"),
        (["rules", 0, "user"], "nobody", r"rules\.0\.user: no user 'nobody'"),
        (["rules", 1, "territory"], "Mars", "no territory 'Mars'"),
        (["rules", 1, "filter"], "bogus = 1", r"rules\.1\.filter: position 1: unknown field 'bogus'"),
        (["rules", 2, "user"], "ben", "exactly one target"),
        (["rules"], [], "at least one"),
        (["teams"], _DELETE, "declare at least one team"),
    ],
)
def test_every_bad_document_names_the_line_and_the_key(path: list[Any], value: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        _parse(_edit(path, value))
    assert "routing.yaml: line " in str(caught.value)


def test_a_user_in_two_teams_and_a_rule_naming_a_teamless_user_are_refused() -> None:
    data = yaml.safe_load(DOC)
    data["teams"]["nordics"] = {**data["teams"]["emea"], "members": {"ben": {}}}
    with pytest.raises(ValidationError, match="already a member of team 'emea'"):
        _parse(yaml.safe_dump(data))
    data = yaml.safe_load(DOC)
    del data["teams"]["emea"]["members"]["ana"]
    with pytest.raises(ValidationError, match="in no team of this document"):
        _parse(yaml.safe_dump(data))


def test_yaml_syntax_errors_name_the_line() -> None:
    with pytest.raises(ValidationError, match="line 4, column 1: invalid YAML"):
        _parse("teams:\n  emea:\n    manager: [max\n")


def _loads(**over: tuple[int, int]) -> dict[str, MemberLoad]:
    out = {}
    for i, name in enumerate(("ana", "ben", "cy"), start=1):
        open_mqls, today = over.get(name, (0, 0))
        out[name] = MemberLoad(user_id=i, username=name, open_mqls=open_mqls, today=today)
    return out


def test_weighted_round_robin_hands_out_in_proportion_to_weights() -> None:
    doc = _parse(DOC.replace("out_of_office_until: 2026-11-10", "out_of_office_until: 2026-01-01"))
    team = doc.teams["emea"]
    loads = _loads()
    given: Counter[str] = Counter()
    for n in range(40):
        chosen, _c = choose_member(team, loads, today=TODAY, territory="DACH")
        assert chosen is not None
        given[chosen.username] += 1
        loads[chosen.username].today += 1
        loads[chosen.username].last_assigned = n
    assert given["ana"] == 20
    assert given["ben"] == 10
    assert given["cy"] == 10


def test_capacity_time_away_and_territory_are_reasons_to_skip() -> None:
    team = _parse().teams["emea"]
    loads = _loads(ana=(0, 0), ben=(0, 0))
    chosen, candidates = choose_member(team, loads, today=TODAY, territory="Nordics")
    assert chosen is not None
    assert chosen.username == "ben"
    why = {c.username: c.why for c in candidates}
    assert "territory Nordics not theirs" in why["ana"]
    assert "out of office until 2026-11-10" in why["cy"]
    assert [c.chosen for c in candidates] == [False, True, False]
    back = _parse(DOC.replace("out_of_office_until: 2026-11-10", "out_of_office_until: 2026-11-02")).teams[
        "emea"
    ]
    full = _loads(cy=(5, 0), ben=(0, 0))
    chosen, candidates = choose_member(back, full, today=TODAY, territory="Nordics")
    assert chosen is not None
    assert chosen.username == "ben"
    assert "at capacity: 5 open MQLs (max 5)" in {c.username: c.why for c in candidates}["cy"]


def test_when_nobody_of_the_territory_is_free_anyone_free_may_take_it() -> None:
    team = _parse().teams["emea"]
    chosen, candidates = choose_member(team, _loads(), today=TODAY, territory="DACH", exclude=["ben"])
    assert chosen is not None
    assert chosen.username == "ana"
    chosen, candidates = choose_member(team, _loads(), today=TODAY, territory="Nordics", exclude=["ben"])
    assert chosen is not None
    assert chosen.username == "ana"
    assert "no territory member was free" in {c.username: c.why for c in candidates}["ana"]


def _lead(
    lead_id: int, priority: str | None, country: str | None = None, owner: str | None = None
) -> LeadFacts:
    return LeadFacts(
        lead_id=lead_id,
        version=1,
        cycle=1,
        priority=priority,
        engagement_score=None,
        since=float(lead_id),
        country=country,
        account_owner=owner,
    )


def test_the_best_leads_go_first_and_the_rest_wait_ranked_when_capacity_runs_out() -> None:
    doc = _parse()
    leads = [_lead(1, "C3"), _lead(2, "A1"), _lead(3, None), _lead(4, "B2"), _lead(5, "A2")]
    everyone = frozenset(lead.lead_id for lead in leads)
    matches = {0: frozenset(), 1: frozenset(), 2: everyone}
    days = {"emea": TeamDay(today=TODAY, handed=0, capacity=3)}
    decisions = plan(doc, leads, matches, loads=_loads(), days=days, now_ts=0.0)
    assert [d.lead_id for d in decisions] == [2, 5, 4, 1, 3]
    assert [d.user is not None for d in decisions] == [True, True, True, False, False]
    assert "daily hand-off capacity (3)" in decisions[3].reason
    assert decisions[3].team == "emea"
    assert days["emea"].handed == 3


def test_rules_match_in_order_with_segments_territories_and_sticky_account_owners() -> None:
    doc = _parse()
    leads = [
        _lead(1, "A1", "Germany"),
        _lead(2, "A1", "France"),
        _lead(3, "B1", "Germany", owner="ben"),
        _lead(4, "B2"),
    ]
    matches = {0: frozenset({2}), 1: frozenset({1, 2}), 2: frozenset({1, 2, 3})}
    days = {"emea": TeamDay(today=TODAY, handed=0, capacity=None)}
    by_id = {d.lead_id: d for d in plan(doc, leads, matches, loads=_loads(), days=days, now_ts=0.0)}
    assert (by_id[2].rule, by_id[2].user) == ("enterprise to ana", "ana")
    assert (by_id[1].rule, by_id[1].user) == ("dach", "ana")  # the DACH member
    assert by_id[3].kind == "account_owner"
    assert by_id[3].user == "ben"
    assert not by_id[3].counted
    assert by_id[4].user is None
    assert by_id[4].team is None
    assert "no rule matches" in by_id[4].reason


def test_priority_ranks_grade_then_level_then_engagement_then_waiting_time() -> None:
    keys = [
        priority_key("B1", 10, 5, 1),
        priority_key("A4", 0, 5, 2),
        priority_key(None, 99, 0, 3),
        priority_key("A4", 50, 9, 4),
        priority_key("A4", 50, 1, 5),
    ]
    assert [k[-1] for k in sorted(keys)] == [5, 4, 2, 1, 3]
