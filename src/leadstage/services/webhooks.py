"""Outbound webhooks from a durable outbox, and signed inbound hooks (issue 7 sections 4 and 5).

Events are read from what the product already keeps in the same transaction as every change: lead
history (created, stage changes, assignments, SLA breaches), score history (grade or level crossings)
and model activations. :func:`collect` turns the rows after a stored cursor into one outbox row per
subscribed endpoint and event (unique, so collecting twice queues nothing twice) and moves the cursor in
the same transaction: a restart loses nothing and repeats nothing. :func:`deliver` posts what is due,
signed, and retries failures with exponential backoff; ``tick`` (and the loop in ``serve``) runs both.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from leadstage.domain import webhooks as wh
from leadstage.domain.errors import NotFound, PermissionDenied, RuleViolation, ValidationError
from leadstage.domain.stages import Actor, Role
from leadstage.services import audit
from leadstage.services.ports import OutboxItem, Subscription, UnitOfWork, WebhookSender

BATCH = 5_000
URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$")


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else (str(value) if value is not None else None)


def add_subscription(
    uow: UnitOfWork, url: str, events: list[str], *, actor: Actor, at: datetime
) -> tuple[Subscription, str]:
    """Subscribe an endpoint to event types; returns it and its signing secret (shown once)."""
    if actor.role is not Role.ADMIN:
        raise PermissionDenied("only an administrator manages webhooks")
    if not URL.match(url) or len(url) > 2000:
        raise ValidationError(f"url must be an http(s) URL, got {url!r}", field="url")
    unknown = [e for e in events if e not in wh.EVENT_TYPES]
    if not events or unknown:
        raise ValidationError(
            f"events: {('unknown ' + ', '.join(unknown)) if unknown else 'at least one'}; "
            f"known: {', '.join(wh.EVENT_TYPES)}",
            field="events",
        )
    if not uow.webhooks.subscriptions():  # the first subscriber starts at now, not at the start of history
        _start_cursors(uow)
    secret = "whsec_" + secrets.token_urlsafe(24)
    new_id = uow.webhooks.add_subscription(
        url=url, secret=secret, events=sorted(set(events)), by=actor.name, at=at
    )
    found = next(s for s in uow.webhooks.subscriptions() if s.id == new_id)
    audit.record(uow, actor, "webhook.add", at=at, target=url, events=found.events)
    return found, secret


def remove_subscription(uow: UnitOfWork, subscription_id: int, *, actor: Actor, at: datetime) -> None:
    """Stop a subscription (its delivery log stays); administrators only, audited. The caller commits."""
    if actor.role is not Role.ADMIN:
        raise PermissionDenied("only an administrator manages webhooks")
    if not uow.webhooks.deactivate(subscription_id):
        raise NotFound(f"no active webhook {subscription_id}")
    audit.record(uow, actor, "webhook.remove", at=at, target=str(subscription_id))


def _start_cursors(uow: UnitOfWork) -> None:
    history, scores = uow.webhooks.last_ids()
    uow.webhooks.set_cursor("history", str(history))
    uow.webhooks.set_cursor("scores", str(scores))
    models = uow.webhooks.activations_since(None)
    uow.webhooks.set_cursor("models", (_iso(models[-1]["activated_at"]) or "") if models else "")


@dataclass
class WebhookReport:
    queued: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def collect(uow: UnitOfWork, *, now: datetime) -> int:
    """Queue the events since the cursors for every active subscription; returns how many were queued."""
    subs = uow.webhooks.subscriptions()
    if not subs:
        return 0
    queued = 0
    after = int(uow.webhooks.cursor("history") or 0)
    while True:
        rows = uow.webhooks.history_since(after, BATCH)
        events = []
        for r in rows:
            kind = wh.history_event(str(r["action"]))
            if kind is not None:
                data = {
                    "lead_id": r["lead_id"],
                    "action": r["action"],
                    "from_stage": r["from_stage"],
                    "from_status": r["from_status"],
                    "to_stage": r["to_stage"],
                    "to_status": r["to_status"],
                    "actor": r["actor"],
                    "reason": r["reason"],
                    "cycle": r["cycle"],
                }
                events.append(wh.event_document(f"history:{r['id']}", kind, _iso(r["at"]) or "", data))
        queued += _queue(uow, subs, events, now)
        if rows:
            after = int(rows[-1]["id"])
            uow.webhooks.set_cursor("history", str(after))
        if len(rows) < BATCH:
            break
    after = int(uow.webhooks.cursor("scores") or 0)
    while True:
        rows = uow.webhooks.scores_since(after, BATCH)
        events = [
            wh.event_document(
                f"score:{r['id']}",
                "lead.score_crossed",
                _iso(r["at"]) or "",
                {
                    k: r[k]
                    for k in (
                        "lead_id",
                        "fit_grade",
                        "engagement_level",
                        "priority",
                        "fit_score",
                        "engagement_score",
                    )
                },
            )
            for r in rows
        ]
        queued += _queue(uow, subs, events, now)
        if rows:
            after = int(rows[-1]["id"])
            uow.webhooks.set_cursor("scores", str(after))
        if len(rows) < BATCH:
            break
    last = uow.webhooks.cursor("models") or ""
    activations = uow.webhooks.activations_since(datetime.fromisoformat(last) if last else None)
    events = [
        wh.event_document(
            f"model:{m['id']}:{_iso(m['activated_at'])}",
            "model.activated",
            _iso(m["activated_at"]) or "",
            {"model_id": m["id"], "name": m["name"], "version": m["version"]},
        )
        for m in activations
    ]
    queued += _queue(uow, subs, events, now)
    if activations:
        uow.webhooks.set_cursor("models", _iso(activations[-1]["activated_at"]) or "")
    return queued


def _queue(uow: UnitOfWork, subs: list[Subscription], events: list[dict[str, Any]], now: datetime) -> int:
    items = [
        {
            "subscription_id": sub.id,
            "event_key": event["id"],
            "event_type": event["type"],
            "payload": event,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for event in events
        for sub in subs
        if event["type"] in sub.events
    ]
    return uow.webhooks.enqueue(items) if items else 0


def deliver(uow: UnitOfWork, sender: WebhookSender, *, now: datetime, limit: int = 500) -> WebhookReport:
    """Post every delivery that is due, signed; a failure is retried later with exponential backoff."""
    report = WebhookReport()
    for item in uow.webhooks.due(now, limit):
        body = json.dumps(item.payload, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            wh.SIGNATURE_HEADER: wh.sign(item.secret, int(now.timestamp()), body),
            "X-Leadstage-Event": item.event_type,
            "X-Leadstage-Delivery": str(item.id),
        }
        status, error = sender.send(item.url, body, headers)
        attempts = item.attempts + 1
        if status is not None and 200 <= status < 300:
            uow.webhooks.record_attempt(
                item.id,
                status="delivered",
                attempts=attempts,
                next_attempt_at=now,
                last_status=status,
                last_error=None,
                delivered_at=now,
            )
            report.delivered += 1
            continue
        gave_up = attempts >= wh.MAX_ATTEMPTS
        uow.webhooks.record_attempt(
            item.id,
            status="failed" if gave_up else "pending",
            attempts=attempts,
            next_attempt_at=now + timedelta(seconds=wh.backoff_seconds(attempts)),
            last_status=status,
            last_error=error or f"HTTP {status}",
            delivered_at=None,
        )
        if gave_up:
            report.failed += 1
        else:
            report.retrying += 1
    return report


def run(uow: UnitOfWork, sender: WebhookSender, now: datetime) -> Mapping[str, Any]:
    """The tick's webhook step: collect new events, then deliver what is due."""
    queued = collect(uow, now=now)
    report = deliver(uow, sender, now=now)
    report.queued = queued
    return report.as_dict()


