"""Report facts (ADR 18) stay what the history and activities say, on SQLite and PostgreSQL.

The reports read ``stage_entries``, ``stage_visits`` and ``attribution_credits`` instead of the raw rows;
every write that changes what they derive from updates them in its own transaction. Through the real
command line: importing leads and activities, transitions, scoring, importing again (the same file, then
older and newer touches), merging and forgetting; after each step the stored facts must equal the facts
recomputed from scratch (``report_facts.rebuild``, in a transaction that is rolled back), and each step
must have changed what it should.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import leadstage.cli.app as cli_app
from leadstage.adapters.clock import FixedClock
from leadstage.adapters.db import report_facts
from leadstage.adapters.db import tables as t
from leadstage.adapters.db.engine import make_engine
from leadstage.bootstrap import build
from tests.cli_runner import run
from tests.e2e.cli.test_cli import write_csv

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
FACTS = (t.stage_entries, t.stage_visits, t.attribution_credits)
LEADS = ["ann@acme-logistics.com", "bob@carrier-co.com", "cat@freight-one.com", "dan@ship-fast.com"]
ACTIVITY_HEADER = ["email", "type", "occurred_at", "source", "campaign", "content", "idempotency_key"]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FixedClock:
    """The CLI's clock, moved by the test."""
    fixed = FixedClock(START)
    monkeypatch.setattr(cli_app, "build", lambda settings: build(settings, clock=fixed))
    return fixed


def _value(v: Any) -> Any:
    return round(v, 9) if isinstance(v, float) else v


def _read(conn: Any) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table.name: sorted((tuple(_value(v) for v in row) for row in conn.execute(select(table))), key=repr)
        for table in FACTS
    }


