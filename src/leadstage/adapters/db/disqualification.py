"""Disqualification records, identity tombstones and per-database secrets in SQL; never commits."""

from __future__ import annotations

import secrets as random_secrets
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from leadstage.adapters.db import tables as t
from leadstage.adapters.db.repositories import chunks
from leadstage.domain.disqualification import Disqualification, Remedy, Strategy
from leadstage.services.ports import Tombstone

_D = t.disqualifications


class SqlDisqualificationRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- disqualifications

    def add(self, record: Disqualification) -> int:
        values = {
            "lead_id": record.lead_id,
            "cycle": record.cycle,
            "reason": record.reason,
            "note": record.note,
            "actor": record.actor,
            "at": record.at,
            "strategy": record.strategy.as_dict(),
            "nurture": Remedy.NURTURE in record.strategy.remedies,
            "recheck_at": record.recheck_at,
            "next_follow_up_at": record.next_follow_up_at,
            "follow_ups_done": record.follow_ups_done,
            "fit_snapshot": dict(record.fit_snapshot) if record.fit_snapshot is not None else None,
        }
        return int(self.conn.execute(insert(_D).values(values).returning(_D.c.id)).scalar_one())

    def latest(self, lead_id: int) -> Disqualification | None:
        q = select(_D).where(_D.c.lead_id == lead_id).order_by(_D.c.at.desc(), _D.c.id.desc()).limit(1)
        row = self.conn.execute(q).first()
        return None if row is None else _record(row)

    def active_for(self, lead_ids: Iterable[int]) -> dict[int, Disqualification]:
        """The open (not ended) disqualification of each of these leads that has one."""
        out: dict[int, Disqualification] = {}
        for chunk in chunks(sorted(set(lead_ids))):
            q = select(_D).where(_D.c.lead_id.in_(chunk), _D.c.ended_at.is_(None)).order_by(_D.c.at)
            for row in self.conn.execute(q):
                out[int(row.lead_id)] = _record(row)
        return out

    def any_active(self) -> bool:
        q = select(_D.c.id).where(_D.c.ended_at.is_(None)).limit(1)
        return self.conn.execute(q).first() is not None

    def end_active(self, lead_id: int, *, reason: str, at: datetime) -> int:
        result = self.conn.execute(
            update(_D)
            .where(_D.c.lead_id == lead_id, _D.c.ended_at.is_(None))
            .values(ended_at=at, ended_reason=reason, next_follow_up_at=None)
        )
        return int(result.rowcount)

    def due_follow_ups(self, now: datetime, *, limit: int) -> list[Disqualification]:
        q = (
            select(_D)
            .where(and_(_D.c.ended_at.is_(None), _D.c.next_follow_up_at <= now))
            .order_by(_D.c.next_follow_up_at, _D.c.id)
            .limit(limit)
        )
        return [_record(r) for r in self.conn.execute(q)]

    def advance_follow_up(self, record_id: int, *, done: int, next_at: datetime | None) -> None:
        self.conn.execute(
            update(_D).where(_D.c.id == record_id).values(follow_ups_done=done, next_follow_up_at=next_at)
        )

    def erase_notes(self, lead_id: int) -> None:
        self.conn.execute(update(_D).where(_D.c.lead_id == lead_id).values(note=None, fit_snapshot=None))

    # -- tombstones

    def add_tombstones(self, rows: Sequence[Tombstone]) -> None:
        """Keep tombstones; a digest already kept is replaced by the newer facts."""
        for row in rows:
            values = {
                "kind": row.kind,
                "digest": row.digest,
                "lead_id": row.lead_id,
                "stage": row.stage,
                "status": row.status,
                "reason": row.reason,
                "disqualified_at": row.disqualified_at,
                "disqualified_by": row.disqualified_by,
                "recheck_at": row.recheck_at,
                "forgotten_at": row.forgotten_at,
                "forgotten_by": row.forgotten_by,
            }
            tomb = t.identity_tombstones
            where = and_(tomb.c.kind == row.kind, tomb.c.digest == row.digest)
            if self.conn.execute(update(tomb).where(where).values(values)).rowcount == 0:
                self.conn.execute(insert(tomb).values(values))

    def tombstones(self, digests: Iterable[tuple[str, str]]) -> list[Tombstone]:
        """The tombstones of these (kind, digest) pairs."""
        wanted = sorted(set(digests))
        tomb = t.identity_tombstones
        out: list[Tombstone] = []
        for chunk in chunks([d for _k, d in wanted]):
            for r in self.conn.execute(select(tomb).where(tomb.c.digest.in_(chunk))):
                if (r.kind, r.digest) in set(wanted):
                    out.append(
                        Tombstone(
                            kind=r.kind,
                            digest=r.digest,
                            lead_id=r.lead_id,
                            stage=r.stage,
                            status=r.status,
                            reason=r.reason,
                            disqualified_at=r.disqualified_at,
                            disqualified_by=r.disqualified_by,
                            recheck_at=r.recheck_at,
                            forgotten_at=r.forgotten_at,
                            forgotten_by=r.forgotten_by,
                        )
                    )
        return out

    def any_tombstones(self) -> bool:
        return self.conn.execute(select(t.identity_tombstones.c.id).limit(1)).first() is not None

    # -- secrets

    def secret(self, name: str, *, at: datetime) -> str:
        """A random per-database secret, made the first time it is asked for."""
        q = select(t.secrets.c.value).where(t.secrets.c.name == name)
        value = self.conn.execute(q).scalar_one_or_none()
        if value is not None:
            return str(value)
        try:
            with self.conn.begin_nested():
                self.conn.execute(
                    insert(t.secrets).values(name=name, value=random_secrets.token_hex(32), created_at=at)
                )
        except IntegrityError:
            pass  # made by a concurrent writer: read theirs
        return str(self.conn.execute(q).scalar_one())


def _record(r: Any) -> Disqualification:
    s = r.strategy or {}
    strategy = Strategy(
        reason=s.get("reason", r.reason),
        remedies=frozenset(Remedy(x) for x in s.get("remedies", ["remove"])),
        follow_up_days=s.get("follow_up_days"),
        max_follow_ups=s.get("max_follow_ups"),
        alternative=s.get("alternative"),
    )
    return Disqualification(
        id=int(r.id),
        lead_id=int(r.lead_id),
        cycle=int(r.cycle),
        reason=r.reason,
        note=r.note,
        actor=r.actor,
        at=r.at,
        strategy=strategy,
        recheck_at=r.recheck_at,
        next_follow_up_at=r.next_follow_up_at,
        follow_ups_done=int(r.follow_ups_done),
        fit_snapshot=r.fit_snapshot,
        ended_at=r.ended_at,
        ended_reason=r.ended_reason,
    )
