"""Leases: work that must run once at a time across every server of one database (ADR 15).

``serve`` runs the background loop (``tick``: SLAs, the hand-off queue, follow-ups, webhook and mail
delivery) only while it holds the ``background-loop`` lease. Each server asks for it regularly; the
holder's ask renews it, anyone else's is refused until it expires. A holder that stops (shut down, killed,
its machine gone) is replaced within about one lease period: its lease simply runs out. A server that
shuts down cleanly releases it at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from leadstage.services.ports import LeaseState, UnitOfWorkFactory

BACKGROUND_LOOP = "background-loop"
#: Every running server also holds a lease of its own (``server:HOLDER``): the jobs it runs are its own,
#: and only the jobs of a server whose lease ran out are marked interrupted.
SERVER_PREFIX = "server:"


def server_lease(holder: str) -> str:
    return SERVER_PREFIX + holder


def hold(
    uow_factory: UnitOfWorkFactory, name: str, holder: str, *, now: datetime, seconds: float
) -> LeaseState | None:
    """Take or renew the lease for ``seconds`` from ``now``; None when another holder has it."""
    with uow_factory(write=True) as uow:
        state = uow.leases.acquire(name, holder, now=now, seconds=seconds)
        uow.commit()
    return state


def release(uow_factory: UnitOfWorkFactory, name: str, holder: str) -> bool:
    """Give the lease up when ``holder`` has it; True when it did."""
    with uow_factory(write=True) as uow:
        released = uow.leases.release(name, holder)
        uow.commit()
    return released


def current(uow_factory: UnitOfWorkFactory, name: str) -> LeaseState | None:
    with uow_factory() as uow:
        return uow.leases.get(name)


def interrupt_orphaned_jobs(uow_factory: UnitOfWorkFactory, *, now: datetime) -> int:
    """Mark failed the jobs left queued or running by servers that are gone (their lease ran out)."""
    with uow_factory(write=True) as uow:
        alive = uow.leases.holders(SERVER_PREFIX, now=now)
        interrupted = uow.access.interrupt_jobs(now, alive_runners=alive)
        uow.leases.purge(SERVER_PREFIX, before=now - timedelta(days=1))
        uow.commit()
    return interrupted