def stored(db_url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return _read(conn)
    finally:
        engine.dispose()


def recomputed(db_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every lead's facts computed afresh from its history and activities (nothing is kept)."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            conn.begin()
            report_facts.rebuild(conn)
            facts = _read(conn)
            conn.rollback()
            return facts
    finally:
        engine.dispose()


def consistent(db_url: str) -> dict[str, list[tuple[Any, ...]]]:
    facts = stored(db_url)
    assert facts == recomputed(db_url)
    return facts


def lead_id(capsys: pytest.CaptureFixture[str], db_url: str, email: str) -> int:
    shown = run(capsys, db_url, "leads", "show", email, "--json")
    assert shown.code == 0, shown.err
    return int(shown.json()["id"])


def rows_of(facts: dict[str, list[tuple[Any, ...]]], table: str, lead: int) -> list[tuple[Any, ...]]:
    column = [c.name for c in t.metadata.tables[table].columns].index("lead_id")
    return [r for r in facts[table] if r[column] == lead]


def activities(path: Path, rows: list[tuple[str, str, datetime, str | None, str | None, str | None]]) -> Path:
    return write_csv(
        path,
        ACTIVITY_HEADER,
        [
            [email, type_, at.isoformat(), src or "", campaign or "", content or "", f"{path.stem}-{k}"]
            for k, (email, type_, at, src, campaign, content) in enumerate(rows)
        ],
    )


def transition(capsys: pytest.CaptureFixture[str], db_url: str, email: str, *args: str) -> None:
    done = run(capsys, db_url, "leads", "transition", email, *args)
    assert done.code == 0, done.err


def test_report_facts_follow_imports_transitions_merges_and_forgetting(
    capsys: pytest.CaptureFixture[str], db_url: str, tmp_path: Path, clock: FixedClock
) -> None:
    assert run(capsys, db_url, "init").code == 0
    leads = write_csv(tmp_path / "leads.csv", ["Email", "Lead Source"], [[e, "webinar"] for e in LEADS])
    assert run(capsys, db_url, "import", "leads", str(leads)).code == 0
    ann, bob, cat, dan = (lead_id(capsys, db_url, e) for e in LEADS)
    day = START - timedelta(days=30)
    first = activities(
        tmp_path / "first.csv",
        [
            (LEADS[0], "ad_click", day, "paid_search", "Q1 Search", None),
            (LEADS[0], "webinar_attended", day + timedelta(days=2), "event", None, "Webinar: Landed Cost"),
            (LEADS[0], "page_view", day + timedelta(days=3), "organic_search", None, None),  # not a touch
            (LEADS[0], "content_download", day + timedelta(days=5), "email", "Nurture", "eBook: Freight"),
            (LEADS[1], "form_submit", day + timedelta(days=1), "referral", None, None),
            (LEADS[1], "email_click", day + timedelta(days=4), "email", "Nurture", None),
            (LEADS[2], "chat", day + timedelta(days=6), "direct", None, None),
            (LEADS[3], "page_view", day + timedelta(days=6), "direct", None, None),
        ],
    )
    assert run(capsys, db_url, "import", "activities", str(first)).code == 0
    facts = consistent(db_url)
    assert all(not rows for rows in facts.values())  # nobody converted or moved yet

    # a whole journey, a rejected MQL and an open one; a scoring run may promote more
    clock.at = START
    transition(capsys, db_url, LEADS[0], "promote_mql", "--reason", "manual", "--note", "asked for pricing")
    transition(capsys, db_url, LEADS[0], "accept")
    clock.at = START + timedelta(days=3)
    bant = ["--budget", "confirmed amount=50,000 currency=eur", "--authority", "decision_maker role=CFO"]
    bant += ["--need", "confirmed pain='slow hand-off'", "--timeline", "Q2 2027"]
    assert run(capsys, db_url, "leads", "bant", LEADS[0], *bant).code == 0
    transition(capsys, db_url, LEADS[0], "qualify_sql")
    transition(
        capsys, db_url, LEADS[0], "open_opportunity", "--amount", "1000", "--currency", "EUR",
        "--close-date", "2026-04-30",
    )  # fmt: skip
    clock.at = START + timedelta(days=20)
    transition(
        capsys, db_url, LEADS[0], "win", "--amount", "1200", "--currency", "EUR", "--close-date", "2026-03-22"
    )
    clock.at = START + timedelta(days=1)
    transition(capsys, db_url, LEADS[1], "promote_mql", "--reason", "manual", "--note", "asked for pricing")
    transition(capsys, db_url, LEADS[1], "accept")
    transition(capsys, db_url, LEADS[1], "reject", "--reason", "bad_timing")
    transition(capsys, db_url, LEADS[2], "promote_mql", "--reason", "manual", "--note", "asked for pricing")
    clock.at = START + timedelta(days=21)
    assert run(capsys, db_url, "score", "run").code == 0
    facts = consistent(db_url)
    entries = {r[2]: r for r in rows_of(facts, "stage_entries", ann)}
    assert set(entries) == {"mql", "sql", "opportunity", "customer"}
    assert (entries["customer"][-2], entries["customer"][-1]) == (1200.0, "EUR")
    assert {r[2] for r in rows_of(facts, "stage_visits", bob)} == {"lead", "mql"}  # promoted, then rejected
    credited = {(r[0], r[1]) for r in rows_of(facts, "attribution_credits", ann)}
    assert ("source", "paid_search") in credited
    assert ("content", "Webinar: Landed Cost") in credited
    assert ("source", "organic_search") not in credited  # a page view is not a touch
    assert rows_of(facts, "attribution_credits", dan) == []  # never converted

    # the same file again adds nothing and changes nothing
    assert run(capsys, db_url, "import", "activities", str(first)).code == 0
    assert consistent(db_url) == facts

    # a touch after the win changes no credit; an older one (imported late) does
    later = activities(
        tmp_path / "later.csv",
        [
            (LEADS[0], "email_click", START + timedelta(days=30), "referral", None, None),
            (LEADS[0], "form_submit", START + timedelta(days=25), "partner", None, None),
        ],
    )
    assert run(capsys, db_url, "import", "activities", str(later)).code == 0
    assert consistent(db_url) == facts
    older = activities(
        tmp_path / "older.csv",
        [(LEADS[0], "form_submit", day - timedelta(days=3), "partner", "Co-marketing", None)],
    )
    assert run(capsys, db_url, "import", "activities", str(older)).code == 0
    after = consistent(db_url)
    assert rows_of(after, "attribution_credits", ann) != rows_of(facts, "attribution_credits", ann)
    assert ("source", "partner") in {(r[0], r[1]) for r in rows_of(after, "attribution_credits", ann)}

    # a merge: one journey with both records' history and touches; the merged record keeps no facts
    assert run(capsys, db_url, "leads", "merge", LEADS[0], LEADS[2]).code == 0
    merged = consistent(db_url)
    for table in ("stage_entries", "attribution_credits"):
        assert rows_of(merged, table, cat) == []
    assert ("source", "direct") in {(r[0], r[1]) for r in rows_of(merged, "attribution_credits", ann)}

    # forgetting erases the wins' amounts: the revenue goes with them
    assert run(capsys, db_url, "leads", "forget", str(ann)).code == 0
    forgotten = consistent(db_url)
    customer = [r for r in rows_of(forgotten, "stage_entries", ann) if r[2] == "customer"]
    assert customer
    assert customer[0][-2] is None
    assert all(r[7] is None for r in rows_of(forgotten, "attribution_credits", ann))  # revenue
