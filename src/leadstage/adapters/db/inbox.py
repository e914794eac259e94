"""The activity inbox (ADR 24): on SQLite, the API's activity batches are written to a small database file
beside the main one and answered; the follow-up moves them into ``activities``, sorted by lead.

Why a file of its own: SQLite has one write lock per database file. A batch stored straight into
``activities`` writes a page of each lead-ordered index per row (about 9 MB for 1,000 activities of random
leads), and the follow-up's transaction (scoring, credits) holds the main file's write lock for a good part of
a second, during which no batch could be stored. The inbox takes a batch in a couple of milliseconds and its
write lock is never held by the follow-up for longer than a short delete.

How moving stays exact across two files (SQLite commits each file on its own):

* rows get increasing ids (``AUTOINCREMENT``: never reused); writers take the inbox's write lock first, so
  rows commit in id order and a reader never sees a gap that fills later;
* the follow-up inserts the rows after a *mark* into ``activities`` and stores the new mark in the main
  database (``event_cursors``) in the same transaction: rows up to the mark are stored, whatever happens
  to the inbox afterwards; they are deleted from the inbox later (:meth:`SqliteInbox.discard_through`);
* the mark names the inbox file (a token made with it), so a new or replaced inbox file starts from its
  first row;
* a batch is checked against the main database while it holds the inbox's write lock: a row leaves the
  inbox only after it is stored, so a repeated event is found in one or the other.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from leadstage.domain.times import from_utc_text, utc_text
from leadstage.services.ports import ActivityRow

SUFFIX = ".inbox"  # beside the database file: ``leadstage.db.inbox``

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS inbox_file (token TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS activity_inbox (id INTEGER PRIMARY KEY AUTOINCREMENT, lead_id INTEGER NOT NULL, "
    "type TEXT NOT NULL, occurred_at TEXT NOT NULL, idempotency_key TEXT NOT NULL, source TEXT, campaign TEXT, "
    "content TEXT, properties TEXT, received_at TEXT NOT NULL, UNIQUE (lead_id, idempotency_key))",
)
_COLUMNS = "lead_id, type, occurred_at, idempotency_key, source, campaign, content, properties"


def inbox_path(database: str | Path) -> Path:
    return Path(f"{database}{SUFFIX}")


class SqliteInbox:
    """The inbox file of a SQLite database. Connections are pooled, not kept per thread: a server's worker
    threads come and go, and each would otherwise leave a connection open behind it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._token: str | None = None

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._open()
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            with self._lock:
                self._idle.append(conn)

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=10000")
            if self._token is None:
                self._token = self._make(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _make(self, conn: sqlite3.Connection) -> str:
        """The file's tables and token (made by the first connection to find them missing)."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA:
                conn.execute(statement)
            found = conn.execute("SELECT token FROM inbox_file").fetchone()
            if found is None:
                token = secrets.token_hex(8)
                conn.execute("INSERT INTO inbox_file (token) VALUES (?)", (token,))
            else:
                token = str(found[0])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return token

    def _after(self, mark: str | None) -> int:
        """The last row id a mark stored in the main database says is stored (0: none of this file's)."""
        if self._token is None:
            with self._conn():  # (opening the file reads its token)
                pass
        assert self._token is not None
        if not mark:
            return 0
        token, _, last = mark.partition(":")
        return int(last) if token == self._token and last.isdigit() else 0

    def add(
        self,
        rows: Sequence[ActivityRow],
        stored: Callable[[Sequence[ActivityRow]], set[tuple[int, str]]],
        *,
        at: datetime,
    ) -> int:
        """Keep the rows not stored yet (``stored`` names the (lead, key) pairs the main database holds,
        asked while this holds the inbox's write lock) and not already waiting; returns how many were new."""
        if not rows:
            return 0
        with self._conn() as conn:
            conn.execute("BEGIN IMMEDIATE")
            held = stored(rows)
            received = utc_text(at)
            new = [(*r, received) for r in rows if (r[0], r[3]) not in held]
            before = conn.total_changes
            conn.executemany(
                f"INSERT OR IGNORE INTO activity_inbox ({_COLUMNS}, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                new,
            )
            added = conn.total_changes - before
            conn.execute("COMMIT")
        return added

    def after(self, mark: str | None, limit: int) -> tuple[list[tuple[datetime, ActivityRow]], str | None]:
        """Up to ``limit`` rows after the mark, oldest first, each with when it arrived, and the mark that
        ends them (None: no rows)."""
        last = self._after(mark)
        with self._conn() as conn:
            found = conn.execute(
                f"SELECT id, {_COLUMNS}, received_at FROM activity_inbox WHERE id > ? ORDER BY id LIMIT ?",
                (last, int(limit)),
            ).fetchall()
        rows: list[tuple[datetime, ActivityRow]] = []
        end = last
        times: dict[str, datetime] = {}
        for r in found:
            end = r[0]
            received = times.get(r[9])
            if received is None:
                received = times[r[9]] = from_utc_text(r[9])
            rows.append((received, (r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8])))
        return rows, (f"{self._token}:{end}" if rows else None)

    def discard_through(self, mark: str | None) -> None:
        """Delete the rows the main database holds (up to a mark read there)."""
        last = self._after(mark)
        if last:
            with self._conn() as conn:
                conn.execute("DELETE FROM activity_inbox WHERE id <= ?", (last,))

    def waiting(self, mark: str | None) -> int:
        """How many rows after the mark wait to be stored."""
        last = self._after(mark)
        with self._conn() as conn:
            return int(
                conn.execute("SELECT count(*) FROM activity_inbox WHERE id > ?", (last,)).fetchone()[0]
            )

    def close(self) -> None:
        """Close the idle connections (the ones in use close when they come back after this, as new)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
