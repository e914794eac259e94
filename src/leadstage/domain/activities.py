"""Activities: what a lead did or what was done with them, with a time (DOMAIN.md R3)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadstage.domain.leads import PropertyValue
from leadstage.domain.times import from_utc_text

BUILTIN_ACTIVITY_TYPES: tuple[str, ...] = (
    "page_view",
    "form_submit",
    "email_open",
    "email_click",
    "email_bounce",
    "unsubscribe",
    "ad_click",
    "social_engagement",
    "webinar_registered",
    "webinar_attended",
    "content_download",
    "free_trial",
    "chat",
    "call",
    "email_sent",
    "meeting",
    "demo",
    "event_attended",
    "referral_made",
    "review",
    "case_study",
    "nps_response",
)

#: Activities done by sales with the lead (they fulfil a first-response deadline).
SALES_ACTIVITY_TYPES = frozenset({"call", "email_sent", "meeting"})

SOURCES: tuple[str, ...] = (
    "organic_search",
    "paid_search",
    "social",
    "paid_social",
    "email",
    "referral",
    "event",
    "direct",
    "partner",
    "call_in",
    "chat",
)


@dataclass(frozen=True)
class Activity:
    lead_id: int
    type: str
    occurred_at: datetime
    idempotency_key: str
    source: str | None = None
    campaign: str | None = None
    content: str | None = None
    properties: Mapping[str, PropertyValue] = field(default_factory=dict)
    id: int | None = None


def normalize_activity_type(raw: str) -> str:
    return raw.strip().lower().replace("-", "_").replace(" ", "_")


def derived_idempotency_key(
    lead_ref: str,
    type_: str,
    occurred_at: str,
    source: str | None,
    campaign: str | None,
    content: str | None,
    properties_json: str,
) -> str:
    """The key of an activity that came without one: two rows equal in every field are one event."""
    digest = hashlib.sha1(usedforsecurity=False)
    for part in (
        lead_ref,
        type_,
        occurred_at,
        source or "",
        campaign or "",
        content or "",
        properties_json,
    ):
        digest.update(part.encode())
        digest.update(b"\x1f")
    return "auto:" + digest.hexdigest()


def decoded_properties(stored: str | Mapping[str, Any] | None) -> Mapping[str, Any]:
    """An activity's properties as stored (JSON text, a decoded mapping, or nothing) as a mapping: a
    missing value and a JSON ``null`` (how SQLAlchemy writes ``None`` into a JSON column) are none."""
    value = json.loads(stored) if isinstance(stored, str) else stored
    return value if isinstance(value, Mapping) else {}


def scoped_idempotency_key(lead_ref: str, key: str) -> str:
    """A caller's key, scoped to the lead it was sent for: the same key for two leads is two events."""
    scoped = f"{lead_ref}|{key}"
    if len(scoped) <= 200:
        return scoped
    return "k:" + hashlib.sha1(scoped.encode(), usedforsecurity=False).hexdigest()


def earliest_by_lead(rows: Iterable[Sequence[Any]]) -> dict[int, datetime]:
    """Each lead's earliest activity among rows of (lead id, type, canonical UTC text, ...): what decides
    whose attribution credits new activities change."""
    earliest: dict[int, str] = {}
    for row in rows:  # canonical UTC text sorts like the time
        lead_id, at = row[0], row[2]
        if lead_id not in earliest or at < earliest[lead_id]:
            earliest[lead_id] = at
    return {k: from_utc_text(v) for k, v in earliest.items()}
