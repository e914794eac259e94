"""Engines for SQLite (WAL, foreign keys, busy timeout) and PostgreSQL (psycopg 3), and migrations."""

from __future__ import annotations

import ast
import functools
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
#: Connections kept open per engine, and how many more may be opened at busy moments.
POOL: dict[str, Any] = {"pool_size": 16, "max_overflow": 24}


def normalize_url(url: str) -> str:
    """Accept plain ``postgresql://`` and file paths; use the psycopg 3 driver for PostgreSQL."""
    if "://" not in url:
        return f"sqlite:///{url}"
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, *, cache_mb: int = 64) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA cache_size=-{int(cache_mb) * 1024}")
    cursor.execute("PRAGMA temp_store=MEMORY")
    # bulk imports commit every batch; checkpointing every 4 MB (the default) rewrote the same pages often
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    cursor.close()


#: How long a SQLite writer waits for its turn in all. Each try waits the busy timeout; SQLite's busy
#: handler is not a queue, so with several processes writing (servers, imports) one try can lose.
WRITE_LOCK_WAIT_SECONDS = 300.0


def _sqlite_begin(conn: Connection) -> None:
    """A unit of work that will write takes the write lock at its start (BEGIN IMMEDIATE): it waits its
    turn instead of failing when its read snapshot cannot be upgraded after another commit. Nothing has
    happened before BEGIN, so a try that timed out is simply made again."""
    if not conn.get_execution_options().get("leadstage_write"):
        conn.exec_driver_sql("BEGIN")
        return
    deadline = time.monotonic() + WRITE_LOCK_WAIT_SECONDS
    while True:
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            return
        except OperationalError as exc:
            if "locked" not in str(exc.orig) or time.monotonic() > deadline:
                raise


def make_engine(url: str, *, echo: bool = False, cache_mb: int = 64) -> Engine:
    """An engine for the URL, configured for leadstage's use of that database; ``cache_mb``: SQLite's page
    cache per connection (a helper process that only looks a few things up needs less)."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        sqlite_url = make_url(url)
        if sqlite_url.database and sqlite_url.database != ":memory:":
            Path(sqlite_url.database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        memory = sqlite_url.database in (None, "", ":memory:")
        engine = create_engine(
            url,
            echo=echo,
            poolclass=NullPool if memory else None,
            connect_args={"check_same_thread": False, "timeout": 10},
            # a server runs requests in up to 40 threads: keep their connections instead of opening (and
            # reading the schema into) a new one for each request beyond the default five
            **({} if memory else POOL),
        )
        event.listen(engine, "connect", functools.partial(_sqlite_pragmas, cache_mb=cache_mb))
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        event.listen(engine, "connect", lambda conn, _rec: setattr(conn, "isolation_level", None))
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    engine = create_engine(url, echo=echo, pool_pre_ping=True, **POOL)
    event.listen(engine, "begin", _postgresql_begin)
    return engine


def checkpoint(engine: Engine) -> None:
    """SQLite: copy what the write-ahead log holds into the database file now, as far as readers allow,
    without waiting for writers (PASSIVE); so that the next writer's commit need not (the follow-up loop
    calls it after each run: ADR 21). Nothing to do on PostgreSQL."""
    if engine.dialect.name != "sqlite":
        return
    raw = engine.raw_connection()
    try:
        raw.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)")
    finally:
        raw.close()


#: The advisory lock that serialises identity-resolving writers on PostgreSQL (see ``_postgresql_begin``).
IDENTITY_LOCK = 7_265_001


def _postgresql_begin(conn: Connection) -> None:
    """A serial unit of work (the import pipeline: files, API batches, forms, hooks) holds one advisory
    lock for each transaction, so two processes importing at once take turns batch by batch instead of
    both creating the same person or account; SQLite's writers take turns anyway (BEGIN IMMEDIATE)."""
    if conn.get_execution_options().get("leadstage_serial"):
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({IDENTITY_LOCK})")


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config  # (alembic is loaded only to migrate: a second off every start-up)

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


_ASSIGNED = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]+)?=\s*(.+?)\s*$", re.MULTILINE)


@functools.cache
def _revisions() -> dict[str, tuple[str, ...]]:
    """Each schema revision this code knows and the ones it follows (see :func:`revisions_in`)."""
    return revisions_in(MIGRATIONS_DIR / "versions")


def revisions_in(directory: Path) -> dict[str, tuple[str, ...]]:
    """The revisions of the migration scripts in ``directory`` and the ones each follows, read from their
    ``revision`` and ``down_revision`` assignments (literals: either quotes, ``None``, a tuple for a
    merge) without loading alembic, as every command checks the schema at start-up; a test holds this to
    alembic's reading of the same scripts."""
    found: dict[str, tuple[str, ...]] = {}
    for path in sorted(directory.glob("*.py")):
        values: dict[str, Any] = {}
        for name, literal in _ASSIGNED.findall(path.read_text(encoding="utf-8")):
            try:
                values.setdefault(name, ast.literal_eval(literal))
            except (ValueError, SyntaxError):
                raise RuntimeError(f"{path}: {name} is not a literal: {literal}") from None
        revision, down = values.get("revision"), values.get("down_revision", ())
        if not isinstance(revision, str):
            raise RuntimeError(f"{path}: a migration script without a revision")
        found[revision] = () if down is None else (down,) if isinstance(down, str) else tuple(down)
    return found


def head_revision() -> str:
    """The newest schema revision this code knows."""
    revisions = _revisions()
    heads = set(revisions) - {down for downs in revisions.values() for down in downs}
    if len(heads) != 1:
        raise RuntimeError(f"migration scripts with {len(heads)} newest revisions: {sorted(heads)}")
    return heads.pop()


def current_revision(engine: Engine) -> str | None:
    """The database's schema revision (alembic's version table), or None when it has none."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(versions) > 1:
        raise RuntimeError(f"the database names several schema revisions: {sorted(versions)}")
    return versions[0] if versions else None


def is_known_revision(revision: str) -> bool:
    """Whether this code knows the schema revision (False: the database is newer)."""
    return revision in _revisions()


class DatabaseTooNew(Exception):
    """The database was written by a newer leadstage than this one."""


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to the newest revision; returns (before, after). Refuses a newer database."""
    from alembic import command

    before = current_revision(engine)
    if before is not None and not is_known_revision(before):
        raise DatabaseTooNew(
            f"the database is at schema revision {before}, which this leadstage does not know: "
            "it was written by a newer version; upgrade leadstage instead"
        )
    command.upgrade(alembic_config(engine), "head")
    return before, head_revision()
