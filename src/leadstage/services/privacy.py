"""Forgetting a person (DOMAIN.md R18 point 4, issue 4 section 8).

``forget_lead`` erases personal data from the lead and everything kept about it; history rows, scores
and the disqualification record stay, without personal fields. What is kept to recognise the person is
a keyed hash (HMAC-SHA256 with a per-database secret) of each identifier: as tombstone rows with the
lead's status, reason and dates, and as hashed identifiers on the anonymous lead, so that a returning
person (a form, an import row) finds it through the usual identity match (:func:`forgotten_keys`):
recognised at once, still disqualified if they were, without their old personal data ever coming back.
"""

from __future__ import annotations

from datetime import datetime

from leadstage.domain import identity as ident_rules
from leadstage.domain.errors import PermissionDenied
from leadstage.domain.leads import ExternalId, Identity
from leadstage.domain.stages import Actor, HistoryEntry, HistoryKind, Role
from leadstage.services import audit
from leadstage.services.leads import resolve_lead
from leadstage.services.ports import Tombstone, UnitOfWork

SECRET_NAME = "identity-tombstones"  # noqa: S105  (the name of the secret, not a secret)
#: External-id systems of hashed identifiers (never shown to match anything else).
FORGOTTEN_SYSTEMS = {"email": "forgotten-email", "phone": "forgotten-phone", "external": "forgotten-id"}
FORGET = HistoryKind.FORGET.value
MAY_FORGET = frozenset({Role.ADMIN, Role.MARKETING, Role.SALES_MANAGER})


def forgotten_keys(identity: Identity, external_ids: list[ExternalId], *, salt: str) -> list[ExternalId]:
    """The hashed identifiers a forgotten person with this identity would be kept under."""
    keys = []
    if identity.email_normalized:
        keys.append(_key("email", identity.email_normalized, salt))
    if identity.phone_e164:
        keys.append(_key("phone", identity.phone_e164, salt))
    keys.extend(
        _key("external", f"{e.system}:{e.value}", salt)
        for e in external_ids
        if e.system not in FORGOTTEN_SYSTEMS.values()
    )
    return keys


def _key(kind: str, value: str, salt: str) -> ExternalId:
    return ExternalId(FORGOTTEN_SYSTEMS[kind], ident_rules.tombstone_hash(f"{kind}:{value}", salt=salt))


def tombstone_salt(uow: UnitOfWork, *, at: datetime) -> str:
    return uow.disqualifications.secret(SECRET_NAME, at=at)


def forget_lead(uow: UnitOfWork, ref: str | int, *, actor: Actor, at: datetime) -> int:
    """Erase the person's data from a lead and keep a hashed tombstone; returns the lead id (caller commits)."""
    if actor.role not in MAY_FORGET:
        raise PermissionDenied(f"role {actor.role.value} may not erase personal data")
    lead = resolve_lead(uow, ref)
    assert lead.id is not None
    salt = tombstone_salt(uow, at=at)
    real_ids = [e for e in lead.external_ids if e.system not in FORGOTTEN_SYSTEMS.values()]
    aliases = [ExternalId("merged-email", e.value) for e in real_ids if e.system == ident_rules.MERGED_EMAIL]
    keys = forgotten_keys(
        lead.identity, [e for e in real_ids if e.system != ident_rules.MERGED_EMAIL], salt=salt
    )
    for alias in aliases:  # a merged person's address finds this lead too
        keys.append(_key("email", alias.value, salt))
    kept = [e for e in lead.external_ids if e.system in FORGOTTEN_SYSTEMS.values()]
    for key in keys:
        holders = uow.leads.find_by_external_id(key.value, key.system)
        if key not in kept and not holders:
            kept.append(key)
    record = uow.disqualifications.latest(lead.id)
    uow.disqualifications.add_tombstones(
        [
            Tombstone(
                kind=key.system.removeprefix("forgotten-"),
                digest=key.value,
                lead_id=lead.id,
                stage=lead.stage.value,
                status=lead.status.value,
                reason=record.reason if record else None,
                disqualified_at=record.at if record else None,
                disqualified_by=record.actor if record else None,
                recheck_at=record.recheck_at if record else None,
                forgotten_at=at,
                forgotten_by=actor.name,
            )
            for key in keys
        ]
    )
    uow.leads.erase_personal_data(lead.id, keep_external_ids=kept)
    uow.disqualifications.erase_notes(lead.id)
    uow.leads.add_history(
        lead.id,
        HistoryEntry(
            action=FORGET,
            from_stage=lead.stage,
            from_status=lead.status,
            to_stage=lead.stage,
            to_status=lead.status,
            actor=actor.name,
            at=at,
            cycle=lead.cycle,
            note="personal data erased on request; hashed identifiers kept to recognise the person",
        ),
    )
    audit.record(uow, actor, "lead.forget", at=at, target=str(lead.id))
    return lead.id
