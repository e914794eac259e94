"""The audit log (issue 9 section 3): who did what, when, from where, and what changed.

Services call :func:`record` in the same transaction as the change, so a change and its audit row are
committed together or not at all. Where a request came from (an address, or ``cli``) is set once per
request or command by the entry point (:data:`CLIENT`), not passed through every service.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from datetime import datetime
from typing import Any, Protocol

from leadstage.domain.errors import PermissionDenied
from leadstage.domain.stages import Actor, Role
from leadstage.services.ports import AuditEntry, AuditRepository, UnitOfWork

CLIENT: ContextVar[str | None] = ContextVar("leadstage_client", default=None)


class Audited(Protocol):
    """Any unit of work with the audit log (the full one, or a narrower one such as predictive's)."""

    @property
    def audit(self) -> AuditRepository: ...


def record(
    uow: Audited,
    actor: Actor | str,
    action: str,
    *,
    at: datetime,
    target: str | None = None,
    **details: Any,
) -> None:
    """Add an audit row in the caller's transaction."""
    name = actor if isinstance(actor, str) else actor.name
    uow.audit.add(
        AuditEntry(at=at, actor=name, action=action, target=target, client=CLIENT.get(), details=details)
    )


def entries(
    uow: UnitOfWork,
    *,
    actor: Actor,
    who: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    limit: int = 200,
) -> list[Mapping[str, Any]]:
    """The latest audit rows first; only administrators read the audit log."""
    if actor.role not in (Role.ADMIN,):
        raise PermissionDenied("only an administrator reads the audit log")
    return [
        {
            "at": e.at.isoformat(),
            "actor": e.actor,
            "action": e.action,
            "target": e.target,
            "client": e.client,
            "details": dict(e.details),
        }
        for e in uow.audit.find(actor=who, action=action, since=since, limit=limit)
    ]
