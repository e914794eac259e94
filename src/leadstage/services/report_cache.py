"""Report documents kept in memory for pages that show them often (the marketing dashboard, ADR 19).

A report over a million leads takes seconds (ADR 10): too long for every page view. The cache keeps each
requested report's document (``services/reports.py``, exactly what ``leadstage report NAME --json``
prints) with when it was computed, and pages show its age.

* A report nobody computed yet is computed on the first request; callers asking for the same report at
  the same time wait for that one computation instead of starting their own.
* A report older than its refresh age (:data:`REFRESH_SECONDS`, or ten times what it took to compute,
  whichever is longer, so refreshing costs at most a tenth of a core) is computed again in a background
  thread. The tick's ``reports`` evaluator (``serve``'s background loop, ``Container.tick_evaluators``)
  starts that thread and returns at once: on SQLite the tick holds the write lock for its transaction,
  so the reports are never computed inside it. Each computation reads in its own unit of work.
* Reports nobody asked for in :data:`FORGET_SECONDS` are dropped (and no longer refreshed); at most
  :data:`MAX_ENTRIES` are kept, the least recently asked for go first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from leadstage.domain.analytics import ReportRequest
from leadstage.services.ports import Clock, UnitOfWork, UnitOfWorkFactory
from leadstage.services.reports import run_report

log = logging.getLogger("leadstage.reports")

REFRESH_SECONDS = 300.0
FORGET_SECONDS = 3600.0
MAX_ENTRIES = 100
Compute = Callable[[UnitOfWork, ReportRequest, datetime], dict[str, Any]]


def _run(uow: UnitOfWork, request: ReportRequest, as_of: datetime) -> dict[str, Any]:
    return run_report(uow, request, as_of=as_of)


@dataclass(frozen=True)
class CachedReport:
    """A report's document, when it was computed and how long that took."""

    request: ReportRequest
    doc: dict[str, Any]
    computed_at: datetime
    seconds: float

    def age(self, now: datetime) -> timedelta:
        return now - self.computed_at


@dataclass
class _Entry:
    used_at: datetime
    report: CachedReport | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class ReportCache:
    """Report documents by request, computed on first use and refreshed in the background."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        forget_seconds: float = FORGET_SECONDS,
        max_entries: int = MAX_ENTRIES,
        compute: Compute = _run,
    ) -> None:
        self._uow = uow_factory
        self._clock = clock
        self._refresh = refresh_seconds
        self._forget = forget_seconds
        self._max = max_entries
        self._compute = compute
        self._entries: dict[ReportRequest, _Entry] = {}
        self._guard = threading.Lock()
        self._worker: threading.Thread | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def _entry(self, request: ReportRequest) -> _Entry:
        now = self._clock.now()
        with self._guard:
            entry = self._entries.get(request)
            if entry is None:
                entry = self._entries[request] = _Entry(used_at=now)
                if len(self._entries) > self._max:
                    oldest = min(self._entries, key=lambda r: self._entries[r].used_at)
                    del self._entries[oldest]
            entry.used_at = now
            return entry

    def peek(self, request: ReportRequest) -> CachedReport | None:
        """The cached document, if any (however old); counts as asking for it."""
        return self._entry(request).report

    def get(self, request: ReportRequest) -> CachedReport:
        """The cached document, computed now when there is none yet. Bad requests raise as the report does."""
        entry = self._entry(request)
        if entry.report is not None:
            return entry.report
        with entry.lock:  # a second caller waits for the first one's computation
            if entry.report is None:
                self._store(entry, request)
            assert entry.report is not None
            return entry.report

    def compute(self, request: ReportRequest) -> CachedReport:
        """Compute the report again now, whatever the cache holds (a person asked to refresh)."""
        entry = self._entry(request)
        with entry.lock:
            self._store(entry, request)
            assert entry.report is not None
            return entry.report

    def forget(self, requests: Iterable[ReportRequest]) -> None:
        """Drop these documents: the next request computes them again."""
        with self._guard:
            for request in requests:
                self._entries.pop(request, None)

    def _store(self, entry: _Entry, request: ReportRequest) -> None:
        started = time.perf_counter()
        as_of = self._clock.now()
        with self._uow() as uow:
            doc = self._compute(uow, request, as_of)
        entry.report = CachedReport(request, doc, as_of, round(time.perf_counter() - started, 3))

    def refresh_age(self, report: CachedReport) -> timedelta:
        """How old a report may get before the background loop computes it again."""
        return timedelta(seconds=max(self._refresh, 10 * report.seconds))

    def due(self) -> list[ReportRequest]:
        """Reports to compute again: older than their refresh age and asked for lately. Forgets the rest."""
        now = self._clock.now()
        forget = timedelta(seconds=self._forget)
        with self._guard:
            for request in [r for r, e in self._entries.items() if now - e.used_at > forget]:
                del self._entries[request]
            return [
                request
                for request, entry in self._entries.items()
                if entry.report is not None and entry.report.age(now) >= self.refresh_age(entry.report)
            ]

    def refresh(self, requests: Iterable[ReportRequest]) -> int:
        """Compute these reports again, one after the other, in this thread; returns how many succeeded."""
        done = 0
        for request in requests:
            entry = self._entry_if_kept(request)
            if entry is None or not entry.lock.acquire(blocking=False):  # forgotten, or being computed
                continue
            try:
                self._store(entry, request)
                done += 1
            except Exception:  # a failing report must not stop the others (e.g. a segment was deleted)
                log.exception("refreshing the %s report failed", request.report.value)
            finally:
                entry.lock.release()
        return done

    def _entry_if_kept(self, request: ReportRequest) -> _Entry | None:
        with self._guard:
            return self._entries.get(request)

    def refresh_due(self, uow: UnitOfWork, now: datetime) -> Mapping[str, Any]:
        """The tick's evaluator: start refreshing the due reports in a background thread, return at once."""
        due = self.due()
        with self._guard:
            if not due or (self._worker is not None and self._worker.is_alive()):
                return {"due": len(due), "started": 0}
            self._worker = threading.Thread(
                target=self.refresh, args=(due,), name="leadstage-reports", daemon=True
            )
            self._worker.start()
        return {"due": len(due), "started": len(due)}

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a background refresh to finish (tests, shutting down)."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
