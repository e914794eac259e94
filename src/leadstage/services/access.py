"""API tokens and capture forms (issue 7 section 2 and 4).

Tokens are random (256 bits), shown once, and stored only as their SHA-256 digest (a token is already a
high-entropy secret, so a fast hash is the right tool: a slow password hash would cost every request).
Each token acts for one user with that user's role, limited to ``read`` or ``write``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from leadstage.domain.errors import NotFound, PermissionDenied, Unauthenticated, ValidationError
from leadstage.domain.signing import Keyring, Opened
from leadstage.domain.stages import Actor, Role
from leadstage.services import audit
from leadstage.services.ports import CaptureForm, TokenRecord, UnitOfWork

TOKEN_PREFIX = "lst_"  # noqa: S105  (a marker that tells tokens apart, not a secret)
SCOPES = ("read", "write")
FORM_KEY = re.compile(r"[A-Za-z0-9_-]{6,64}")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    uow: UnitOfWork, username: str, *, scope: str, actor: Actor, at: datetime, name: str | None = None
) -> tuple[TokenRecord, str]:
    """A new token for a user; returns its record and the token itself (shown once, never stored)."""
    if scope not in SCOPES:
        raise ValidationError(f"--scope must be read or write, got {scope!r}", field="scope")
    user = uow.users.get_by_username(username)
    if user is None:
        raise NotFound(f"no user {username!r} (see `leadstage users list`)")
    if actor.role is not Role.ADMIN and actor.user_id != user.id:
        raise PermissionDenied("only an administrator creates tokens for someone else")
    if not user.active:
        raise ValidationError(f"user {username!r} is deactivated", field="user")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = uow.access.add_token(
        user_id=user.id,
        name=name,
        digest=token_digest(token),
        prefix=token[: len(TOKEN_PREFIX) + 6],
        scope=scope,
        by=actor.name,
        at=at,
    )
    record = uow.access.get_token(token_id)
    assert record is not None
    audit.record(uow, actor, "token.create", at=at, target=user.username, scope=scope, token_id=token_id)
    return record, token


def bearer_digest(token: str) -> str:
    """The digest a bearer token is stored under; ``Unauthenticated`` for something that is no token."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise Unauthenticated("invalid token")
    return token_digest(token)


def token_holder(uow: UnitOfWork, digest: str) -> tuple[Actor, TokenRecord]:
    """The actor the token with this digest acts as, and its record; ``Unauthenticated`` when it is
    unknown, revoked, or its user is deactivated."""
    record = uow.access.token_by_digest(digest)
    if record is None or record.revoked_at is not None or not record.user_active:
        raise Unauthenticated("invalid or revoked token")
    return Actor(
        name=record.username, role=Role(record.role), user_id=record.user_id, team=record.team
    ), record


def authenticate_token(uow: UnitOfWork, token: str) -> tuple[Actor, str, int]:
    """The actor a bearer token acts as, its scope and its id; ``Unauthenticated`` when it is not valid."""
    actor, record = token_holder(uow, bearer_digest(token))
    return actor, record.scope, record.id


def revoke_token(uow: UnitOfWork, token_id: int, *, actor: Actor, at: datetime) -> TokenRecord:
    record = uow.access.get_token(token_id)
    if record is None:
        raise NotFound(f"no token {token_id}")
    if actor.role is not Role.ADMIN and actor.user_id != record.user_id:
        raise PermissionDenied("only an administrator revokes someone else's token")
    uow.access.revoke_token(token_id, at=at)
    audit.record(uow, actor, "token.revoke", at=at, target=record.username, token_id=token_id)
    revoked = uow.access.get_token(token_id)
    assert revoked is not None
    return revoked


def token_document(record: TokenRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "user": record.username,
        "name": record.name,
        "prefix": record.prefix,
        "scope": record.scope,
        "created_at": record.created_at.isoformat(),
        "created_by": record.created_by,
        "last_used_at": record.last_used_at.isoformat() if record.last_used_at else None,
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
    }


