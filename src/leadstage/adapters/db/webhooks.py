"""Webhook subscriptions, the outbox, event cursors and inbound hooks in SQL; never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from leadstage.adapters.db import tables as t
from leadstage.adapters.db.repositories import insert_ignoring
from leadstage.services.ports import InboundHook, OutboxItem, Subscription

_S, _O = t.webhook_subscriptions, t.outbox


class SqlWebhookRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- subscriptions

    def add_subscription(self, *, url: str, secret: str, events: list[str], by: str, at: datetime) -> int:
        values = {
            "url": url,
            "secret": secret,
            "events": events,
            "active": True,
            "created_by": by,
            "created_at": at,
        }
        return int(self.conn.execute(insert(_S).values(values).returning(_S.c.id)).scalar_one())

    def subscriptions(self, *, active_only: bool = True) -> list[Subscription]:
        q = select(_S).order_by(_S.c.id)
        if active_only:
            q = q.where(_S.c.active.is_(True))
        return [
            Subscription(r.id, r.url, r.secret, list(r.events), bool(r.active), r.created_by, r.created_at)
            for r in self.conn.execute(q)
        ]

    def deactivate(self, subscription_id: int) -> bool:
        q = update(_S).where(_S.c.id == subscription_id, _S.c.active.is_(True)).values(active=False)
        return bool(self.conn.execute(q).rowcount)

    # -- cursors over the tables events come from

    def cursor(self, name: str) -> str | None:
        value = self.conn.execute(select(t.event_cursors.c.position).where(t.event_cursors.c.name == name))
        found = value.scalar_one_or_none()
        return None if found is None else str(found)

    def set_cursor(self, name: str, position: str) -> None:
        c = t.event_cursors
        if self.conn.execute(update(c).where(c.c.name == name).values(position=position)).rowcount == 0:
            self.conn.execute(insert(c).values(name=name, position=position))

    def history_since(self, after_id: int, limit: int) -> list[dict[str, Any]]:
        h = t.lead_history
        q = select(h).where(h.c.id > after_id).order_by(h.c.id).limit(limit)
        return [dict(r._mapping) for r in self.conn.execute(q)]

    def scores_since(self, after_id: int, limit: int) -> list[dict[str, Any]]:
        s = t.score_history
        q = select(s).where(s.c.id > after_id).order_by(s.c.id).limit(limit)
        return [dict(r._mapping) for r in self.conn.execute(q)]

    def activations_since(self, after: datetime | None) -> list[dict[str, Any]]:
        m = t.scoring_models
        q = select(m.c.id, m.c.name, m.c.version, m.c.activated_at, m.c.created_by).where(
            m.c.activated_at.is_not(None)
        )
        if after is not None:
            q = q.where(m.c.activated_at > after)
        return [dict(r._mapping) for r in self.conn.execute(q.order_by(m.c.activated_at))]

    def last_ids(self) -> tuple[int, int]:
        h = self.conn.execute(select(func.max(t.lead_history.c.id))).scalar_one()
        s = self.conn.execute(select(func.max(t.score_history.c.id))).scalar_one()
        return int(h or 0), int(s or 0)

    # -- the outbox

    def enqueue(self, items: Sequence[dict[str, Any]]) -> int:
        """Queue deliveries; one per (subscription, event) however often the same event is offered."""
        return insert_ignoring(self.conn, _O, items, ["subscription_id", "event_key"])

    def due(self, now: datetime, limit: int) -> list[OutboxItem]:
        q = (
            select(_O, _S.c.url, _S.c.secret)
            .select_from(_O.join(_S, _S.c.id == _O.c.subscription_id))
            .where(_O.c.status == "pending", _O.c.next_attempt_at <= now, _S.c.active.is_(True))
            .order_by(_O.c.next_attempt_at, _O.c.id)
            .limit(limit)
        )
        return [_item(r) for r in self.conn.execute(q)]

    def record_attempt(
        self,
        item_id: int,
        *,
        status: str,
        attempts: int,
        next_attempt_at: datetime,
        last_status: int | None,
        last_error: str | None,
        delivered_at: datetime | None,
    ) -> None:
        self.conn.execute(
            update(_O)
            .where(_O.c.id == item_id)
            .values(
                status=status,
                attempts=attempts,
                next_attempt_at=next_attempt_at,
                last_status=last_status,
                last_error=(last_error or "")[:500] or None,
                delivered_at=delivered_at,
            )
        )

    def retry_now(self, subscription_id: int, now: datetime) -> int:
        q = (
            update(_O)
            .where(_O.c.subscription_id == subscription_id, _O.c.status.in_(("pending", "failed")))
            .values(status="pending", next_attempt_at=now)
        )
        return int(self.conn.execute(q).rowcount)

    def log(self, subscription_id: int, limit: int = 100) -> list[OutboxItem]:
        q = (
            select(_O, _S.c.url, _S.c.secret)
            .select_from(_O.join(_S, _S.c.id == _O.c.subscription_id))
            .where(_O.c.subscription_id == subscription_id)
            .order_by(_O.c.id.desc())
            .limit(limit)
        )
        return [_item(r) for r in self.conn.execute(q)]

    # -- inbound hooks

    def add_inbound(self, *, name: str, secret: str, source: str, at: datetime) -> int:
        h = t.inbound_hooks
        values = {"name": name, "secret": secret, "source": source, "created_at": at}
        return int(self.conn.execute(insert(h).values(values).returning(h.c.id)).scalar_one())

    def inbound(self, name: str) -> InboundHook | None:
        h = t.inbound_hooks
        r = self.conn.execute(select(h).where(h.c.name == name)).first()
        return None if r is None else InboundHook(r.id, r.name, r.secret, r.source)

    def inbound_hooks(self) -> list[InboundHook]:
        h = t.inbound_hooks
        return [
            InboundHook(r.id, r.name, r.secret, r.source)
            for r in self.conn.execute(select(h).order_by(h.c.id))
        ]

    def remember_signature(self, hook_id: int, signature: str, at: datetime) -> bool:
        """False when this signature was seen before (a replay)."""
        row = {"hook_id": hook_id, "signature": signature, "received_at": at}
        return insert_ignoring(self.conn, t.inbound_events, [row], ["signature"]) == 1


class SqlMailRepository:
    """The e-mail outbox and what notifications are made from."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def max_ids(self) -> tuple[int, int]:
        h = self.conn.execute(select(func.max(t.lead_history.c.id))).scalar_one()
        k = self.conn.execute(select(func.max(t.tasks.c.id))).scalar_one()
        return int(h or 0), int(k or 0)

    def assignments_since(self, after_id: int, limit: int) -> list[dict[str, Any]]:
        """``assign`` history rows after the cursor, with the lead and its owner's address; and the last id read."""
        h, lead, user = t.lead_history, t.leads, t.users
        q = (
            select(
                h.c.id,
                h.c.lead_id,
                h.c.at,
                lead.c.first_name,
                lead.c.last_name,
                lead.c.company,
                lead.c.email,
                lead.c.priority,
                user.c.username,
                user.c.email.label("owner_email"),
            )
            .select_from(h.join(lead, lead.c.id == h.c.lead_id).outerjoin(user, user.c.id == lead.c.owner_id))
            .where(h.c.id > after_id, h.c.action == "assign")
            .order_by(h.c.id)
            .limit(limit)
        )
        return [dict(r._mapping) for r in self.conn.execute(q)]

    def last_history_id(self, after_id: int, limit: int) -> int:
        """How far a scan of ``limit`` history rows after the cursor reaches."""
        h = t.lead_history
        ids = select(h.c.id).where(h.c.id > after_id).order_by(h.c.id).limit(limit).subquery()
        found = self.conn.execute(select(func.max(ids.c.id))).scalar_one()
        return int(found or after_id)

    def tasks_since(self, after_id: int, kind: str, limit: int) -> list[dict[str, Any]]:
        k, user = t.tasks, t.users
        q = (
            select(
                k.c.id, k.c.lead_id, k.c.title, k.c.due_at, user.c.username, user.c.email.label("owner_email")
            )
            .select_from(k.outerjoin(user, user.c.id == k.c.owner_id))
            .where(k.c.id > after_id, k.c.kind == kind)
            .order_by(k.c.id)
            .limit(limit)
        )
        return [dict(r._mapping) for r in self.conn.execute(q)]

    def enqueue(self, items: Sequence[dict[str, Any]]) -> int:
        """Queue mails; one per event key however often the same event is offered."""
        return insert_ignoring(self.conn, t.mail_outbox, items, ["key"])

    def due(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        m = t.mail_outbox
        q = select(m).where(m.c.status == "pending", m.c.next_attempt_at <= now).order_by(m.c.id).limit(limit)
        return [dict(r._mapping) for r in self.conn.execute(q)]

    def record(self, mail_id: int, **values: Any) -> None:
        self.conn.execute(update(t.mail_outbox).where(t.mail_outbox.c.id == mail_id).values(**values))


def _item(r: Any) -> OutboxItem:
    return OutboxItem(
        id=int(r.id),
        subscription_id=int(r.subscription_id),
        url=r.url,
        secret=r.secret,
        event_key=r.event_key,
        event_type=r.event_type,
        payload=r.payload,
        status=r.status,
        attempts=int(r.attempts),
        next_attempt_at=r.next_attempt_at,
        last_status=r.last_status,
        last_error=r.last_error,
        created_at=r.created_at,
        delivered_at=r.delivered_at,
    )
