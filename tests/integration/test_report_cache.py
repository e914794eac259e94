"""The report cache behind the dashboard (ADR 19): computed once on first use (also when asked twice at
once), refreshed by the tick's evaluator in a background thread and never inside the tick's transaction,
forgotten when nobody asks, bounded, and only part of the tick once pages use it."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from leadstage.adapters.clock import FixedClock
from leadstage.bootstrap import Container
from leadstage.domain.analytics import ReportRequest, parse_request
from leadstage.services import tick as tick_service
from leadstage.services.ports import UnitOfWork
from leadstage.services.report_cache import ReportCache
from leadstage.services.reports import run_report


class Counting:
    """A report function that counts its calls (and can be slow), computing the real report."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[str] = []
        self.delay = delay
        self.lock = threading.Lock()

    def __call__(self, uow: UnitOfWork, request: ReportRequest, as_of: datetime) -> dict[str, Any]:
        with self.lock:
            self.calls.append(request.report.value)
        time.sleep(self.delay)
        return run_report(uow, request, as_of=as_of)


def test_a_cached_report_is_the_report_and_is_computed_once(container: Container, clock: FixedClock) -> None:
    counting = Counting(delay=0.2)
    cache = ReportCache(container.uow, clock, compute=counting)
    funnel = parse_request("funnel", by="source")
    assert cache.peek(funnel) is None
    threads = [threading.Thread(target=cache.get, args=(funnel,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counting.calls == ["funnel"]  # three callers at once, one computation
    cached = cache.get(funnel)
    with container.uow() as uow:
        assert cached.doc == run_report(uow, funnel, as_of=clock.now())
    assert cached.computed_at == clock.now()
    assert cache.peek(parse_request("funnel", by="campaign")) is None  # another request, another entry


def test_old_reports_are_refreshed_in_the_background_and_unused_ones_forgotten(
    sqlite_container: Container,
) -> None:
    clock = FixedClock(datetime(2026, 11, 2, 12, 0, tzinfo=UTC))
    counting = Counting()
    cache = ReportCache(
        sqlite_container.uow, clock, refresh_seconds=300, forget_seconds=3600, compute=counting
    )
    velocity, feedback = parse_request("velocity"), parse_request("feedback", by="source")
    cache.get(velocity)
    cache.get(feedback)
    assert cache.due() == []
    clock.at += timedelta(seconds=299)
    with sqlite_container.uow() as uow:
        assert cache.refresh_due(uow, clock.now()) == {"due": 0, "started": 0}
    clock.at += timedelta(seconds=2)
    cache.peek(velocity)  # asked for again: kept
    with sqlite_container.uow() as uow:
        assert cache.refresh_due(uow, clock.now()) == {"due": 2, "started": 2}
    cache.wait(30)
    assert sorted(counting.calls) == ["feedback", "feedback", "velocity", "velocity"]
    refreshed = cache.peek(velocity)
    assert refreshed is not None
    assert refreshed.computed_at == clock.now()
    clock.at += timedelta(seconds=3601 - 301)  # feedback was last asked for 3601 s ago, velocity 3300 s ago
    assert cache.due() == [velocity]
    assert len(cache) == 1
    cache.forget([velocity])
    assert len(cache) == 0


def test_a_slow_report_is_refreshed_less_often_and_the_cache_is_bounded(sqlite_container: Container) -> None:
    clock = FixedClock(datetime(2026, 11, 2, 12, 0, tzinfo=UTC))
    cache = ReportCache(sqlite_container.uow, clock, max_entries=2, compute=Counting(delay=0.05))
    first = cache.get(parse_request("velocity"))
    assert cache.refresh_age(first) == timedelta(seconds=300)
    slow = first.__class__(first.request, first.doc, first.computed_at, seconds=60.0)
    assert cache.refresh_age(slow) == timedelta(seconds=600)  # ten times what it took
    clock.at += timedelta(seconds=1)
    cache.get(parse_request("funnel"))
    clock.at += timedelta(seconds=1)
    cache.get(parse_request("feedback"))
    assert len(cache) == 2
    assert cache.peek(parse_request("velocity")) is None  # the least recently asked for went first


def test_the_tick_refreshes_reports_only_once_pages_use_the_cache(sqlite_container: Container) -> None:
    names = [name for name, _ in sqlite_container.tick_evaluators()]
    assert "reports" not in names  # `leadstage tick` has no reports to keep fresh
    cache = sqlite_container.report_cache
    cache.get(parse_request("velocity"))
    assert [name for name, _ in sqlite_container.tick_evaluators()][-1] == "reports"
    report = tick_service.tick(
        sqlite_container.uow, now=sqlite_container.clock.now(), evaluators=sqlite_container.tick_evaluators()
    )
    assert report.results["reports"] == {"due": 0, "started": 0}
    assert report.errors == {}
