"""Rotating the session signing key (``leadstage secrets rotate``, ADR 15).

A rotation makes a new current key and keeps the previous one accepted for a grace period (by default as
long as a session lasts), so nobody is logged out: each session's cookie is signed again with the new key
on its next request. A grace of zero refuses the old key at once (a key that leaked): everyone logs in again.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Protocol

from leadstage.domain.errors import PermissionDenied, ValidationError
from leadstage.domain.signing import Keyring
from leadstage.domain.stages import Actor, Role
from leadstage.services import audit
from leadstage.services.ports import UnitOfWork

MAX_GRACE = timedelta(days=30)


class KeyStore(Protocol):
    """Where the keys are kept (a file outside the database)."""

    def load(self) -> Keyring: ...

    def save(self, keyring: Keyring) -> None: ...


def rotate(uow: UnitOfWork, store: KeyStore, *, actor: Actor, at: datetime, grace: timedelta) -> Keyring:
    """A new signing key; the previous one verifies for ``grace`` more. Audited; the caller commits."""
    if actor.role is not Role.ADMIN:
        raise PermissionDenied("only an administrator rotates the session signing key")
    if grace < timedelta(0) or grace > MAX_GRACE:
        raise ValidationError(
            f"--grace-hours must be between 0 and {int(MAX_GRACE.total_seconds() // 3600)}, "
            f"got {grace.total_seconds() / 3600:g}",
            field="grace_hours",
        )
    keyring = store.load().rotated(secrets.token_bytes(32), at=at, grace=grace)
    audit.record(
        uow,
        actor,
        "secrets.rotate",
        at=at,
        target="session signing key",
        key=keyring.current.id,
        retired=[k.id for k in keyring.keys[1:]],
        grace_hours=grace.total_seconds() / 3600,
    )
    store.save(keyring)
    return keyring
