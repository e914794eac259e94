"""The demo company: plausible, deterministic, obeying the transition table, and fit predicts outcomes."""

from __future__ import annotations

import csv
import random
import shutil
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from leadstage.adapters.clock import FixedClock
from leadstage.adapters.demo_files import write_benchmark_files
from leadstage.bootstrap import Container, build
from leadstage.config import Settings
from leadstage.domain.activities import BUILTIN_ACTIVITY_TYPES, SALES_ACTIVITY_TYPES, SOURCES
from leadstage.domain.qualification import evaluate
from leadstage.domain.stages import (
    ADVOCACY_ACTIVITY_TYPES,
    Actor,
    Role,
    Stage,
    Status,
    TransitionRequest,
    initial_state,
    plan_transition,
)
from leadstage.services.demo import (
    ACTIVITY_CSV_COLUMNS,
    DEMO_TEAM,
    LEAD_CSV_COLUMNS,
    World,
    generate_demo,
    iter_people,
    offline_team,
    simulate_journey,
)
from leadstage.services.ports import LeadFilter
from tests.conftest import NOW

LEADS = 300
SEED = 7


def _generate(c: Container, *, leads: int = LEADS, seed: int = SEED) -> dict[str, Any]:
    return generate_demo(
        uow_factory=c.uow, normalizer=c.identity, leads=leads, seed=seed, now=c.clock.now(), progress=None
    )


def _container(path: Path, template: Path) -> Container:
    shutil.copy(template, path)
    return build(Settings(database_url=f"sqlite:///{path}"), clock=FixedClock(NOW))


