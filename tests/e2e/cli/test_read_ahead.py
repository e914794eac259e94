"""Activity imports read ahead in a second process (ADR 23): the same result as reading in one process,
rejects and all, on both databases; and the read-ahead process's own contract."""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from leadstage import bootstrap
from leadstage.adapters import files
from leadstage.adapters.db.engine import normalize_url
from leadstage.adapters.read_ahead import BUFFERED, ReadAheadFailed, run_ahead
from leadstage.cli import app as cli_app
from leadstage.domain.errors import ValidationError
from leadstage.services import ingest
from tests.cli_runner import run

LEADS = 40


def _files(tmp_path: Path) -> tuple[Path, Path]:
    leads = tmp_path / "leads.csv"
    with leads.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["email", "first_name", "company"])
        for i in range(LEADS):
            w.writerow([f"p{i}@firm{i % 7}.example", f"P{i}", f"Firm {i % 7}"])
    acts = tmp_path / "acts.csv"
    with acts.open("w", newline="", encoding="utf-8") as fh:
        fh.write("email,type,occurred_at,source,campaign,idempotency_key,page\n")
        for i in range(1_000):
            lead = i % (LEADS + 3)  # three of every 43 name nobody
            kind = ("page_view", "content_download", "webinar_attended", "form_submit")[i % 4]
            day = 1 + i % 28
            fh.write(f"p{lead}@firm{lead % 7}.example,{kind},2026-10-{day:02d}T10:{i % 60:02d}:00Z,web,Q4,")
            fh.write(f"k{i},/pricing\n")
            if i % 97 == 0:
                fh.write("broken@row.example,page_view\n")  # a row the header cannot split
            if i % 89 == 0:
                fh.write(f"p1@firm1.example,page_view,not a time,web,,t{i},\n")
            if i % 101 == 0:  # the same event again in the file
                fh.write(f"p{lead}@firm{lead % 7}.example,{kind},2026-10-{day:02d}T10:00:00Z,web,,k{i},\n")
    return leads, acts


def _leads(db_url: str) -> list[tuple[object, ...]]:
    engine = create_engine(normalize_url(db_url))
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT email, stage, round(CAST(engagement_score AS NUMERIC), 6), engagement_level, "
                "first_touch_at, last_touch_at, (SELECT count(*) FROM activities a WHERE a.lead_id = l.id) "
                "FROM leads l ORDER BY email"
            )
        ).all()
    engine.dispose()
    return [tuple(r) for r in rows]


@pytest.mark.parametrize(
    ("ahead", "per_commit"),
    [(False, 100), (True, 100), (True, 300)],
    ids=["one process", "read ahead", "read ahead, three pieces per transaction"],
)
def test_an_import_read_ahead_stores_and_rejects_exactly_what_one_process_does(
    capsys, db_url, tmp_path, monkeypatch, ahead, per_commit
):
    # a dozen pieces of 100 rows, so it runs ahead; committed every piece or every third
    monkeypatch.setenv("LEADSTAGE_IMPORT_BATCH_ROWS", str(per_commit))
    monkeypatch.setattr(cli_app, "READ_ROWS", 100)
    monkeypatch.setattr(ingest, "READ_AHEAD_BYTES", 0 if ahead else 1 << 40)
    forks: list[int] = []
    real = ingest.ImportContext.__init__

    def spy(self, *args, **kwargs):
        real(self, *args, **kwargs)
        if self.read_ahead is not None:
            inner = self.read_ahead

            def counted(produce):
                forks.append(os.getpid())
                return inner(produce)

            self.read_ahead = counted

    monkeypatch.setattr(ingest.ImportContext, "__init__", spy)
    leads, acts = _files(tmp_path)
    assert run(capsys, db_url, "init").code == 0  # the default scoring model, active
    assert run(capsys, db_url, "import", "leads", str(leads)).code == 0
    result = run(capsys, db_url, "import", "activities", str(acts), "--json")
    assert result.code == 0, result.err
    assert len(forks) == (1 if ahead else 0)
    # worked out from the file: 1,000 rows of which 69 name nobody, 11 ragged rows, 12 bad times and 10
    # events sent twice
    report = result.json()
    assert (report["rows_read"], report["created"], report["unchanged"], report["rejected"]) == (
        1_033,
        931,
        10,
        92,
    )
    rejects = [r["reason"] for r in csv.DictReader((tmp_path / "acts.csv.rejects.csv").open())]
    assert len(rejects) == 92
    assert sum("has 2 cells, the header has 7" in r for r in rejects) == 11
    assert sum("unreadable timestamp 'not a time'" in r for r in rejects) == 12
    assert sum("no lead with email 'p4" in r for r in rejects) == 69
    lines = sorted(int(r.split(":")[0].split()[-1]) for r in rejects if r.startswith("row "))
    assert len(lines) == 81
    assert len(set(lines)) == 81  # each rejected row named by its own number
    # scores folded batch by batch equal a recomputation from all the stored activities
    folded = _leads(db_url)
    assert sum(r[-1] for r in folded) == 931
    assert run(capsys, db_url, "score", "run").code == 0
    again = _leads(db_url)
    # (a score is stored as of its writing: seconds of 30-day decay apart, far less than 1e-4)
    assert [r[:2] + r[3:] for r in again] == [r[:2] + r[3:] for r in folded]
    assert [float(r[2]) for r in again] == pytest.approx([float(r[2]) for r in folded], rel=1e-4)


