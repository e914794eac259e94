"""Leases in SQL: one atomic upsert takes, renews or refuses a lease; never commits (ADR 15)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, case, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from leadstage.adapters.db import tables as t
from leadstage.services.ports import LeaseState

_L = t.leases


class SqlLeaseRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name

    def acquire(self, name: str, holder: str, *, now: datetime, seconds: float) -> LeaseState | None:
        """Take the lease when it is free or expired, renew it when ``holder`` has it; None when another
        holder's lease is still running. One statement: two servers asking at once cannot both win."""
        make = pg_insert if self.dialect == "postgresql" else sqlite_insert
        until = now + timedelta(seconds=seconds)
        stmt = make(_L).values(
            name=name, holder=holder, generation=1, acquired_at=now, renewed_at=now, expires_at=until
        )
        same = _L.c.holder == stmt.excluded.holder
        upsert = stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={
                "holder": stmt.excluded.holder,
                "generation": case((same, _L.c.generation), else_=_L.c.generation + 1),
                "acquired_at": case((same, _L.c.acquired_at), else_=stmt.excluded.acquired_at),
                "renewed_at": stmt.excluded.renewed_at,
                "expires_at": stmt.excluded.expires_at,
            },
            where=same | (_L.c.expires_at <= stmt.excluded.renewed_at),
        ).returning(_L.c.name, _L.c.holder, _L.c.generation, _L.c.acquired_at, _L.c.expires_at)
        row = self.conn.execute(upsert).first()
        return None if row is None else LeaseState(*row)

    def release(self, name: str, holder: str) -> bool:
        """Give the lease up (a server shutting down), so another takes it without waiting for expiry."""
        q = delete(_L).where(_L.c.name == name, _L.c.holder == holder)
        return bool(self.conn.execute(q).rowcount)

    def holders(self, prefix: str, *, now: datetime) -> list[str]:
        """Holders of the leases named ``prefix...`` that are still running at ``now``."""
        q = select(_L.c.holder).where(_L.c.name.startswith(prefix, autoescape=True), _L.c.expires_at > now)
        return [r.holder for r in self.conn.execute(q)]

    def purge(self, prefix: str, *, before: datetime) -> int:
        """Forget leases named ``prefix...`` that ran out before ``before`` (servers long gone)."""
        q = delete(_L).where(_L.c.name.startswith(prefix, autoescape=True), _L.c.expires_at < before)
        return int(self.conn.execute(q).rowcount)

    def get(self, name: str) -> LeaseState | None:
        row = self.conn.execute(
            select(_L.c.name, _L.c.holder, _L.c.generation, _L.c.acquired_at, _L.c.expires_at).where(
                _L.c.name == name
            )
        ).first()
        return None if row is None else LeaseState(*row)
