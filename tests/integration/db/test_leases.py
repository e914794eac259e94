"""Leases (ADR 15): one holder at a time, renewed by its holder, taken over once it runs out; the jobs of
servers that are gone are marked interrupted, those of running servers are not. SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

from leadstage.bootstrap import Container
from leadstage.services import leases
from leadstage.services.ports import Job
from tests.conftest import NOW

LOOP = leases.BACKGROUND_LOOP


def test_one_holder_at_a_time_renewed_by_itself_and_taken_over_when_it_runs_out(container: Container) -> None:
    uow = container.uow
    first = leases.hold(uow, LOOP, "a", now=NOW, seconds=30)
    assert first is not None
    assert (first.holder, first.generation) == ("a", 1)
    assert leases.hold(uow, LOOP, "b", now=NOW + timedelta(seconds=10), seconds=30) is None
    renewed = leases.hold(uow, LOOP, "a", now=NOW + timedelta(seconds=20), seconds=30)
    assert renewed is not None
    assert (renewed.generation, renewed.acquired_at) == (1, NOW)
    assert renewed.expires_at == NOW + timedelta(seconds=50)
    assert leases.hold(uow, LOOP, "b", now=NOW + timedelta(seconds=49), seconds=30) is None
    taken = leases.hold(uow, LOOP, "b", now=NOW + timedelta(seconds=50), seconds=30)  # a stopped renewing
    assert taken is not None
    assert (taken.holder, taken.generation) == ("b", 2)
    assert leases.hold(uow, LOOP, "a", now=NOW + timedelta(seconds=51), seconds=30) is None
    assert leases.release(uow, LOOP, "a") is False  # not a's any more
    assert leases.release(uow, LOOP, "b") is True
    again = leases.hold(uow, LOOP, "a", now=NOW + timedelta(seconds=52), seconds=30)
    assert again is not None
    assert again.holder == "a"


def test_many_servers_asking_at_once_give_exactly_one_holder(container: Container) -> None:
    won: list[str] = []
    start = threading.Barrier(6)

    def ask(name: str) -> None:
        start.wait()
        if leases.hold(container.uow, LOOP, name, now=NOW, seconds=30) is not None:
            won.append(name)

    threads = [threading.Thread(target=ask, args=(f"server-{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    current = leases.current(container.uow, LOOP)
    assert current is not None
    assert current.holder == won[0]


def test_only_the_jobs_of_servers_that_are_gone_are_interrupted(container: Container) -> None:
    leases.hold(container.uow, leases.server_lease("alive"), "alive", now=NOW, seconds=30)
    leases.hold(
        container.uow, leases.server_lease("gone"), "gone", now=NOW - timedelta(minutes=5), seconds=30
    )
    with container.uow(write=True) as uow:
        for job_id, runner in (("j-alive", "alive"), ("j-gone", "gone"), ("j-old", None)):
            uow.access.add_job(Job(job_id, "score.activate", "running", {}, "admin", NOW, runner=runner))
        uow.commit()
    assert leases.interrupt_orphaned_jobs(container.uow, now=NOW) == 2
    with container.uow() as uow:
        states = {j: uow.access.job(j) for j in ("j-alive", "j-gone", "j-old")}
    assert {j: s.status for j, s in states.items() if s} == {
        "j-alive": "running",
        "j-gone": "failed",
        "j-old": "failed",
    }
    assert "interrupted" in (states["j-gone"].error or "")  # type: ignore[union-attr]
