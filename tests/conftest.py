"""Shared fixtures: real databases (SQLite always, PostgreSQL when reachable), containers, data paths.

Storage tests take the ``db_url`` fixture, which runs them once on SQLite and once on PostgreSQL. With
``LEADSTAGE_REQUIRE_POSTGRES=1`` (set by .ci/run) an unreachable PostgreSQL fails instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from leadstage.adapters.clock import FixedClock
from leadstage.adapters.db.engine import make_engine, upgrade
from leadstage.adapters.db.tables import metadata
from leadstage.bootstrap import Container, build
from leadstage.config import Settings

PG_ADMIN_URL = os.environ.get(
    "LEADSTAGE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_PG = os.environ.get("LEADSTAGE_REQUIRE_POSTGRES") == "1"
IN_CI = os.environ.get("CI", "").lower() == "true"
DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
XEDUCATION = DATA_DIR / "xeducation_leads.csv"
NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def _pg_reachable() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure means: not reachable
        return f"{type(exc).__name__}: {exc}"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A fresh PostgreSQL database for this test process, dropped at the end."""
    problem = _pg_reachable()
    if problem is not None:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required (LEADSTAGE_REQUIRE_POSTGRES=1) but not reachable: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {problem}")
    name = f"leadstage_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(str(path))
    upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def _truncate_pg(url: str) -> None:
    engine = make_engine(url)
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables if t.name != "activity_types")
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        conn.execute(text("DELETE FROM activity_types WHERE NOT builtin"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A migrated, empty database: SQLite (a copy of a template) or PostgreSQL (truncated). PostgreSQL
    has no file beside it for the session signing key: LEADSTAGE_SECRET_FILE names one in the test's
    temporary directory."""
    if request.param == "sqlite":
        path = tmp_path / "leadstage.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_server")
    _truncate_pg(url)
    monkeypatch.setenv("LEADSTAGE_SECRET_FILE", str(tmp_path / "session-keys.json"))
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "leadstage.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def container(db_url: str, clock: FixedClock) -> Iterator[Container]:
    c = build(Settings(database_url=db_url), clock=clock)
    yield c
    c.close()


@pytest.fixture
def sqlite_container(sqlite_url: str, clock: FixedClock) -> Iterator[Container]:
    c = build(Settings(database_url=sqlite_url), clock=clock)
    yield c
    c.close()


@pytest.fixture
def engine(container: Container) -> Engine:
    return container.engine


@pytest.fixture
def xeducation() -> Path:
    if not XEDUCATION.exists():
        if IN_CI:
            pytest.fail(f"{XEDUCATION} is missing (CI=true: the shared data must be present)")
        pytest.skip(f"{XEDUCATION} not present (the shared data folder sits beside the repository)")
    return XEDUCATION