@pytest.fixture(scope="module")
def demo_db(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[tuple[Container, dict[str, Any]]]:
    """One demo company (300 leads, seed 7) on SQLite, shared by the read-only tests below."""
    c = _container(tmp_path_factory.mktemp("demo") / "demo.db", sqlite_template)
    report = _generate(c)
    yield c, report
    c.close()


def _rows(c: Container, sql: str, **params: Any) -> list[Any]:
    with c.engine.connect() as conn:
        return list(conn.execute(text(sql), params).all())


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _Progress:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def advance(self, *, rows: int, bytes_read: int) -> None:
        self.calls.append((rows, bytes_read))


def test_the_demo_company_is_plausible_on_every_database(container: Container) -> None:
    progress = _Progress()
    report = generate_demo(
        uow_factory=container.uow,
        normalizer=container.identity,
        leads=LEADS,
        seed=SEED,
        now=NOW,
        progress=progress,
        chunk=64,  # several commits, each between two companies
    )

    assert report["leads"] == LEADS
    assert report["activities"] > LEADS * 3
    assert report["accounts"] > 50
    assert report["users"] == len(DEMO_TEAM)
    assert report["customers"] > 0
    assert report["disqualified"] > 0
    assert report["mqls"] > report["sqls"] >= report["opportunities"] >= report["customers"] > 0
    assert all(isinstance(v, int) for v in report.values())
    counted = {
        "leads": "SELECT count(*) FROM leads",
        "activities": "SELECT count(*) FROM activities",
        "accounts": "SELECT count(*) FROM accounts",
        "transitions": "SELECT count(*) FROM lead_history WHERE action <> 'create'",
        "bant_records": "SELECT count(*) FROM qualification_records",
    }
    for key, sql in counted.items():
        assert _rows(container, sql)[0][0] == report[key], key
    assert len(progress.calls) >= LEADS // 64
    assert progress.calls[-1] == (LEADS, LEADS)
    assert [done for done, _b in progress.calls] == sorted(done for done, _b in progress.calls)
    accounts_after_their_leads = _rows(
        container,
        "SELECT count(*) FROM leads l JOIN accounts a ON a.id = l.account_id WHERE a.created_at > l.created_at",
    )
    assert accounts_after_their_leads[0][0] == 0
    users = {r.username: (r.role, r.team) for r in _rows(container, "SELECT username, role, team FROM users")}
    for member in DEMO_TEAM:
        assert users[member.username] == (member.role.value, member.team)


def test_activities_carry_channels_campaigns_webinars_and_ebooks(
    demo_db: tuple[Container, dict[str, Any]],
) -> None:
    c, _report = demo_db
    contents = {r[0] for r in _rows(c, "SELECT DISTINCT content FROM activities WHERE content IS NOT NULL")}
    assert len({x for x in contents if x.startswith("Webinar: ")}) >= 3
    assert len({x for x in contents if x.startswith("eBook: ")}) >= 3
    webinar_types = {
        r[0] for r in _rows(c, "SELECT DISTINCT type FROM activities WHERE content LIKE 'Webinar: %'")
    }
    assert {"webinar_registered", "webinar_attended"} <= webinar_types
    types = {r[0] for r in _rows(c, "SELECT DISTINCT type FROM activities")}
    assert types <= set(BUILTIN_ACTIVITY_TYPES)
    assert {
        "page_view",
        "email_open",
        "email_click",
        "form_submit",
        "content_download",
        "call",
        "meeting",
    } <= types
    sources = {r[0] for r in _rows(c, "SELECT DISTINCT source FROM activities WHERE source IS NOT NULL")}
    assert sources <= set(SOURCES)
    assert len(sources) >= 8
    campaigns = {
        r[0] for r in _rows(c, "SELECT DISTINCT campaign FROM activities WHERE campaign IS NOT NULL")
    }
    assert any("Paid Search Brand" in x for x in campaigns)
    pages = _rows(
        c, "SELECT count(*) FROM activities WHERE type = 'page_view' AND properties LIKE '%/pricing%'"
    )
    assert pages[0][0] > 0
    keys = _rows(c, "SELECT count(*) FROM activities WHERE idempotency_key LIKE :p", p=f"demo:{SEED}:%")
    assert keys[0][0] == _rows(c, "SELECT count(*) FROM activities")[0][0]
    times = _rows(c, "SELECT min(occurred_at), max(occurred_at) FROM activities")[0]
    first, last = _aware(times[0]), _aware(times[1])
    assert last <= NOW
    assert (NOW - first).days >= 300  # twelve months of activity


def test_leads_have_people_companies_and_typed_properties(demo_db: tuple[Container, dict[str, Any]]) -> None:
    c, _report = demo_db
    with c.uow() as uow:
        _total, leads = uow.leads.search(LeadFilter())
        definitions = uow.properties.definitions("lead")
    assert len(leads) == LEADS
    assert definitions["Employees"].value == "integer"
    assert definitions["Seniority"].value == "string"
    seniorities = {lead.properties.get("Seniority") for lead in leads}
    assert {"C-level", "VP", "Director", "Manager", "Individual contributor"} <= seniorities
    assert seniorities & {"Student", "Job seeker"}
    free_mail = [lead for lead in leads if lead.identity.email and lead.identity.email.endswith("@gmail.com")]
    assert free_mail
    assert all(lead.identity.email_valid and lead.identity.email_normalized for lead in leads)
    assert sum(1 for lead in leads if lead.identity.phone) > LEADS // 5
    assert all(isinstance(lead.properties.get("Employees", 0), int) for lead in leads)
    with_account = [lead for lead in leads if lead.account_id is not None]
    assert len(with_account) > LEADS // 2
    industries = {r[0] for r in _rows(c, "SELECT DISTINCT industry FROM accounts")}
    assert len(industries) >= 8
    assert _rows(c, "SELECT count(*) FROM accounts WHERE domain IS NULL OR employees IS NULL")[0][0] == 0
    for lead in leads:
        assert lead.created_at <= NOW
        assert lead.first_touch_at == lead.created_at
        assert lead.first_source in SOURCES


def _actors(c: Container) -> dict[str, Actor]:
    actors = {"system": Actor.system()}
    for r in _rows(c, "SELECT id, username, role, team FROM users"):
        actors[r.username] = Actor(name=r.username, role=Role(r.role), user_id=r.id, team=r.team)
    return actors


def _request(entry: Any) -> TransitionRequest:
    data = entry.data or {}
    return TransitionRequest(
        action=entry.action,
        reason=entry.reason,
        note=entry.note,
        amount=data.get("amount") or data.get("closed_amount"),
        currency=data.get("currency"),
        close_date=data.get("expected_close") or data.get("closed_on"),
        criteria=data.get("criteria", ()),
        advocacy_activity=data.get("advocacy_activity"),
    )


def test_every_history_obeys_the_transition_table(demo_db: tuple[Container, dict[str, Any]]) -> None:
    c, _report = demo_db
    actors = _actors(c)
    bant: dict[tuple[int, int], list[Any]] = defaultdict(list)
    for r in _rows(c, "SELECT * FROM qualification_records ORDER BY recorded_at, id"):
        bant[(r.lead_id, r.cycle)].append(r)
    activities: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    for r in _rows(c, "SELECT lead_id, occurred_at, type FROM activities"):
        activities[r.lead_id].append((_aware(r.occurred_at), r.type))
    with c.uow() as uow:
        _total, leads = uow.leads.search(LeadFilter())
        histories = {lead.id: uow.leads.history(lead.id) for lead in leads if lead.id is not None}
    seen_actions: set[str] = set()
    for lead in leads:
        assert lead.id is not None
        history = histories[lead.id]
        assert history[0].action == "create"
        assert history[0].from_stage is None
        assert (history[0].to_stage, history[0].to_status, history[0].cycle) == (Stage.LEAD, Status.OPEN, 1)
        assert history[0].at == lead.created_at
        state = initial_state()
        for before, entry in pairwise(history):
            assert before.at < entry.at <= NOW
            assert (entry.from_stage, entry.from_status) == (state.stage, state.status), entry
            qualification = None
            if entry.action == "qualify_sql":
                confirmed = {
                    r.criterion: bool(r.confirmed)
                    for r in bant[(lead.id, state.cycle)]
                    if _aware(r.recorded_at) <= entry.at
                }
                qualification = evaluate(confirmed)
                assert qualification.passed, (lead.id, confirmed)
            if entry.action == "advocate":
                assert any(
                    t in ADVOCACY_ACTIVITY_TYPES and at <= entry.at for at, t in activities[lead.id]
                ), lead.id
            outcome = plan_transition(
                state, _request(entry), actor=actors[entry.actor], at=entry.at, qualification=qualification
            )
            assert (outcome.entry.to_stage, outcome.entry.to_status, outcome.entry.cycle) == (
                entry.to_stage,
                entry.to_status,
                entry.cycle,
            )
            state = outcome.state
            if entry.action == "accept":
                state = replace(state, owner_id=lead.owner_id, owner_team="sales")
            seen_actions.add(entry.action)
        assert (lead.stage, lead.status, lead.cycle, lead.state.furthest_stage) == (
            state.stage,
            state.status,
            state.cycle,
            state.furthest_stage,
        )
        accepted = any(e.action == "accept" for e in history)
        assert (lead.owner_id is not None) == accepted
        times = [at for at, _t in activities[lead.id]]
        if times:
            assert max(times) <= NOW
            assert lead.first_touch_at == min(times)
            assert lead.last_touch_at == max(times)
        promoted = [e.at for e in history if e.action == "promote_mql"]
        for at, type_ in activities[lead.id]:
            if type_ in SALES_ACTIVITY_TYPES:
                assert promoted, (lead.id, type_)
                assert at >= promoted[0], (lead.id, type_, at)
    expected = {
        "promote_mql",
        "accept",
        "reject",
        "qualify_sql",
        "open_opportunity",
        "win",
        "lose",
        "disqualify",
    }
    assert expected <= seen_actions


def test_opportunities_and_wins_carry_amounts_and_dates(demo_db: tuple[Container, dict[str, Any]]) -> None:
    c, _report = demo_db
    with c.uow() as uow:
        _total, leads = uow.leads.search(LeadFilter())
        entries = [e for lead in leads if lead.id is not None for e in uow.leads.history(lead.id)]
    opened = [e for e in entries if e.action == "open_opportunity"]
    assert opened
    for e in opened:
        assert float(e.data["amount"]) > 0
        assert len(e.data["currency"]) == 3
        assert date.fromisoformat(e.data["expected_close"]) > e.at.date()
    for e in entries:
        if e.action == "win":
            assert float(e.data["closed_amount"]) > 0
            assert date.fromisoformat(e.data["closed_on"]) == e.at.date()
        if e.action in ("disqualify", "reject", "lose", "recycle", "reopen"):
            assert e.reason
        if e.action == "disqualify":
            assert e.note
        if e.action == "promote_mql" and e.actor == "system":
            assert e.data["criteria"]


def _snapshot(c: Container) -> tuple[list[Any], list[Any], list[Any]]:
    """What the exports say: every lead, every history row and every activity, in id order."""
    with c.uow() as uow:
        leads = [
            (
                r["email"],
                r["stage"],
                r["status"],
                r["cycle"],
                r["furthest_stage"],
                r["owner"],
                r["created_at"],
            )
            for page in uow.exports.pages("leads")
            for r in page
        ]
        history = [
            (r["email"], r["action"], r["actor"], r["reason"], r["at"])
            for page in uow.exports.pages("history")
            for r in page
        ]
        activities = [
            (r["email"], r["type"], r["occurred_at"], r["content"], r["idempotency_key"])
            for page in uow.exports.pages("activities")
            for r in page
        ]
    return leads, history, activities


def test_the_same_seed_and_now_give_the_same_company(
    demo_db: tuple[Container, dict[str, Any]], tmp_path: Path, sqlite_template: Path
) -> None:
    first, first_report = demo_db
    second = _container(tmp_path / "again.db", sqlite_template)
    other = _container(tmp_path / "other.db", sqlite_template)
    try:
        assert _generate(second) == first_report
        leads, history, activities = _snapshot(first)
        assert (len(leads), len(history), len(activities)) == (
            LEADS,
            LEADS + first_report["transitions"],
            first_report["activities"],
        )
        assert _snapshot(second) == (leads, history, activities)
        _generate(other, seed=SEED + 1)
        assert _snapshot(other)[0] != _snapshot(first)[0]
    finally:
        second.close()
        other.close()


def test_running_the_demo_again_later_adds_nothing_twice(tmp_path: Path, sqlite_template: Path) -> None:
    c = _container(tmp_path / "twice.db", sqlite_template)
    try:
        _generate(c, leads=40)
        later = generate_demo(
            uow_factory=c.uow, normalizer=c.identity, leads=40, seed=SEED, now=NOW + timedelta(days=3)
        )
        assert later["leads"] == 0
        assert later["accounts"] == 0
        assert later["skipped_existing"] == 40
        assert _rows(c, "SELECT count(*) FROM leads")[0][0] == 40
        assert _rows(c, "SELECT count(*) FROM users")[0][0] == len(DEMO_TEAM)
    finally:
        c.close()


_SENIORITY_SCORE = {"C-level": 3.0, "VP": 3.0, "Director": 2.5, "Manager": 1.5, "Individual contributor": 0.5}
_BAND_SCORE = {"1-10": 0.0, "11-50": 1.0, "51-200": 2.0, "201-1000": 2.5, "1001-5000": 2.5, "5001+": 2.0}


def test_leads_that_fit_engage_more_and_convert_more(demo_db: tuple[Container, dict[str, Any]]) -> None:
    c, _report = demo_db
    activity_count = dict(_rows(c, "SELECT lead_id, count(*) FROM activities GROUP BY lead_id"))
    with c.uow() as uow:
        _total, leads = uow.leads.search(LeadFilter())

    def fit(lead: Any) -> float:
        props = lead.properties
        return _SENIORITY_SCORE.get(str(props.get("Seniority")), 0.0) + _BAND_SCORE.get(
            str(props.get("Employees band")), 0.0
        )

    ranked = sorted(leads, key=lambda lead: (fit(lead), lead.id))
    half = len(ranked) // 2
    bottom, top = ranked[:half], ranked[half:]

    def rate(group: list[Any], stage: Stage) -> float:
        return sum(lead.state.furthest_stage.rank >= stage.rank for lead in group) / len(group)

    def engagement(group: list[Any]) -> float:
        return sum(activity_count.get(lead.id, 0) for lead in group) / len(group)

    assert rate(top, Stage.CUSTOMER) > rate(bottom, Stage.CUSTOMER)
    assert rate(top, Stage.OPPORTUNITY) > 1.5 * rate(bottom, Stage.OPPORTUNITY)
    assert rate(top, Stage.SQL) > 1.5 * rate(bottom, Stage.SQL)
    assert rate(top, Stage.MQL) > 1.5 * rate(bottom, Stage.MQL)
    assert engagement(top) > 1.3 * engagement(bottom)


def test_benchmark_files_have_the_exact_header_and_only_known_emails(tmp_path: Path) -> None:
    paths = write_benchmark_files(tmp_path / "bench", leads=60, activities=2_345, seed=3, now=NOW)

    with open(paths["leads"], newline="", encoding="utf-8") as f:
        lead_rows = list(csv.reader(f))
    assert tuple(lead_rows[0]) == LEAD_CSV_COLUMNS
    assert len(lead_rows) == 61
    emails = {row[0] for row in lead_rows[1:]}
    assert len(emails) == 60
    with open(paths["activities"], encoding="utf-8") as f:
        header = f.readline()
    assert header == "email,type,occurred_at,source,campaign,content,idempotency_key\n"
    assert tuple(header.strip().split(",")) == ACTIVITY_CSV_COLUMNS
    with open(paths["activities"], newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2_345
    assert {row["email"] for row in rows} <= emails
    assert len({row["idempotency_key"] for row in rows}) == len(rows)
    for row in rows:
        assert row["occurred_at"].endswith("Z")
        at = datetime.fromisoformat(row["occurred_at"].replace("Z", "+00:00"))
        assert at <= NOW
        assert row["type"] in BUILTIN_ACTIVITY_TYPES
    again = tmp_path / "again"
    write_benchmark_files(again, leads=60, activities=2_345, seed=3, now=NOW)
    assert (again / "activities.csv").read_bytes() == Path(paths["activities"]).read_bytes()


@pytest.mark.parametrize(("leads", "activities"), [(5, 0), (10, 7), (3, 500)])
def test_benchmark_files_write_exactly_the_rows_asked_for(
    tmp_path: Path, leads: int, activities: int
) -> None:
    paths = write_benchmark_files(tmp_path, leads=leads, activities=activities, seed=1, now=NOW)
    with open(paths["activities"], newline="", encoding="utf-8") as f:
        assert sum(1 for _ in csv.reader(f)) == activities + 1
    with open(paths["leads"], newline="", encoding="utf-8") as f:
        assert sum(1 for _ in csv.reader(f)) == leads + 1


def test_fit_predicts_customers_across_thousands_of_stories() -> None:
    world = World.build(NOW)
    team = offline_team()
    rng = random.Random(SEED)
    outcomes = []
    for person in iter_people(rng, world, 3_000):
        journey = simulate_journey(rng, world, person, team)
        outcomes.append((person.fit, journey.state.furthest_stage.rank >= Stage.CUSTOMER.rank))
    outcomes.sort(key=lambda o: o[0])
    half = len(outcomes) // 2
    bottom = sum(won for _fit, won in outcomes[:half]) / half
    top = sum(won for _fit, won in outcomes[half:]) / (len(outcomes) - half)
    assert top > 3 * bottom
    assert 0.01 < (top + bottom) / 2 < 0.1  # a B2B funnel: a few percent of leads become customers
