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
from datetime import datetime, timedelta

from leadstage.domain.errors import NotFound, PermissionDenied, Unauthenticated, ValidationError
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


def authenticate_token(uow: UnitOfWork, token: str) -> tuple[Actor, str, int]:
    """The actor a bearer token acts as, its scope and its id; ``Unauthenticated`` when it is not valid."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise Unauthenticated("invalid token")
    record = uow.access.token_by_digest(token_digest(token))
    if record is None or record.revoked_at is not None or not record.user_active:
        raise Unauthenticated("invalid or revoked token")
    actor = Actor(name=record.username, role=Role(record.role), user_id=record.user_id, team=record.team)
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


def login(
    uow: UnitOfWork,
    username: str,
    password: str,
    *,
    verify: Callable[[str, str], bool],
    dummy_hash: str,
    at: datetime,
    hours: float,
    client: str | None,
) -> tuple[str, str, Actor]:
    """A new session for the right user name and password: (cookie value, CSRF token, actor).

    The same ``Unauthenticated`` for an unknown user, a wrong password or a deactivated user, after the
    same password check (against a dummy hash when there is no user), so the answer tells nothing.
    """
    user = uow.users.get_by_username(username.strip())
    stored = user.password_hash if user is not None and user.password_hash else dummy_hash
    ok = verify(stored, password)
    if user is None or not user.password_hash or not ok or not user.active:
        raise Unauthenticated("wrong user name or password")
    cookie = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    uow.access.add_session(
        digest=token_digest(cookie),
        user_id=user.id,
        csrf=csrf,
        at=at,
        expires_at=at + timedelta(hours=hours),
        client=client,
    )
    audit.record(uow, user.username, "login", at=at)
    return cookie, csrf, Actor(name=user.username, role=Role(user.role), user_id=user.id, team=user.team)


def session_actor(uow: UnitOfWork, cookie: str, *, now: datetime) -> tuple[Actor, str]:
    """The actor of a session cookie and its CSRF token; ``Unauthenticated`` when it is unknown or expired."""
    found = uow.access.session(token_digest(cookie)) if cookie and len(cookie) < 200 else None
    if found is None or not found.user_active:
        raise Unauthenticated("not logged in (or the session was ended)")
    if found.expires_at <= now:
        raise Unauthenticated("the session has expired: log in again")
    return Actor(
        name=found.username, role=Role(found.role), user_id=found.user_id, team=found.team
    ), found.csrf


def logout(uow: UnitOfWork, cookie: str) -> None:
    uow.access.end_session(token_digest(cookie))
