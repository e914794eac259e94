"""Users and roles."""

from __future__ import annotations

import re
from datetime import datetime

from leadstage.domain.errors import AlreadyExists, PermissionDenied, ValidationError
from leadstage.domain.stages import Actor, Role
from leadstage.services import audit
from leadstage.services.ports import UnitOfWork, UserRecord

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,119}")
ASSIGNABLE_ROLES = tuple(r.value for r in Role if r is not Role.SYSTEM)


def add_user(
    uow: UnitOfWork,
    *,
    username: str,
    role: str,
    team: str | None,
    password_hash: str | None,
    at: datetime,
    email: str | None = None,
    actor: Actor | None = None,
) -> UserRecord:
    """Create a user with a role (and optionally a team); names are unique. Administrators only."""
    if actor is not None and actor.role is not Role.ADMIN:
        raise PermissionDenied(f"role {actor.role.value} may not add users")
    if not USERNAME.fullmatch(username) or username in ("admin", "system"):
        raise ValidationError(
            f"invalid user name {username!r}: letters, digits and . _ @ - (not 'admin' or "
            "'system', which are built in)",
            field="name",
        )
    if role not in ASSIGNABLE_ROLES:
        raise ValidationError(f"unknown role {role!r}; one of {', '.join(ASSIGNABLE_ROLES)}", field="role")
    if uow.users.get_by_username(username) is not None:
        raise AlreadyExists(f"user {username!r} already exists", field="name")
    if email is not None and not EMAIL.fullmatch(email.strip()):
        raise ValidationError(f"--email: not an e-mail address: {email!r}", field="email")
    user_id = uow.users.add(
        username=username,
        role=role,
        team=team,
        password_hash=password_hash,
        at=at,
        email=email.strip() if email else None,
    )
    user = uow.users.get(user_id)
    assert user is not None
    audit.record(uow, actor or "admin", "user.add", at=at, target=username, role=role, team=team)
    return user
