"""`leadstage backup` and `restore`: consistent while writing, verified table by table on restore."""

from __future__ import annotations

import csv
import os
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.cli_runner import leadstage_bin, run, run_process
from tests.conftest import PG_ADMIN_URL
from tests.e2e.cli.test_cli import write_csv


def _fill(capsys, db_url: str, tmp_path: Path) -> None:
    assert run(capsys, db_url, "init").code == 0
    leads = write_csv(
        tmp_path / "l.csv", ["email", "first_name"], [[f"p{i}@acme.example", f"P{i}"] for i in range(30)]
    )
    acts = write_csv(
        tmp_path / "a.csv",
        ["email", "type", "occurred_at"],
        [[f"p{i % 30}@acme.example", "page_view", f"2026-10-{1 + i % 27:02d}T10:00:00Z"] for i in range(200)],
    )
    assert run(capsys, db_url, "import", "leads", str(leads)).code == 0
    assert run(capsys, db_url, "import", "activities", str(acts)).code == 0


def test_a_sqlite_backup_restores_verified_and_a_tampered_one_is_refused(
    capsys, sqlite_url, tmp_path
) -> None:
    _fill(capsys, sqlite_url, tmp_path)
    file = tmp_path / "backup.db"
    taken = run(capsys, sqlite_url, "backup", str(file), "--json")
    assert taken.code == 0, taken.err
    assert taken.json()["tables"]["leads"]["rows"] == 30
    assert run(capsys, sqlite_url, "backup", str(file)).code == 2  # never overwrites
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    restored = run(capsys, fresh, "restore", str(file), "--json")
    assert restored.code == 0, restored.err
    assert run(capsys, fresh, "leads", "list", "--json").json()["total"] == 30
    assert run(capsys, sqlite_url, "restore", str(file)).code == 3  # not empty: needs --force
    assert run(capsys, sqlite_url, "restore", str(file), "--force").code == 0
    con = sqlite3.connect(file)
    con.execute("UPDATE leads SET first_name = 'Mallory' WHERE id = 1")
    con.commit()
    con.close()
    other = f"sqlite:///{tmp_path / 'other.db'}"
    bad = run(capsys, other, "restore", str(file))
    assert bad.code == 3
    assert "does not match the backup in: leads" in bad.err


def test_a_backup_taken_during_an_import_holds_only_whole_batches(capsys, sqlite_url, tmp_path) -> None:
    assert run(capsys, sqlite_url, "init").code == 0
    rows = 60_000
    leads = write_csv(tmp_path / "l.csv", ["email"], [[f"q{i}@acme.example"] for i in range(500)])
    assert run(capsys, sqlite_url, "import", "leads", str(leads)).code == 0
    big = tmp_path / "big.csv"
    with big.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["email", "type", "occurred_at", "idempotency_key"])
        for i in range(rows):
            w.writerow([f"q{i % 500}@acme.example", "page_view", "2026-10-01T10:00:00Z", f"k{i}"])
    env = {"LEADSTAGE_IMPORT_BATCH_ROWS": "1000", "LEADSTAGE_INCREMENTAL_SCORING": "false"}
    importing = subprocess.Popen(
        [leadstage_bin(), "--db", sqlite_url, "import", "activities", str(big)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    db_file = sqlite_url.removeprefix("sqlite:///")
    for _ in range(600):  # wait until the import is under way
        con = sqlite3.connect(db_file)
        n = con.execute("SELECT count(*) FROM activities").fetchone()[0]
        con.close()
        if n > 0:
            break
        time.sleep(0.05)
    file = tmp_path / "during.db"
    assert run_process(sqlite_url, "backup", str(file)).code == 0
    importing.wait(timeout=600)
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert run(capsys, fresh, "restore", str(file)).code == 0  # verified: nothing half-written
    con = sqlite3.connect(tmp_path / "fresh.db")
    copied = con.execute("SELECT count(*) FROM activities").fetchone()[0]
    orphans = con.execute(
        "SELECT count(*) FROM activities a LEFT JOIN leads l ON l.id = a.lead_id WHERE l.id IS NULL"
    ).fetchone()[0]
    con.close()
    assert copied % 1000 == 0  # whole committed batches only
    assert orphans == 0


@pytest.fixture
def pg_pair(pg_server: str) -> Iterator[tuple[str, str]]:
    """The test database and an empty second one to restore into (dropped afterwards)."""
    name = f"leadstage_restore_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield pg_server, pg_server.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_a_postgresql_backup_restores_verified(capsys, pg_pair, tmp_path) -> None:
    from tests.conftest import _truncate_pg

    source, target = pg_pair
    _truncate_pg(source)
    _fill(capsys, source, tmp_path)
    file = tmp_path / "backup.dump"
    assert run(capsys, source, "backup", str(file)).code == 0
    assert (tmp_path / "backup.dump.manifest.json").exists()
    restored = run(capsys, target, "restore", str(file), "--json")
    assert restored.code == 0, restored.err
    assert run(capsys, target, "leads", "list", "--json").json()["total"] == 30
