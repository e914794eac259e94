"""The demo company's web logins: its team and a demo administrator get the published password, printed by
`leadstage demo` (and so by `make run`); a password someone chose is never replaced."""

from __future__ import annotations

from leadstage.adapters.security import hash_password, verify_password
from leadstage.bootstrap import Container
from leadstage.services.demo import DEMO_TEAM, generate_demo
from leadstage.services.demo_logins import DEMO_ADMIN, DEMO_PASSWORD, ensure_demo_logins
from tests.conftest import NOW


def test_every_role_of_the_demo_company_gets_a_working_login_once(container: Container) -> None:
    with container.uow(write=True) as uow:
        assert ensure_demo_logins(uow, hash_password=hash_password, verify=verify_password, at=NOW) == []
    generate_demo(uow_factory=container.uow, normalizer=container.identity, leads=5, seed=1, now=NOW)
    with container.uow(write=True) as uow:
        manager = uow.users.get_by_username("olivia.grant")
        assert manager is not None
        uow.users.set_password_hash(manager.id, hash_password("her-own-choice"))
        logins = ensure_demo_logins(uow, hash_password=hash_password, verify=verify_password, at=NOW)
        uow.commit()
    users = [login["user"] for login in logins]
    assert users[0] == DEMO_ADMIN
    assert set(users) == {DEMO_ADMIN} | {m.username for m in DEMO_TEAM} - {"olivia.grant"}
    assert {login["role"] for login in logins} == {"admin", "sales_rep", "marketing"}
    with container.uow(write=True) as uow:
        for name in users:
            user = uow.users.get_by_username(name)
            assert user is not None
            assert verify_password(user.password_hash or "", DEMO_PASSWORD)
        manager = uow.users.get_by_username("olivia.grant")
        assert manager is not None
        assert verify_password(manager.password_hash or "", "her-own-choice")
        again = ensure_demo_logins(uow, hash_password=hash_password, verify=verify_password, at=NOW)
    assert [login["user"] for login in again] == users
