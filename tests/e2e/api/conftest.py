"""An API client on a real database (SQLite and PostgreSQL), with users and tokens per role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from leadstage.api.app import create_app
from leadstage.bootstrap import build
from leadstage.config import Settings
from leadstage.domain.stages import Actor, Role
from leadstage.services import access
from leadstage.services import users as user_service
from tests.conftest import NOW

ROLES = ("admin", "marketing", "sales_rep", "sales_manager", "viewer")


@dataclass
class Api:
    client: TestClient
    tokens: dict[str, str]  # "<role>" (write) and "<role>:read"
    db_url: str

    def headers(self, who: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def settle(self) -> None:
        """Run now what the server's follow-up loop runs within a second of an activity batch: the batch's
        activities stored (SQLite: moved from the inbox, ADR 24), scored, touched and credited."""
        self.client.app.state.container.follow_up()  # type: ignore[attr-defined]


@pytest.fixture
def api(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    monkeypatch.setenv("LEADSTAGE_CAPTURE_RATE_PER_MINUTE", "5")
    monkeypatch.setenv("LEADSTAGE_TICK_SECONDS", "0")  # no background tick racing the assertions
    # follow-ups in the server's thread: a child process per test costs its start-up; the process is
    # tested by test_follow_up_process and by the live servers of test_live_server
    monkeypatch.setenv("LEADSTAGE_FOLLOW_UP_PROCESS", "false")
    settings = Settings(database_url=db_url)
    c = build(settings)
    tokens: dict[str, str] = {}
    with c.uow() as uow:
        admin = Actor(name="admin", role=Role.ADMIN)
        for role in ROLES:
            name = f"{role.replace('_', '-')}-user"
            user_service.add_user(uow, username=name, role=role, team="emea", password_hash=None, at=NOW)
            for scope in ("write", "read"):
                _record, token = access.create_token(uow, name, scope=scope, actor=admin, at=NOW)
                tokens[role if scope == "write" else f"{role}:read"] = token
        uow.commit()
    c.close()
    with TestClient(create_app(Settings(database_url=db_url))) as client:
        yield Api(client, tokens, db_url)
