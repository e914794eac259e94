"""Upgrades with data (issue 9 section 2): a database at each earlier schema revision, holding a small
company's data in every table it had (`tests/upgrade_fixtures.py`), is upgraded in place by
`leadstage init`; every row keeps its values, and the upgraded database works: leads show, score explain,
a transition, the lists. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from leadstage.adapters.db.engine import head_revision
from tests.conftest import PG_ADMIN_URL
from tests.upgrade_fixtures import REVISIONS, build_at, build_source, cli, snapshot

#: What `init` itself adds when it finds them missing: the built-in segments, and the default scoring
#: model (with its activation: scores, score history, audit) when no model was active. Rows are only
#: added to these tables; every row from before is still there, unchanged.
INIT_ADDS = {"segments", "scoring_models", "score_history", "audit_log"}
#: Revision 0010 removes sessions whose cookies were not signed (ADR 15): their users log in again.
#: From 0010 on, sessions are signed and kept.
EMPTIED_BEFORE_0010 = {"web_sessions"}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> str:
    work = tmp_path_factory.mktemp("upgrade-source")
    return build_source(work / "source.db", work)


@pytest.fixture(params=["sqlite", "postgres"])
def empty_db(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A database with nothing in it (no schema): a new SQLite file or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    request.getfixturevalue("pg_server")  # skips (or fails in CI) when PostgreSQL is not reachable
    monkeypatch.setenv("LEADSTAGE_SECRET_FILE", str(tmp_path / "session-keys.json"))
    name = f"leadstage_upgrade_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.parametrize("revision", REVISIONS)
def test_init_upgrades_a_database_with_data_at_each_earlier_revision(
    revision: str, source: str, empty_db: str
) -> None:
    layout, before = build_at(revision, source, empty_db)
    empty = sorted(name for name, rows in before.items() if not rows)
    assert not empty, f"the fixture at {revision} leaves tables empty: {empty}"

    done = cli(empty_db, "init", "--json")
    assert (done["schema_before"], done["schema"], done["upgraded"]) == (revision, head_revision(), True)

    emptied = EMPTIED_BEFORE_0010 if revision < "0010" else set()
    kept = {name: cols for name, cols in layout.items() if name not in emptied}
    after = snapshot(empty_db, kept)  # the same columns, read from the upgraded database
    for name in emptied & set(before):
        assert snapshot(empty_db, {name: ["id"]})[name] == [], name
    for name, rows in before.items():
        if name in emptied:
            continue
        if name in INIT_ADDS:
            missing = {_key(r) for r in rows} - {_key(r) for r in after[name]}
            assert not missing, f"{name}: rows changed or lost in the upgrade: {sorted(missing)[:3]}"
        else:
            assert after[name] == rows, f"{name}: rows changed in the upgrade from {revision}"

    # the upgraded database works
    listed = cli(empty_db, "leads", "list", "--json")
    assert listed["total"] == len(before["leads"])
    ana = cli(empty_db, "leads", "show", "ana@northwind.example", "--json")
    assert (ana["first_name"], ana["stage"]) == ("Ana", "mql")
    assert {e["value"] for e in ana["external_ids"]} >= {"C-1"}
    assert [h["action"] for h in ana["history"]][-1] in ("promote_mql", "assign")
    explained = cli(empty_db, "score", "explain", "ana@northwind.example", "--json")
    assert explained["priority"]
    rules = {c["rule"] for c in explained["engagement"]["contributions"]}
    assert rules >= {"pricing page", "webinar attended"}  # her activities, kept, scored
    waiting = cli(empty_db, "leads", "list", "--stage", "lead", "--status", "open", "--limit", "1", "--json")
    lead_id = str(waiting["items"][0]["id"])
    moved = cli(empty_db, "leads", "transition", lead_id, "promote_mql", "--reason", "manual", "--note", "after upgrade", "--json")  # fmt: skip
    assert (moved["stage"], moved["status"]) == ("mql", "open")
    again = cli(empty_db, "init", "--json")
    assert (again["upgraded"], again["default_scoring_model"]) == (False, False)


def _key(row: tuple[object, ...]) -> str:
    return json.dumps(row, sort_keys=True, default=str)
