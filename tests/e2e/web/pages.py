"""Pages rendered in-process (no browser): a TestClient logged in as a user of each role, on SQLite and
PostgreSQL, for what the server decides (who sees what, what each role may change, filters, pages)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from leadstage.bootstrap import Container
from leadstage.services import access
from leadstage.services import users as user_service
from tests.conftest import NOW

#: user name -> (role, team)
PEOPLE = {
    "ada": ("admin", None),
    "mia": ("marketing", "marketing"),
    "rob": ("sales_rep", "emea"),
    "rita": ("sales_rep", "emea"),
    "max": ("sales_manager", "emea"),
    "vic": ("viewer", None),
}


@dataclass
class Site:
    """Web clients by user name, each logged in with its own session, over one app and database.

    Sessions are opened by the same service as ``/login`` (the login form itself is tested in
    tests/e2e/api/test_sessions.py), without a password hash per test: argon2 is slow on purpose."""

    app: FastAPI
    container: Container
    clients: dict[str, TestClient] = field(default_factory=dict)

    def __call__(self, who: str) -> TestClient:
        if who not in self.clients:
            client = TestClient(self.app, base_url="http://testserver")
            if who != "anonymous":
                self.container.ensure_keyring()
                with self.container.uow(write=True) as uow:
                    cookie, _csrf, _actor = access.login(
                        uow,
                        who,
                        "-",
                        keys=self.container.session_keys(),
                        verify=lambda _hash, _password: True,
                        dummy_hash="-",
                        at=self.container.clock.now(),
                        hours=12,
                        client="test",
                    )
                    uow.commit()
                client.cookies.set(access.SESSION_COOKIE, cookie)
            self.clients[who] = client
        return self.clients[who]

    def csrf(self, who: str) -> str:
        page = self(who).get("/leads/new" if PEOPLE[who][0] != "viewer" else "/leads").text
        found = re.search(r'"X-CSRF-Token": "([^"]+)"', page)
        assert found, page[:500]
        return found.group(1)

    def post(self, who: str, path: str, data: dict[str, Any] | None = None) -> Any:
        """A form post with the session's CSRF token, as a browser sends it."""
        body = {**(data or {}), "csrf": self.csrf(who)}
        return self(who).post(path, data=body, follow_redirects=False)

    def htmx(self, who: str, path: str, data: dict[str, Any] | None = None) -> Any:
        """An htmx post: the CSRF token in its header. A refusal comes back as a message for the page
        (HTTP 200, so that the browser logs no console error) with its status in ``X-Error-Status``;
        this puts that status back as the answer's status code."""
        headers = {"HX-Request": "true", "X-CSRF-Token": self.csrf(who)}
        answer = self(who).post(path, data=data or {}, headers=headers, follow_redirects=False)
        if "X-Error-Status" in answer.headers:
            assert answer.status_code == 200
            assert answer.headers["HX-Retarget"] == "#flash"
            answer.status_code = int(answer.headers["X-Error-Status"])
        return answer


def add_people(container: Container) -> None:
    with container.uow(write=True) as uow:
        for name, (role, team) in PEOPLE.items():
            user_service.add_user(uow, username=name, role=role, team=team, password_hash="unused", at=NOW)
        uow.commit()
