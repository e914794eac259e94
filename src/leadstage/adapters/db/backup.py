"""Consistent online backups and verified restores (issue 9 section 1).

* SQLite: the SQLite backup API copies a consistent snapshot while the server keeps writing; the copy
  carries its manifest (row count and checksum per table, computed on the copy) in a table of its own.
* PostgreSQL: ``pg_dump -Fc`` from an exported snapshot, with the manifest computed in that same snapshot,
  written beside the dump as ``FILE.manifest.json``; restored with ``pg_restore``.

A restore refuses a database that holds leads unless forced, then recomputes every table's count and
checksum and compares them with the manifest: a backup that does not verify is reported, not trusted.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, func, select, text
from sqlalchemy.engine import make_url

from leadstage.adapters.db import tables as t
from leadstage.adapters.db.engine import normalize_url
from leadstage.adapters.db.inbox import inbox_path
from leadstage.domain.errors import RuleViolation, ValidationError

MANIFEST_TABLE = "leadstage_backup_manifest"


class BackupMismatch(RuleViolation):
    """A restored database does not match the backup's manifest."""


def _rows(conn: Connection, table: Table) -> Iterator[Any]:
    keys = list(table.primary_key.columns) or list(table.columns)
    result = conn.execution_options(stream_results=True).execute(select(table).order_by(*keys))
    yield from result


def manifest(conn: Connection) -> dict[str, dict[str, Any]]:
    """Row count and SHA-256 over the rows (in key order) of every table of the schema."""
    out: dict[str, dict[str, Any]] = {}
    for table in t.metadata.sorted_tables:
        digest = hashlib.sha256()
        count = 0
        for row in _rows(conn, table):
            digest.update(json.dumps(list(row), default=str, sort_keys=True).encode())
            count += 1
        out[table.name] = {"rows": count, "sha256": digest.hexdigest()}
    return out


def _sqlite_path(url: str) -> Path:
    parsed = make_url(normalize_url(url))
    if not parsed.database or parsed.database == ":memory:":
        raise ValidationError("a backup needs a database file, not an in-memory database", field="db")
    return Path(parsed.database)


def _has_leads(engine: Engine) -> bool:
    with engine.connect() as conn:
        try:
            return bool(conn.execute(select(func.count()).select_from(t.leads)).scalar_one())
        except Exception:  # no schema yet: nothing to lose
            return False


def backup(engine: Engine, url: str, target: Path, *, at: datetime) -> dict[str, Any]:
    """Write a consistent backup of the running database to ``target``; returns the manifest document."""
    if target.exists():
        raise ValidationError(f"{target} exists: choose a new file name", field="file")
    if engine.dialect.name == "sqlite":
        source = sqlite3.connect(_sqlite_path(url))
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)  # one consistent snapshot, taken while writers go on
        finally:
            source.close()
        copy.close()
        copied = create_engine(f"sqlite:///{target}")
        with copied.begin() as conn:
            tables = manifest(conn)
            doc = {"dialect": "sqlite", "taken_at": at.isoformat(), "tables": tables}
            conn.execute(text(f"CREATE TABLE {MANIFEST_TABLE} (document TEXT NOT NULL)"))
            conn.execute(text(f"INSERT INTO {MANIFEST_TABLE} (document) VALUES (:d)"), {"d": json.dumps(doc)})
        copied.dispose()
        return doc
    with engine.connect() as conn:
        conn.execute(text("BEGIN ISOLATION LEVEL REPEATABLE READ"))
        snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
        dump = subprocess.run(  # noqa: S603  (an argument list, no shell)
            [_tool("pg_dump"), "-Fc", "--no-owner", f"--snapshot={snapshot}", "-f", str(target), _libpq(url)],
            capture_output=True,
            text=True,
            check=False,
        )
        if dump.returncode != 0:
            raise ValidationError(f"pg_dump failed: {dump.stderr.strip()[:500]}", field="file")
        doc = {"dialect": "postgresql", "taken_at": at.isoformat(), "tables": manifest(conn)}
        conn.rollback()
    Path(f"{target}.manifest.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return doc


def restore(engine: Engine, url: str, source: Path, *, force: bool) -> dict[str, Any]:
    """Restore a backup into the configured database and verify it table by table."""
    if not source.exists():
        raise ValidationError(f"{source}: no such backup file", field="file")
    if _has_leads(engine) and not force:
        raise RuleViolation("the database is not empty: restoring would replace it (use --force)")
    if engine.dialect.name == "sqlite":
        backup_db = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            row = backup_db.execute(f"SELECT document FROM {MANIFEST_TABLE}").fetchone()
        except sqlite3.DatabaseError:
            raise ValidationError(f"{source} is not a leadstage SQLite backup", field="file") from None
        doc: dict[str, Any] = json.loads(row[0])
        engine.dispose()
        # activities that waited for the database about to be replaced name its leads, not the backup's
        # (ADR 24): gone before it is replaced, so that nothing can store them into the restored one
        waiting = inbox_path(_sqlite_path(url))
        for stale in (waiting, Path(f"{waiting}-wal"), Path(f"{waiting}-shm")):
            stale.unlink(missing_ok=True)
        target = sqlite3.connect(_sqlite_path(url))
        try:
            backup_db.backup(target)
            target.execute(f"DROP TABLE {MANIFEST_TABLE}")
            target.commit()
        finally:
            target.close()
            backup_db.close()
    else:
        manifest_file = Path(f"{source}.manifest.json")
        if not manifest_file.exists():
            raise ValidationError(f"{manifest_file} is missing: the backup cannot be verified", field="file")
        doc = json.loads(manifest_file.read_text(encoding="utf-8"))
        engine.dispose()
        done = subprocess.run(  # noqa: S603  (an argument list, no shell)
            [_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "-d", _libpq(url), str(source)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise ValidationError(f"pg_restore failed: {done.stderr.strip()[:500]}", field="file")
    with engine.connect() as conn:
        found = manifest(conn)
    wrong = [name for name, facts in doc["tables"].items() if found.get(name) != facts]
    if wrong:
        raise BackupMismatch(f"the restored database does not match the backup in: {', '.join(wrong)}")
    return doc


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ValidationError(f"{name} is not installed (PostgreSQL client tools are needed)", field="db")
    return found


def _libpq(url: str) -> str:
    """The URL as libpq tools (pg_dump, pg_restore) take it."""
    parsed = make_url(normalize_url(url)).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)
