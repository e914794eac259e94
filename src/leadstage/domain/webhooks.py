"""Webhook events, signatures and retry timing (issue 7 sections 4 and 5).

Signatures: ``X-Leadstage-Signature: t=UNIX_SECONDS,v1=HEX`` where HEX is HMAC-SHA256 over
``f"{t}.{body}"`` with the shared secret; a receiver checks the HMAC and that ``t`` is within the
tolerance (5 minutes), which with a record of signatures already seen refuses replays.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from leadstage.domain.errors import Unauthenticated

EVENT_TYPES = (
    "lead.created",
    "lead.stage_changed",
    "lead.assigned",
    "lead.score_crossed",
    "sla.breached",
    "model.activated",
)
SIGNATURE_HEADER = "X-Leadstage-Signature"
TOLERANCE_SECONDS = 300
MAX_ATTEMPTS = 8
#: History actions that are not stage changes, and the event each one is.
HISTORY_EVENTS = {"create": "lead.created", "assign": "lead.assigned", "sla_breach": "sla.breached"}
#: History rows that say nothing to the outside (not events at all).
QUIET_ACTIONS = frozenset({"resurfaced", "forget", "merge"})


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str | None, body: bytes, *, now: float) -> str:
    """The signature's HMAC when the header is valid and fresh; ``Unauthenticated`` otherwise."""
    if not header:
        raise Unauthenticated(f"missing {SIGNATURE_HEADER} header")
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    stamp, mac = parts.get("t", ""), parts.get("v1", "")
    if not stamp.isascii() or not stamp.isdigit() or not mac:
        raise Unauthenticated(f"malformed {SIGNATURE_HEADER} header: expected t=SECONDS,v1=HEX")
    if abs(now - int(stamp)) > TOLERANCE_SECONDS:
        raise Unauthenticated("signature timestamp outside the 5-minute tolerance (clock skew or a replay)")
    expected = sign(secret, int(stamp), body).split("v1=", 1)[1]
    if not hmac.compare_digest(expected, mac):
        raise Unauthenticated("signature does not match the body")
    return mac


def backoff_seconds(attempts: int) -> int:
    """Wait before the next delivery attempt: 30 s, 1 min, 2 min, ... capped at 6 hours."""
    return int(min(30 * 2 ** max(attempts - 1, 0), 6 * 3600))


def history_event(action: str) -> str | None:
    """The event type of a lead history row (None: not published)."""
    if action in QUIET_ACTIONS:
        return None
    return HISTORY_EVENTS.get(action, "lead.stage_changed")


def event_document(key: str, event_type: str, occurred_at: str, data: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": key, "type": event_type, "occurred_at": occurred_at, "data": dict(data)}