def create_form(
    uow: UnitOfWork,
    name: str,
    *,
    actor: Actor,
    at: datetime,
    source: str | None = None,
    redirect_url: str | None = None,
) -> CaptureForm:
    """A public capture form: its key goes in the page's form action (``/api/v1/capture/KEY``)."""
    if actor.role not in (Role.ADMIN, Role.MARKETING):
        raise PermissionDenied(f"role {actor.role.value} may not create capture forms")
    if not name.strip():
        raise ValidationError("the form needs a name", field="name")
    if redirect_url is not None and not re.match(r"^(https?://|/)[^\s]*$", redirect_url):
        raise ValidationError(
            f"--redirect must be an http(s) URL or a path, got {redirect_url!r}", field="redirect_url"
        )
    form = CaptureForm(
        key=secrets.token_urlsafe(12),
        name=name.strip(),
        source=(source or "").strip() or "form",
        redirect_url=redirect_url,
        created_at=at,
    )
    form_id = uow.access.add_form(form)
    stored = uow.access.form_by_key(form.key)
    assert stored is not None
    assert stored.id == form_id
    return stored


# ---- web sessions ---------------------------------------------------------------------------------------

SESSION_COOKIE = "ls_session"
SESSION = "session"  # what each signature is for: a signature for one never verifies for another
CSRF = "csrf"
LOGIN_CSRF = "login-csrf"


@dataclass(frozen=True)
class SessionCheck:
    """A verified session: who, the CSRF token its changes carry, and a re-signed cookie when the one
    presented was signed with a retired key (the caller sends it back; ADR 15)."""

    actor: Actor
    csrf: str
    renewed_cookie: str | None


def login(
    uow: UnitOfWork,
    username: str,
    password: str,
    *,
    keys: Keyring,
    verify: Callable[[str, str], bool],
    dummy_hash: str,
    at: datetime,
    hours: float,
    client: str | None,
) -> tuple[str, str, Actor]:
    """A new session for the right user name and password: (signed cookie value, CSRF token, actor).

    The same ``Unauthenticated`` for an unknown user, a wrong password or a deactivated user, after the
    same password check (against a dummy hash when there is no user), so the answer tells nothing. The
    database keeps only the SHA-256 of the session id; the cookie carries the id signed with the current
    key, and the CSRF token is a signature of the id (so neither is stored).
    """
    user = uow.users.get_by_username(username.strip())
    stored = user.password_hash if user is not None and user.password_hash else dummy_hash
    ok = verify(stored, password)
    if user is None or not user.password_hash or not ok or not user.active:
        raise Unauthenticated("wrong user name or password")
    session_id = secrets.token_urlsafe(32)
    uow.access.add_session(
        digest=token_digest(session_id),
        user_id=user.id,
        at=at,
        expires_at=at + timedelta(hours=hours),
        client=client,
    )
    audit.record(uow, user.username, "login", at=at)
    actor = Actor(name=user.username, role=Role(user.role), user_id=user.id, team=user.team)
    return keys.sign(SESSION, session_id), keys.tag(CSRF, session_id), actor


def open_session_cookie(keys: Keyring, cookie: str, *, now: datetime) -> Opened:
    """The session id of a cookie whose signature is right; ``Unauthenticated`` before any lookup if not."""
    opened = keys.open(SESSION, cookie, now=now) if cookie and len(cookie) < 200 else None
    if opened is None:
        raise Unauthenticated("not logged in (or the session was ended)")
    return opened


def session_actor(uow: UnitOfWork, cookie: str, *, keys: Keyring, now: datetime) -> SessionCheck:
    """The actor of a session cookie; ``Unauthenticated`` when it is forged, unknown or expired."""
    opened = open_session_cookie(keys, cookie, now=now)
    found = uow.access.session(token_digest(opened.value))
    if found is None or not found.user_active:
        raise Unauthenticated("not logged in (or the session was ended)")
    if found.expires_at <= now:
        raise Unauthenticated("the session has expired: log in again")
    actor = Actor(name=found.username, role=Role(found.role), user_id=found.user_id, team=found.team)
    renewed = None if opened.current else keys.sign(SESSION, opened.value)
    return SessionCheck(actor=actor, csrf=keys.tag(CSRF, opened.value), renewed_cookie=renewed)


def csrf_ok(keys: Keyring, cookie: str, token: str, *, now: datetime) -> bool:
    """Whether ``token`` is the CSRF token of the session in ``cookie`` (signed with any accepted key)."""
    opened = keys.open(SESSION, cookie, now=now) if cookie and len(cookie) < 200 else None
    return opened is not None and bool(token) and keys.check(CSRF, opened.value, token, now=now)


def logout(uow: UnitOfWork, cookie: str, *, keys: Keyring, now: datetime) -> None:
    opened = open_session_cookie(keys, cookie, now=now)
    uow.access.end_session(token_digest(opened.value))