def test_a_checkpoint_that_fails_in_the_read_ahead_process_does_not_stop_the_import(
    capsys, sqlite_url, tmp_path, monkeypatch
):
    monkeypatch.setenv("LEADSTAGE_IMPORT_BATCH_ROWS", "100")
    monkeypatch.setattr(cli_app, "READ_ROWS", 100)
    monkeypatch.setattr(ingest, "READ_AHEAD_BYTES", 0)
    tried = tmp_path / "checkpoints tried"

    def failing(_engine: object) -> None:
        with tried.open("a") as fh:  # (in the child: a file, as the test's process never sees its lists)
            fh.write(f"{os.getpid()}\n")
        raise sqlite3.OperationalError("database table is locked")

    monkeypatch.setattr(bootstrap, "checkpoint", failing)
    leads, acts = _files(tmp_path)
    assert run(capsys, sqlite_url, "init").code == 0
    assert run(capsys, sqlite_url, "import", "leads", str(leads)).code == 0
    result = run(capsys, sqlite_url, "import", "activities", str(acts), "--json")
    assert result.code == 0, result.err
    assert result.json()["created"] == 931
    pids = set(tried.read_text().split())
    assert len(pids) == 1
    assert str(os.getpid()) not in pids


def _numbers(_connection: None, upto: int) -> Iterator[int]:
    yield from range(upto)


def test_run_ahead_yields_the_child_s_items_in_order():
    assert list(run_ahead(lambda c: _numbers(c, 500), nullcontext)) == list(range(500))


def test_an_error_in_the_child_is_raised_again_in_the_consumer():
    def failing(_c: None) -> Iterator[int]:
        yield 1
        raise ValidationError("acts.csv: line 7: broken", field="occurred_at")

    items = run_ahead(failing, nullcontext)
    assert next(items) == 1
    with pytest.raises(ValidationError, match="line 7: broken"):
        next(items)


