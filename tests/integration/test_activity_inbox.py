"""The activity inbox (ADR 24), SQLite only: API batches wait in a file beside the database and the follow-up
stores them, each exactly once, whatever happened in between (retries, a crash between the two files'
commits, a replaced inbox file, merges, deletions, forgetting, backups)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

import leadstage.cli.app as cli_app
from leadstage.adapters.clock import FixedClock
from leadstage.adapters.db import tables as t
from leadstage.adapters.db.inbox import inbox_path
from leadstage.bootstrap import Container, build
from leadstage.config import Settings
from leadstage.services import capture, ingest
from tests.cli_runner import run
from tests.integration.test_activity_backlog import _send
from tests.integration.test_scoring import LEADS, write

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def _batch(email: str, n: int, prefix: str = "k", **extra: Any) -> list[dict[str, Any]]:
    return [
        {
            "email": email,
            "type": "page_view",
            "occurred_at": (NOW - timedelta(hours=i + 1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "idempotency_key": f"{prefix}{i}",
            **extra,
        }
        for i in range(n)
    ]


@pytest.fixture
def app(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    url = f"sqlite:///{tmp_path / 'leadstage.db'}"
    clock = FixedClock(NOW)
    monkeypatch.setattr(cli_app, "build", lambda settings: build(settings, clock=clock))
    assert run(capsys, url, "init").code == 0
    assert run(capsys, url, "import", "leads", str(write(tmp_path / "leads.csv", LEADS))).code == 0
    c = build(Settings(database_url=url), clock=clock)
    yield c
    c.close()


def _stored(c: Container, email: str | None = None) -> int:
    with c.uow() as uow:
        q = select(func.count()).select_from(t.activities)
        if email is not None:
            lead = uow.connection.execute(
                select(t.leads.c.id).where(t.leads.c.email_normalized == email)
            ).scalar_one()
            q = q.where(t.activities.c.lead_id == lead)
        return int(uow.connection.execute(q).scalar_one())


def _waiting(c: Container) -> int:
    assert c.inbox is not None
    with c.uow() as uow:
        mark = uow.webhooks.cursor(ingest.INBOX_CURSOR)
    return c.inbox.waiting(mark)


def _rows_in_file(c: Container) -> int:
    assert c.inbox is not None
    with c.inbox._conn() as conn:
        return int(conn.execute("SELECT count(*) FROM activity_inbox").fetchone()[0])


def test_a_batch_waits_in_the_inbox_file_and_the_follow_up_stores_it_once(app: Container) -> None:
    assert app.inbox is not None
    assert app.inbox.path == inbox_path(app.engine.url.database or "")
    before = _stored(app)
    assert _send(app, _batch("vp@freight.io", 5)).created == 5
    assert (_stored(app), _waiting(app)) == (before, 5)
    # retried while waiting: the inbox knows it
    assert _send(app, _batch("vp@freight.io", 5)).unchanged == 5
    assert app.follow_up().activities == 5
    assert (_stored(app), _waiting(app), _rows_in_file(app)) == (before + 5, 0, 0)
    # retried after it was stored: the database knows it, and nothing waits
    report = _send(app, _batch("vp@freight.io", 6))
    assert (report.created, report.unchanged) == (1, 5)
    assert app.follow_up().activities == 1
    assert _stored(app) == before + 6
    assert app.follow_up().activities == 0


def test_rows_stored_before_a_crash_are_not_stored_again(app: Container) -> None:
    """The main database committed the rows and the mark, the inbox kept them (the process died before
    deleting them): the next run deletes them instead of storing them twice."""
    before = _stored(app)
    _send(app, _batch("vp@freight.io", 3))
    assert app.inbox is not None
    with app.serial_writer() as uow:
        assert ingest.receive_inbox(uow, app.inbox, at=NOW)[0] == 3
        uow.commit()  # ... and no discard_through: as if the process stopped here
    assert (_rows_in_file(app), _waiting(app), _stored(app)) == (3, 0, before + 3)
    _send(app, _batch("vp@freight.io", 4))  # the three are known (stored), one is new
    assert app.follow_up().activities == 4  # the three's follow-ups (in the backlog) and the new one
    assert (_rows_in_file(app), _stored(app)) == (0, before + 4)


def test_a_replaced_inbox_file_starts_from_its_first_row(app: Container) -> None:
    """A new inbox file numbers its rows from 1 again: a mark of the old file must not skip them."""
    before = _stored(app)
    _send(app, _batch("vp@freight.io", 30, prefix="old"))
    assert app.follow_up().activities == 30
    assert app.inbox is not None
    path = app.inbox.path
    app.inbox.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    app.__dict__.pop("inbox")  # a new process would open the new file
    _send(app, _batch("vp@freight.io", 2, prefix="new"))
    assert _waiting(app) == 2
    assert app.follow_up().activities == 2
    assert _stored(app) == before + 32


def test_rows_follow_their_lead_merged_deleted_or_forgotten_meanwhile(
    capsys: pytest.CaptureFixture[str], app: Container
) -> None:
    url = str(app.settings.database_url)
    _send(app, _batch("ic@freight.io", 2, prefix="ic", properties={"page": "/pricing"}))
    _send(app, _batch("stu@gmail.com", 2, prefix="stu"))
    _send(app, _batch("vp@freight.io", 2, prefix="vp", properties={"page": "/secret"}))
    assert run(capsys, url, "leads", "merge", "vp@freight.io", "ic@freight.io").code == 0
    with app.writer() as uow:  # a lead removed outside the product: nothing left to attach its rows to
        uow.connection.execute(text("DELETE FROM leads WHERE email_normalized = 'stu@gmail.com'"))
        uow.commit()
    with app.uow() as uow:
        vp = uow.connection.execute(
            select(t.leads.c.id).where(t.leads.c.email_normalized == "vp@freight.io")
        ).scalar_one()
    assert run(capsys, url, "leads", "forget", str(vp)).code == 0
    stored_before = _stored(app)
    assert app.follow_up().activities == 4  # stored and followed up; stu's two dropped
    assert _stored(app) == stored_before + 4
    assert _waiting(app) == 0
    assert _rows_in_file(app) == 0
    with app.uow() as uow:
        rows = uow.connection.execute(
            select(t.activities.c.lead_id, t.activities.c.properties).where(
                t.activities.c.idempotency_key.like("%ic%") | t.activities.c.idempotency_key.like("%vp%")
            )
        ).all()
    assert len(rows) == 4
    assert {r[0] for r in rows} == {vp}
    # the person was forgotten after these arrived: what forgetting clears is not brought back
    assert all(r[1] is None for r in rows)
    # an activity of the forgotten lead's that arrives after the forget keeps its properties
    later = [{"lead_id": vp, "type": "page_view", "occurred_at": "2026-11-02T11:00:00Z", "page": "/docs"}]
    app.clock.at = NOW + timedelta(minutes=5)  # type: ignore[attr-defined]
    assert _send(app, later).created == 1
    app.follow_up()
    with app.uow() as uow:
        props = uow.connection.execute(
            select(t.activities.c.properties).where(
                t.activities.c.lead_id == vp, t.activities.c.properties.is_not(None)
            )
        ).scalar_one()
    assert props == {"page": "/docs"}


def test_concurrent_retries_of_one_batch_create_each_event_once(app: Container) -> None:
    batch = _batch("vp@freight.io", 200)
    created: list[int] = []
    lock = threading.Lock()

    def send() -> None:
        report = _send(app, batch)
        with lock:
            created.append(report.created)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(created) == [0, 0, 0, 200]
    before = _stored(app)
    assert app.follow_up().activities == 200
    assert _stored(app) == before + 200


def test_a_backup_holds_what_waited_and_a_restore_drops_the_replaced_databases_inbox(
    capsys: pytest.CaptureFixture[str], app: Container, tmp_path: Path
) -> None:
    url = str(app.settings.database_url)
    _send(app, _batch("vp@freight.io", 3))
    before = _stored(app)
    backup = tmp_path / "backup.db"
    assert run(capsys, url, "backup", str(backup)).code == 0
    assert _stored(app) == before + 3  # stored before the copy was taken
    _send(app, _batch("vp@freight.io", 2, prefix="late"))  # waits for the database about to be replaced
    app.close()
    assert run(capsys, url, "restore", str(backup), "--force").code == 0
    assert not inbox_path(app.engine.url.database or "").exists()
    c = build(Settings(database_url=url), clock=FixedClock(NOW))
    try:
        assert c.follow_up().activities == 0
        assert _stored(c) == before + 3
    finally:
        c.close()


def _lead_id(c: Container, email: str) -> int:
    with c.uow() as uow:
        return int(
            uow.connection.execute(
                select(t.leads.c.id).where(t.leads.c.email_normalized == email)
            ).scalar_one()
        )


def test_rows_of_a_merged_lead_do_not_go_to_a_new_lead_given_its_freed_id(
    capsys: pytest.CaptureFixture[str], app: Container
) -> None:
    """SQLite gives a new lead the highest id again once that lead is gone (merged): rows that waited for
    the merged lead go to its survivor, and rows sent to the new lead afterwards stay with it."""
    url = str(app.settings.database_url)
    report, _ = capture.import_records("leads", [{"email": "late@freight.io"}], ctx=app.import_context())
    assert report.created == 1
    late = _lead_id(app, "late@freight.io")
    _send(app, _batch("late@freight.io", 2, prefix="late"))
    assert run(capsys, url, "leads", "merge", "vp@freight.io", "late@freight.io").code == 0
    app.clock.at = NOW + timedelta(minutes=1)  # type: ignore[attr-defined]
    report, _ = capture.import_records("leads", [{"email": "new@freight.io"}], ctx=app.import_context())
    assert _lead_id(app, "new@freight.io") == late  # the freed id, given again
    _send(app, _batch("new@freight.io", 1, prefix="new"))
    app.follow_up()
    with app.uow() as uow:
        owners = dict(
            uow.connection.execute(
                select(t.activities.c.idempotency_key, t.activities.c.lead_id).where(
                    t.activities.c.idempotency_key.like("%late%")
                    | t.activities.c.idempotency_key.like("%new%")
                )
            ).all()
        )
    vp = _lead_id(app, "vp@freight.io")
    assert sorted(owners.values()) == sorted([vp, vp, late]), owners


def test_more_concurrent_batches_than_pooled_connections_all_get_through(app: Container) -> None:
    """Each batch reads the main database and writes the inbox: with more batches at once than the
    engine's pool holds connections, none waits on a connection while holding the inbox's lock."""
    reports: list[int] = []
    lock = threading.Lock()

    def send(n: int) -> None:
        report = _send(app, _batch("vp@freight.io", 3, prefix=f"c{n}-"))
        with lock:
            reports.append(report.created)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(48)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert reports == [3] * 48
    assert _waiting(app) == 144
