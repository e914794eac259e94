"""The audit log in SQL: rows are only ever added (the database refuses changes: see migration 0009)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from leadstage.adapters.db import tables as t
from leadstage.services.ports import AuditEntry

_A = t.audit_log


class SqlAuditRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, entry: AuditEntry) -> None:
        self.conn.execute(
            insert(_A).values(
                at=entry.at,
                actor=entry.actor,
                action=entry.action,
                target=entry.target,
                client=entry.client,
                details=dict(entry.details) or None,
            )
        )

    def find(
        self, *, actor: str | None, action: str | None, since: datetime | None, limit: int
    ) -> list[AuditEntry]:
        q = select(_A).order_by(_A.c.at.desc(), _A.c.id.desc()).limit(limit)
        conds: list[Any] = []
        if actor:
            conds.append(_A.c.actor == actor)
        if action:
            conds.append(_A.c.action == action)
        if since is not None:
            conds.append(_A.c.at >= since)
        if conds:
            q = q.where(*conds)
        return [
            AuditEntry(
                at=r.at,
                actor=r.actor,
                action=r.action,
                target=r.target,
                client=r.client,
                details=r.details or {},
            )
            for r in self.conn.execute(q)
        ]
