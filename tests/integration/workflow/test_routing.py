"""Routing, the hand-off queue, response SLAs and tick, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from leadstage.adapters.db import tables as t
from leadstage.adapters.scoring_yaml import load_yaml
from leadstage.bootstrap import Container
from leadstage.domain.activities import Activity
from leadstage.domain.errors import ConcurrencyConflict, PermissionDenied, ValidationError
from leadstage.domain.stages import Actor, Role
from leadstage.domain.tasks import TaskKind
from leadstage.services import routing as routing_service
from leadstage.services import segments as segment_service
from leadstage.services import tick as tick_service
from leadstage.services import users as user_service
from leadstage.services.leads import BUILTIN_ADMIN, LeadInput, resolve_actor, upsert_lead
from leadstage.services.ports import TaskQuery

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)  # Monday, 13:00 in Berlin

DOC = """\
name: emea routing
territories:
  DACH: [Germany, Austria]
teams:
  emea:
    manager: max
    timezone: Europe/Berlin
    hours:
      mon-fri: "09:00-17:00"
    first_response: 2h
    daily_capacity: {capacity}
    reroute_on_breach: true
    members:
      ana: {{weight: 1, territories: [DACH]}}
      ben: {{weight: 1}}
      rob: {{weight: 1}}
  apac:
    manager: mia
    timezone: Asia/Tokyo
    hours: {{mon-fri: "09:00-18:00"}}
    members: [kai]
rules:
  - name: big accounts
    segment: enterprise
    user: ben
  - name: emea
    filter: properties.Region = EMEA
    team: emea