def test_a_consumer_that_stops_early_stops_the_child(tmp_path):
    marker = tmp_path / "pid"

    def endless(_c: None) -> Iterator[int]:
        marker.write_text(str(os.getpid()))
        n = 0
        while True:
            n += 1
            yield n

    items = run_ahead(endless, nullcontext)
    assert next(items) == 1
    items.close()
    pid = int(marker.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_the_child_runs_ahead_of_a_slow_consumer_by_the_buffered_items_and_no_more(tmp_path):
    made = tmp_path / "made"

    def counted(_c: None) -> Iterator[bytes]:
        for n in range(20):
            with made.open("a") as fh:
                fh.write(f"{n}\n")
            yield bytes([n]) * 300_000  # more than a pipe holds: sending waits for the consumer's side

    items = run_ahead(counted, nullcontext)
    assert next(items)[0] == 0
    # taken: 1; held here: BUFFERED; in the pipe or being made: at most two more
    deadline = time.monotonic() + 10
    while len(made.read_text().split()) < 1 + BUFFERED and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    ahead = len(made.read_text().split())
    assert 1 + BUFFERED <= ahead <= 3 + BUFFERED
    assert [item[0] for item in items] == list(range(1, 20))


def test_between_runs_in_the_child_after_each_item_is_taken(tmp_path):
    log = tmp_path / "between"

    def between(_c: None) -> None:
        with log.open("a") as fh:
            fh.write(f"{os.getpid()}\n")

    assert list(run_ahead(lambda c: _numbers(c, 5), nullcontext, between=between)) == list(range(5))
    pids = log.read_text().split()
    assert len(pids) == 5
    assert set(pids) != {str(os.getpid())}
    assert len(set(pids)) == 1


def test_receiving_that_fails_here_is_reported_not_waited_for(monkeypatch):
    from multiprocessing.connection import Connection

    real = Connection.recv_bytes
    calls: list[int] = []

    def second_fails(self: Connection, *args: object) -> bytes:
        calls.append(1)
        if len(calls) == 2:
            raise MemoryError("no room for the piece")
        return real(self, *args)

    monkeypatch.setattr(Connection, "recv_bytes", second_fails)
    items = run_ahead(lambda c: _numbers(c, 50), nullcontext)
    assert next(items) == 0
    started = time.monotonic()
    with pytest.raises(ReadAheadFailed, match="MemoryError"):
        next(items)
    assert time.monotonic() - started < 10


def test_a_child_that_dies_is_reported_not_waited_for(tmp_path):
    def dies(_c: None) -> Iterator[int]:
        yield 1
        os.kill(os.getpid(), signal.SIGKILL)
        yield 2

    items = run_ahead(dies, nullcontext)
    assert next(items) == 1
    started = time.monotonic()
    with pytest.raises(ReadAheadFailed, match="ended without finishing"):
        next(items)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("ahead", [False, True], ids=["one process", "read ahead"])
def test_a_file_in_a_wrong_encoding_late_on_is_refused_the_same_way_read_ahead_or_not(
    capsys, sqlite_url, tmp_path, monkeypatch, ahead
):
    monkeypatch.setenv("LEADSTAGE_IMPORT_BATCH_ROWS", "100")
    monkeypatch.setattr(ingest, "READ_AHEAD_BYTES", 0 if ahead else 1 << 40)
    leads, acts = _files(tmp_path)
    assert run(capsys, sqlite_url, "import", "leads", str(leads)).code == 0
    with acts.open("ab") as fh:
        fh.write(b"p1@firm1.example,page_view,2026-10-02T10:00:00Z,web,Z\xfcrich,late-1,\n")
    result = run(capsys, sqlite_url, "import", "activities", str(acts))
    assert result.code == 2
    assert "acts.csv: line 1035" in result.err
    assert "encoding" in result.err


@pytest.mark.parametrize("ahead", [False, True], ids=["one process", "read ahead"])
def test_a_piece_of_the_file_that_cannot_be_parsed_stops_the_import_with_its_message(
    capsys, db_url, tmp_path, monkeypatch, ahead
):
    """Read ahead, the error arises in the second process and is told by the first, the same way; the
    pieces stored before it stay stored (running the import again adds the rest, nothing twice)."""
    monkeypatch.setenv("LEADSTAGE_IMPORT_BATCH_ROWS", "100")
    monkeypatch.setattr(cli_app, "READ_ROWS", 100)
    monkeypatch.setattr(ingest, "READ_AHEAD_BYTES", 0 if ahead else 1 << 40)
    real = files.CsvSource._emit
    calls: list[int] = []

    def breaks_at_the_fifth(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 5 and not os.environ.get("MENDED"):
            raise files.FileProblem(f"{self.path}: line 402: a block that cannot be parsed")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(files.CsvSource, "_emit", breaks_at_the_fifth)
    leads, acts = _files(tmp_path)
    assert run(capsys, db_url, "import", "leads", str(leads)).code == 0
    failed = run(capsys, db_url, "import", "activities", str(acts))
    assert failed.code == 2
    assert "acts.csv: line 402: a block that cannot be parsed" in failed.err
    monkeypatch.setenv("MENDED", "1")
    again = run(capsys, db_url, "import", "activities", str(acts), "--json").json()
    assert again["created"] + again["unchanged"] == 931 + 10
    assert again["unchanged"] >= 10
    assert sum(r[-1] for r in _leads(db_url)) == 931


def test_read_ahead_refuses_to_fork_with_a_connection_of_the_caller_in_use(container):
    with container.uow(), pytest.raises(RuntimeError, match="connection"):
        container.read_ahead(lambda _readers: iter(()))
    items = container.read_ahead(lambda _readers: iter([1, 2]))  # none in use: it runs
    assert list(items) == [1, 2]


def test_a_file_partly_imported_before_is_scored_from_its_new_rows_only_read_ahead(
    capsys, db_url, tmp_path, monkeypatch
):
    """Pieces some of whose rows are stored already are folded from their new rows (not the child's
    folded states), so scores still equal a recomputation from every stored activity."""
    monkeypatch.setenv("LEADSTAGE_IMPORT_BATCH_ROWS", "100")
    monkeypatch.setattr(cli_app, "READ_ROWS", 100)
    monkeypatch.setattr(ingest, "READ_AHEAD_BYTES", 0)
    leads, acts = _files(tmp_path)
    assert run(capsys, db_url, "init").code == 0
    assert run(capsys, db_url, "import", "leads", str(leads)).code == 0
    lines = acts.read_text(encoding="utf-8").splitlines()
    first = tmp_path / "first.csv"
    first.write_text("\n".join(lines[:400]) + "\n", encoding="utf-8")
    assert run(capsys, db_url, "import", "activities", str(first)).code == 0
    again = run(capsys, db_url, "import", "activities", str(acts), "--json")  # the first 399 rows again
    assert again.code == 0, again.err
    assert again.json()["unchanged"] > 300
    folded = _leads(db_url)
    assert sum(r[-1] for r in folded) == 931
    assert run(capsys, db_url, "score", "run").code == 0
    recomputed = _leads(db_url)
    assert [r[:2] + r[3:] for r in recomputed] == [r[:2] + r[3:] for r in folded]
    assert [float(r[2]) for r in recomputed] == pytest.approx([float(r[2]) for r in folded], rel=1e-4)