def outbox_json(item: OutboxItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "event": item.event_key,
        "type": item.event_type,
        "status": item.status,
        "attempts": item.attempts,
        "last_status": item.last_status,
        "last_error": item.last_error,
        "next_attempt_at": item.next_attempt_at.isoformat(),
        "delivered_at": _iso(item.delivered_at),
    }


# ---- inbound -----------------------------------------------------------------------------------------


def add_inbound(uow: UnitOfWork, name: str, *, source: str, actor: Actor, at: datetime) -> str:
    """An inbound hook for an email, ad or chat tool: returns its signing secret (shown once)."""
    if actor.role is not Role.ADMIN:
        raise PermissionDenied("only an administrator manages webhooks")
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,59}", name):
        raise ValidationError(f"hook names are lower-case words (a-z, 0-9, _ -), got {name!r}", field="name")
    if uow.webhooks.inbound(name) is not None:
        raise ValidationError(f"an inbound hook named {name!r} exists", field="name")
    secret = "whsec_" + secrets.token_urlsafe(24)
    uow.webhooks.add_inbound(name=name, secret=secret, source=source, at=at)
    audit.record(uow, actor, "hook.add", at=at, target=name, source=source)
    return secret


def accept_inbound(uow: UnitOfWork, name: str, signature: str | None, body: bytes, *, now: datetime) -> str:
    """Check an inbound delivery's signature and freshness, and that it was not seen before; returns the
    hook's source. ``Unauthenticated`` for a bad or stale signature, ``RuleViolation`` for a replay."""
    hook = uow.webhooks.inbound(name)
    if hook is None:
        raise NotFound(f"no inbound hook {name!r}")
    mac = wh.verify(hook.secret, signature, body, now=now.timestamp())
    if not uow.webhooks.remember_signature(hook.id, mac, now):
        raise RuleViolation("this delivery was received before (a replay): refused")
    return hook.source