"""


def _loader(text: str, name: str) -> tuple[object, object]:
    return load_yaml(text, source=name)


def setup(c: Container, *, capacity: str = "null") -> None:
    with c.uow() as uow:
        for name, role in (
            ("max", "sales_manager"),
            ("mia", "sales_manager"),
            ("ana", "sales_rep"),
            ("ben", "sales_rep"),
            ("rob", "sales_rep"),
            ("kai", "sales_rep"),
            ("nina", "marketing"),
        ):
            user_service.add_user(uow, username=name, role=role, team=None, password_hash=None, at=NOW)
        segment_service.create_segment(
            uow, "enterprise", "properties.Employees >= 1000", actor_name="admin", at=NOW
        )
        routing_service.set_routing(
            uow,
            DOC.format(capacity=capacity),
            source="routing.yaml",
            load=_loader,
            actor=BUILTIN_ADMIN,
            at=NOW,
        )
        uow.commit()


def mqls(c: Container, *specs: tuple[str, str | None, dict[str, object]]) -> list[int]:
    """Open MQLs without an owner: (email, priority, properties)."""
    ids = []
    with c.uow() as uow:
        for email, _priority, props in specs:
            lead, _o, _w = upsert_lead(
                uow,
                LeadInput(email=email, properties=dict(props)),
                normalizer=c.identity,
                at=NOW - timedelta(days=1),
            )
            assert lead.id is not None
            ids.append(lead.id)
        uow.commit()
    with c.engine.begin() as conn:
        for lead_id, (_e, priority, _p) in zip(ids, specs, strict=True):
            conn.execute(
                update(t.leads)
                .where(t.leads.c.id == lead_id)
                .values(stage="mql", status="open", furthest_stage="mql", priority=priority)
            )
    return ids


def owners(c: Container, ids: list[int]) -> list[str | None]:
    with c.engine.connect() as conn:
        rows = dict(
            conn.execute(
                select(t.leads.c.id, t.users.c.username)
                .select_from(t.leads.outerjoin(t.users, t.users.c.id == t.leads.c.owner_id))
                .where(t.leads.c.id.in_(ids))
            ).all()
        )
    return [rows[i] for i in ids]


def count(c: Container, table: t.Table) -> int:  # type: ignore[name-defined]
    with c.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


EMEA = {"Region": "EMEA"}


def test_routing_assigns_open_mqls_records_why_and_running_it_again_changes_nothing(
    container: Container,
) -> None:
    setup(container)
    ids = mqls(
        container,
        ("a@one.io", "A1", {**EMEA, "Country": "Germany"}),
        ("b@two.io", "B2", {**EMEA, "Country": "France"}),
        ("c@three.io", "C1", {**EMEA, "Employees": 5000}),
        ("d@four.io", "A1", {"Region": "LATAM"}),
    )
    with container.uow() as uow:
        report = routing_service.route_pending(uow, at=NOW)
        uow.commit()
    assert (report.routed, report.queued, report.unassigned) == (3, 0, 1)
    assert report.by_rule == {"emea": 2, "big accounts": 1}
    assert owners(container, ids) == ["ana", "ben", "ben", None]
    with container.uow() as uow:
        german = uow.routing.current(ids[0])
        assert german is not None
        assert german.rule == "emea"
        assert german.team == "emea"
        assert german.kind == "rule"
        assert german.sla_due_at == datetime(
            2026, 11, 2, 14, 0, tzinfo=UTC
        )  # 13:00 + 2 business hours, Berlin
        assert german.sla_state == "pending"
        chosen = {cand["user"]: cand for cand in german.candidates}
        assert chosen["ana"]["chosen"]
        assert not chosen["ben"]["chosen"]
        history = uow.leads.history(ids[0])
        assert [h.action for h in history] == ["create", "assign"]
        assert history[-1].data["to"] == "ana"
        assert history[-1].data["rule"] == "emea"
        waiting = routing_service.queued(uow, "none")
        assert [q.lead_id for q in waiting] == [ids[3]]
        assert "no rule matches" in waiting[0].reason
        again = routing_service.route_pending(uow, at=NOW + timedelta(minutes=5))
        uow.commit()
    assert (again.considered, again.routed, again.unassigned) == (1, 0, 1)
    assert count(container, t.assignments) == 3
    with container.uow() as uow:
        assert len(uow.leads.history(ids[0])) == 2


def test_beyond_the_daily_capacity_the_best_wait_ranked_and_go_first_the_next_day(
    container: Container,
) -> None:
    setup(container, capacity="2")
    ids = mqls(
        container,
        ("p1@a.io", "C2", EMEA),
        ("p2@b.io", "A1", EMEA),
        ("p3@c.io", "B1", EMEA),
        ("p4@d.io", "A2", EMEA),
        ("p5@e.io", None, EMEA),
    )
    report = tick_service.tick(container.uow, now=NOW)
    assert report.results["handoff"]["routed"] == 2
    assert report.results["handoff"]["queued"] == 3
    owned = owners(container, ids)
    assert [i for i, o in zip(ids, owned, strict=True) if o] == [ids[1], ids[3]]  # A1 and A2 first
    with container.uow() as uow:
        queue = routing_service.queued(uow, "emea")
    assert [(q.position, q.lead_id, q.priority) for q in queue] == [
        (1, ids[2], "B1"),
        (2, ids[0], "C2"),
        (3, ids[4], None),
    ]
    assert "daily hand-off capacity (2)" in queue[0].reason
    # later the same day: nothing more; the next day: the next two best
    assert tick_service.tick(container.uow, now=NOW + timedelta(hours=3)).results["handoff"]["routed"] == 0
    next_day = tick_service.tick(container.uow, now=NOW + timedelta(days=1))
    assert next_day.results["handoff"]["routed"] == 2
    assert [i for i, o in zip(ids, owners(container, ids), strict=True) if o is None] == [ids[4]]
    with container.uow() as uow:
        assert [(q.position, q.lead_id) for q in routing_service.queued(uow, "emea")] == [(1, ids[4])]


def _sales_activity(c: Container, lead_id: int, at: datetime, kind: str = "call") -> None:
    with c.uow() as uow:
        uow.activities.add(
            Activity(lead_id=lead_id, type=kind, occurred_at=at, idempotency_key=f"t:{lead_id}:{at}")
        )
        uow.commit()


def test_a_first_sales_activity_meets_the_sla_and_a_missed_one_is_flagged_tasked_and_rerouted(
    container: Container,
) -> None:
    setup(container)
    answered, ignored = mqls(container, ("fast@a.io", "A1", EMEA), ("slow@b.io", "A2", EMEA))
    tick_service.tick(container.uow, now=NOW)
    first_owner = owners(container, [ignored])[0]
    _sales_activity(container, answered, NOW + timedelta(minutes=45))
    _sales_activity(container, ignored, NOW - timedelta(days=3))  # before the assignment: not a response
    later = NOW + timedelta(hours=2, minutes=1)  # past the 14:00 UTC deadline
    report = tick_service.tick(container.uow, now=later)
    assert report.results["sla"] == {
        "checked": 2,
        "met": 1,
        "breached": 1,
        "rerouted": 1,
        "closed": 0,
        "tasks": 1,
    }
    with container.uow() as uow:
        met = uow.routing.current(answered)
        assert met is not None
        assert (met.sla_state, met.response_minutes) == ("met", 45.0)
        history = uow.routing.history(ignored)
        assert [(a.username, a.sla_state, a.current) for a in history] == [
            (first_owner, "breached", False),
            (history[1].username, "pending", True),
        ]
        assert history[1].username != first_owner
        assert history[1].kind == "sla_reroute"
        tasks = uow.tasks.find(TaskQuery(kinds=(TaskKind.SLA_BREACH,)))
        max_id = resolve_actor(uow, "max").user_id
        assert [(task.owner_id, task.key) for task in tasks] == [(max_id, f"sla:{ignored}:1:{history[0].id}")]
        assert "sla_breach" in [h.action for h in uow.leads.history(ignored)]
    # tick is idempotent: the same evaluation again changes nothing
    again = tick_service.tick(container.uow, now=later)
    assert again.results["sla"]["breached"] == 0
    assert again.results["sla"]["tasks"] == 0
    assert count(container, t.tasks) == 1
    assert count(container, t.assignments) == 3


def test_an_sla_closes_when_the_lead_leaves_the_mql_stage(container: Container) -> None:
    setup(container)
    (lead_id,) = mqls(container, ("gone@a.io", "A1", EMEA))
    tick_service.tick(container.uow, now=NOW)
    with container.engine.begin() as conn:
        conn.execute(update(t.leads).where(t.leads.c.id == lead_id).values(stage="lead", status="nurture"))
    report = tick_service.tick(container.uow, now=NOW + timedelta(days=2))
    assert report.results["sla"]["closed"] == 1
    assert report.results["sla"]["breached"] == 0


def test_two_managers_rerouting_the_same_lead_at_once_one_wins_the_other_changes_nothing(
    container: Container,
) -> None:
    setup(container)
    (lead_id,) = mqls(container, ("race@a.io", "A1", EMEA))
    tick_service.tick(container.uow, now=NOW)
    with container.uow() as first, container.uow() as second:
        manager_a = resolve_actor(first, "max")
        manager_b = resolve_actor(second, "max")
        lead_a = first.leads.get(lead_id)
        lead_b = second.leads.get(lead_id)
        assert lead_a is not None
        assert lead_b is not None
        routing_service.assign_lead(
            first, lead_id, user="rob", team=None, actor=manager_a, at=NOW, expected_version=lead_a.version
        )
        first.commit()
        with pytest.raises(ConcurrencyConflict):
            routing_service.assign_lead(
                second,
                lead_id,
                user="ana",
                team=None,
                actor=manager_b,
                at=NOW,
                expected_version=lead_b.version,
            )
    assert owners(container, [lead_id]) == ["rob"]
    with container.uow() as uow:
        kinds = [(a.kind, a.username, a.current) for a in uow.routing.history(lead_id)]
    assert kinds[-1] == ("manual", "rob", True)
    assert len(kinds) == 2


def test_only_a_manager_of_the_team_or_an_admin_may_reroute(container: Container) -> None:
    setup(container)
    (lead_id,) = mqls(container, ("who@a.io", "A1", EMEA))
    tick_service.tick(container.uow, now=NOW)
    with container.uow() as uow:
        for name in ("ana", "nina", "mia"):
            with pytest.raises(PermissionDenied):
                routing_service.assign_lead(
                    uow, lead_id, user="rob", team=None, actor=resolve_actor(uow, name), at=NOW
                )
        with pytest.raises(PermissionDenied):  # max may not give it to another team
            routing_service.assign_lead(
                uow, lead_id, user="kai", team=None, actor=resolve_actor(uow, "max"), at=NOW
            )
        record = routing_service.assign_lead(
            uow, lead_id, user=None, team="apac", actor=BUILTIN_ADMIN, at=NOW
        )
        uow.commit()
    assert record.username == "kai"
    assert record.team == "apac"
    # Tokyo, Monday 21:00: the clock starts Tuesday 09:00 JST (00:00 UTC); four hours (the default) later
    assert record.sla_due_at == datetime(2026, 11, 3, 4, 0, tzinfo=UTC)


def test_a_routing_document_naming_what_does_not_exist_stores_nothing(container: Container) -> None:
    with container.uow() as uow:
        user_service.add_user(
            uow, username="max", role="sales_manager", team=None, password_hash=None, at=NOW
        )
        uow.commit()
    with (
        container.uow() as uow,
        pytest.raises(ValidationError, match=r"line 14, teams\.emea\.members\.ana: no user 'ana'"),
    ):
        routing_service.set_routing(
            uow, DOC.format(capacity=1), source="routing.yaml", load=_loader, actor=BUILTIN_ADMIN, at=NOW
        )
    assert count(container, t.routing_documents) == 0
    assert count(container, t.teams) == 0
    with container.uow() as uow:
        user_service.add_user(uow, username="rep", role="sales_rep", team=None, password_hash=None, at=NOW)
        uow.commit()
    with container.uow() as uow, pytest.raises(PermissionDenied):
        routing_service.set_routing(
            uow,
            "teams:\n  t:\n    timezone: UTC\n    hours: {mon: '09:00-10:00'}\n    members: [rep]\nrules:\n  - team: t\n",
            source="r.yaml",
            load=_loader,
            actor=Actor(name="rep", role=Role.SALES_REP),
            at=NOW,
        )


def test_out_of_office_members_get_nothing_until_they_are_back(container: Container) -> None:
    setup(container)
    with container.uow() as uow:
        for name in ("ben", "rob"):
            routing_service.set_away(uow, name, NOW.date() + timedelta(days=7), actor=BUILTIN_ADMIN)
        uow.commit()
    ids = mqls(container, ("x1@a.io", "A1", EMEA), ("x2@b.io", "A2", EMEA))
    tick_service.tick(container.uow, now=NOW)
    assert owners(container, ids) == ["ana", "ana"]  # the DACH member takes any lead while alone
    with container.uow() as uow:
        record = uow.routing.current(ids[0])
        assert record is not None
        why = {c["user"]: c["why"] for c in record.candidates}
        assert why["ben"] == f"out of office until {(NOW.date() + timedelta(days=7)).isoformat()}"


def test_two_ticks_at_once_act_once(container: Container) -> None:
    setup(container)
    ids = mqls(container, *((f"t{i}@x{i}.io", "B1", EMEA) for i in range(12)))
    reports = []

    def run() -> None:
        reports.append(tick_service.tick(container.uow, now=NOW))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert all(not r.errors for r in reports)
    assert sum(r.results.get("handoff", {}).get("routed", 0) for r in reports) == 12
    assert count(container, t.assignments) == 12
    assert all(owners(container, ids))


def test_a_rule_whose_segment_was_deleted_matches_nothing_and_says_so(container: Container) -> None:
    setup(container)
    (lead_id,) = mqls(container, ("big@corp.io", "A1", {**EMEA, "Employees": 5000}))
    with container.uow() as uow:
        segment_service.delete_segment(uow, "enterprise")
        report = routing_service.route_pending(uow, at=NOW)
        uow.commit()
    assert report.by_rule == {"emea": 1}
    assert report.warnings == [
        "rule 'big accounts' matches nothing: no segment 'enterprise' (segments: none yet)"
    ]
    with container.uow() as uow:
        explained = routing_service.explain_lead(uow, lead_id)
    assert explained["owner"] in ("ana", "ben", "rob")
    assert explained["queue"] is None


def test_a_lead_past_the_mql_stage_reassigned_by_hand_gets_no_response_deadline(container: Container) -> None:
    setup(container)
    (lead_id,) = mqls(container, ("sql@a.io", "A1", EMEA))
    with container.engine.begin() as conn:
        conn.execute(update(t.leads).where(t.leads.c.id == lead_id).values(stage="sql", status="working"))
    with container.uow() as uow:
        record = routing_service.assign_lead(uow, lead_id, user="ben", team=None, actor=BUILTIN_ADMIN, at=NOW)
        uow.commit()
    assert record.username == "ben"
    assert record.sla_due_at is None
    assert record.sla_state is None
