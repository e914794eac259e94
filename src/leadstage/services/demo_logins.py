"""Logins for the demo company: its team gets a published password, and a demo administrator exists.

``make run`` prints these so that a newcomer can log into the web workspace as each role. Only users of
the demo team that have no password yet get one (a password someone set is never replaced), and only
when the demo team exists in this database.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from leadstage.domain.stages import Role
from leadstage.services import audit
from leadstage.services.demo import DEMO_TEAM
from leadstage.services.ports import UnitOfWork
from leadstage.services.users import add_user

#: Published with the demo: every demo login uses it. Not for real users.
DEMO_PASSWORD = "leadstage-demo"  # noqa: S105  (a documented demo password, not a secret)
DEMO_ADMIN = "ada.admin"


def ensure_demo_logins(
    uow: UnitOfWork,
    *,
    hash_password: Callable[[str], str],
    verify: Callable[[str, str], bool],
    at: datetime,
) -> list[dict[str, str]]:
    """Give the demo team the demo password where they have none and add the demo administrator; returns
    the demo logins that work with the demo password (user, role, team, password), administrator first.
    Nothing happens when the demo team is not in this database. The caller commits."""
    if uow.users.get_by_username(DEMO_TEAM[0].username) is None:
        return []
    if uow.users.get_by_username(DEMO_ADMIN) is None:
        add_user(
            uow,
            username=DEMO_ADMIN,
            role=Role.ADMIN.value,
            team=None,
            password_hash=hash_password(DEMO_PASSWORD),
            at=at,
        )
    logins: list[dict[str, str]] = []
    for username in (DEMO_ADMIN, *(m.username for m in DEMO_TEAM)):
        user = uow.users.get_by_username(username)
        if user is None or not user.active:
            continue
        if user.password_hash is None:
            uow.users.set_password_hash(user.id, hash_password(DEMO_PASSWORD))
            audit.record(uow, "admin", "user.password", at=at, target=user.username, why="demo login")
        elif not verify(user.password_hash, DEMO_PASSWORD):
            continue  # someone chose another password: it is theirs, not the demo's
        logins.append(
            {"user": user.username, "role": user.role, "team": user.team or "", "password": DEMO_PASSWORD}
        )
    return logins
