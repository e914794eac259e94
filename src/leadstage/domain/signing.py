"""Signed values for the web: HMAC-SHA256 under a keyring that can be rotated (ADR 15).

A keyring holds the current key, which signs, and retired keys, which are still accepted when verifying
until their ``accept_until`` moment: rotating the key therefore logs nobody out; sessions signed with a
retired key are signed again with the current one on their next request. A value signed for one purpose
(``session``, ``csrf``, ``login-csrf``) never verifies for another.

Two shapes:

* ``sign(purpose, value)`` gives ``VALUE.KID.MAC`` (the value travels with its signature: cookies);
* ``tag(purpose, value)`` gives ``KID.MAC`` only (a detached signature: a CSRF token derived from the
  session, which must not reveal the session itself to page scripts).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

KEY_ID = re.compile(r"^k[0-9]{1,9}$")
MIN_SECRET_BYTES = 32


def _mac(secret: bytes, purpose: str, value: str) -> str:
    digest = hmac.new(secret, f"{purpose}\x00{value}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    id: str  # k1, k2, ...: short, never a secret
    secret: bytes
    created_at: datetime
    retired_at: datetime | None = None
    accept_until: datetime | None = None  # a retired key still verifies until then

    def usable(self, now: datetime) -> bool:
        """Whether a value signed with this key is accepted at ``now``."""
        return self.retired_at is None or (self.accept_until is not None and now < self.accept_until)


@dataclass(frozen=True)
class Opened:
    """A verified value and whether it was signed with the current key (else: sign it again)."""

    value: str
    key_id: str
    current: bool


@dataclass(frozen=True)
class Keyring:
    keys: tuple[SigningKey, ...]  # the current key first, then retired ones, newest first

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("a keyring needs at least one key")
        if self.keys[0].retired_at is not None:
            raise ValueError(f"the first key ({self.keys[0].id}) must be the current one, not a retired one")
        if any(k.retired_at is None for k in self.keys[1:]):
            raise ValueError("only the first key may be current; the others must be retired")
        ids = [k.id for k in self.keys]
        if len(set(ids)) != len(ids):
            raise ValueError(f"key ids repeat: {', '.join(ids)}")
        for k in self.keys:
            if not KEY_ID.match(k.id):
                raise ValueError(f"key id {k.id!r} is not k<number>")
            if len(k.secret) < MIN_SECRET_BYTES:
                raise ValueError(f"key {k.id} is shorter than {MIN_SECRET_BYTES} bytes")

    @property
    def current(self) -> SigningKey:
        return self.keys[0]

    def _key(self, key_id: str, now: datetime) -> SigningKey | None:
        for k in self.keys:
            if hmac.compare_digest(k.id, key_id):
                return k if k.usable(now) else None
        return None

    def sign(self, purpose: str, value: str) -> str:
        """``VALUE.KID.MAC`` with the current key; ``value`` must not contain a dot."""
        if "." in value:
            raise ValueError("a signed value must not contain '.'")
        return f"{value}.{self.tag(purpose, value)}"

    def tag(self, purpose: str, value: str) -> str:
        """A detached signature of ``value``: ``KID.MAC`` with the current key."""
        k = self.current
        return f"{k.id}.{_mac(k.secret, purpose, value)}"

    def open(self, purpose: str, token: str, *, now: datetime) -> Opened | None:
        """The value of ``VALUE.KID.MAC`` when the signature is right and its key is still accepted."""
        value, dot, tagged = token.partition(".")
        if not dot or not value or not self.check(purpose, value, tagged, now=now):
            return None
        key_id = tagged.partition(".")[0]
        return Opened(value=value, key_id=key_id, current=key_id == self.current.id)

    def check(self, purpose: str, value: str, tag: str, *, now: datetime) -> bool:
        """Whether ``tag`` (``KID.MAC``) signs ``value`` for ``purpose`` with a key accepted at ``now``."""
        key_id, dot, mac = tag.partition(".")
        if not dot or len(tag) > 80:
            return False
        key = self._key(key_id, now)
        return key is not None and hmac.compare_digest(mac, _mac(key.secret, purpose, value))

    def rotated(self, secret: bytes, *, at: datetime, grace: timedelta) -> Keyring:
        """A new current key; the old one is accepted for ``grace`` more; keys past their time are dropped."""
        number = max(int(k.id[1:]) for k in self.keys) + 1
        old = replace(self.current, retired_at=at, accept_until=at + grace)
        kept = [k for k in (old, *self.keys[1:]) if k.usable(at)]
        return Keyring((SigningKey(id=f"k{number}", secret=secret, created_at=at), *kept))

    def describe(self, now: datetime) -> list[dict[str, str | bool | None]]:
        """The keys without their secrets: id, created, retired, accepted until, still accepted now."""
        return [
            {
                "id": k.id,
                "current": k.retired_at is None,
                "created_at": k.created_at.isoformat(),
                "retired_at": k.retired_at.isoformat() if k.retired_at else None,
                "accept_until": k.accept_until.isoformat() if k.accept_until else None,
                "accepted_now": k.usable(now),
            }
            for k in self.keys
        ]
