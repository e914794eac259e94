"""The server's activity follow-ups in a process of their own (ADR 25).

On SQLite with the activity inbox (ADR 24) a batch writes only the inbox file and the follow-up only the
main database, so neither waits for the other's write lock; what they still shared in one process was the
interpreter lock. :class:`FollowUpProcess` runs :meth:`Container.follow_up` in a child process started
with ``spawn`` (no threads or connections of the server's are copied into it), one run per call of
:meth:`FollowUpProcess.run`: the server's loop decides when, as before, and the child does the work.

A child that dies (or fails to start) is started again at the next run; a run that fails raises in the
server's loop, which logs it and keeps the backlog for the next run, as for a run in a thread.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from leadstage.config import Settings
from leadstage.services.ingest import FollowUps

log = logging.getLogger("leadstage.follow_up")

#: how long stopping waits for the child to finish a run and close its database before it is ended
STOP_SECONDS = 60.0
#: a child that ended sooner than this after its start is started again only after this long
RESTART_SECONDS = 5.0


class FollowUpFailed(RuntimeError):
    """The child's run raised; the message is its error."""


def _child(settings: Settings, conn: Connection) -> None:
    """The child's loop: build the product once, then one follow-up per request until told to stop or the
    server goes away (its end of the pipe closes)."""
    from leadstage.api.observability import configure_logging
    from leadstage.bootstrap import build

    # the server's signals (Ctrl-C, a service manager's stop) are the server's to act on: it asks for a
    # last run and then says stop; a run is not cut short here (the closed pipe ends this if it dies)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

    configure_logging(settings.log_format)  # its lines look like the server's
    container = build(settings)
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):  # the server is gone
                return
            if message != "run":
                return
            try:
                done = container.follow_up()
            except Exception as exc:
                log.exception("following up activities failed")
                conn.send(("failed", f"{type(exc).__name__}: {exc}"))
            else:
                conn.send(("done", done.activities, done.promoted))
    finally:
        container.close()


class FollowUpProcess:
    """A child process that runs the follow-ups when asked; calls come from one thread at a time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._process: Any = None
        self._conn: Connection | None = None
        self._started_at = 0.0

    def _start(self) -> Connection:
        if self._conn is not None:
            self._conn.close()
        if self._process is not None and time.monotonic() - self._started_at < RESTART_SECONDS:
            time.sleep(RESTART_SECONDS)  # one that keeps ending is not started again at once, every time
        self._started_at = time.monotonic()
        mine, theirs = self._context.Pipe()
        process = self._context.Process(
            target=_child, args=(self.settings, theirs), name="leadstage-follow-up", daemon=True
        )
        process.start()
        theirs.close()
        self._process, self._conn = process, mine
        return mine

    def run(self) -> FollowUps:
        """One follow-up run in the child (started, or started again, as needed); blocks until it ends."""
        with self._lock:
            conn = self._conn
            if conn is None or self._process is None or not self._process.is_alive():
                if self._process is not None:
                    log.warning(
                        "the follow-up process ended (exit code %s): starting it again",
                        self._process.exitcode,
                    )
                conn = self._start()
            try:
                conn.send("run")
                reply = conn.recv()
            except (EOFError, OSError) as exc:
                self._conn = None
                raise FollowUpFailed(f"the follow-up process ended during a run: {exc!r}") from exc
        if reply[0] == "failed":
            raise FollowUpFailed(str(reply[1]))
        return FollowUps(int(reply[1]), int(reply[2]))

    def close(self) -> None:
        """Stop the child after the run it may be in."""
        with self._lock:
            process, conn = self._process, self._conn
            self._process = self._conn = None
        if process is None:
            return
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.send("stop")
            conn.close()
        process.join(STOP_SECONDS)
        if process.is_alive():
            process.terminate()
            process.join(5)
