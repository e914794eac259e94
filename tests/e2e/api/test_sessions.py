"""Web sessions: the /login form (argon2id), HttpOnly SameSite cookies, CSRF on every change, expiry."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from leadstage.adapters.clock import FixedClock
from leadstage.adapters.security import hash_password
from leadstage.api.app import create_app
from leadstage.bootstrap import build
from leadstage.config import Settings
from leadstage.services import users as user_service
from tests.conftest import NOW


@pytest.fixture
def web(db_url: str, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("LEADSTAGE_TICK_SECONDS", "0")
    c = build(Settings(database_url=db_url))
    with c.uow(write=True) as uow:
        user_service.add_user(
            uow,
            username="mo",
            role="marketing",
            team=None,
            password_hash=hash_password("right-password"),
            at=NOW,
        )
        user_service.add_user(uow, username="gone", role="viewer", team=None, password_hash=None, at=NOW)
        uow.commit()
    c.close()
    return TestClient(create_app(Settings(database_url=db_url)), base_url="http://testserver")


def _login(client: TestClient, username: str, password: str, *, csrf: str | None = None):
    page = client.get("/login")
    assert page.status_code == 200
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf": token if csrf is None else csrf},
        follow_redirects=False,
    )


def test_the_login_form_has_the_documented_fields(web: TestClient) -> None:
    with web:
        page = web.get("/login").text
    assert 'name="username"' in page
    assert 'name="password"' in page
    assert '<button type="submit">' in page


def test_a_session_reads_and_changes_only_with_its_csrf_token(web: TestClient) -> None:
    with web:
        done = _login(web, "mo", "right-password")
        assert done.status_code == 303
        cookie = done.headers["set-cookie"]
        assert "ls_session=" in cookie
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie.replace("Lax", "lax")
        me = web.get("/api/v1/me")
        assert me.json()["role"] == "marketing"
        csrf = web.get("/api/v1/session").json()["csrf"]
        no_token = web.post("/api/v1/leads", json={"email": "a@b.example"})
        assert no_token.status_code == 403
        assert "CSRF" in no_token.json()["detail"]
        made = web.post("/api/v1/leads", json={"email": "a@b.example"}, headers={"X-CSRF-Token": csrf})
        assert made.status_code == 201
        assert web.post("/logout", data={"csrf": "wrong"}).status_code == 403
        out = web.post("/logout", data={"csrf": csrf}, follow_redirects=False)
        assert out.status_code == 303
        web.cookies.set("ls_session", cookie.split("ls_session=")[1].split(";")[0])
        assert web.get("/api/v1/me").status_code == 401  # the ended session no longer works


@pytest.mark.parametrize(
    ("user", "password"), [("mo", "wrong-password"), ("nobody", "right-password"), ("gone", "")]
)
def test_wrong_credentials_get_the_same_answer(web: TestClient, user: str, password: str) -> None:
    with web:
        r = _login(web, user, password or "x")
    assert r.status_code == 401
    assert "Wrong user name or password" in r.text
    assert "ls_session" not in r.headers.get("set-cookie", "")


def test_a_login_without_its_form_token_is_refused(web: TestClient) -> None:
    with web:
        assert _login(web, "mo", "right-password", csrf="forged").status_code == 403


def test_an_expired_session_is_refused(db_url: str, web: TestClient) -> None:
    clock = FixedClock(datetime.now(UTC))
    client = TestClient(create_app(Settings(database_url=db_url), clock=clock))
    with client:
        assert _login(client, "mo", "right-password").status_code == 303
        assert client.get("/api/v1/me").status_code == 200
        clock.at += timedelta(hours=12, minutes=1)  # the default session lasts 12 hours
        late = client.get("/api/v1/me")
    assert late.status_code == 401
    assert "expired" in late.json()["detail"]


def test_only_local_paths_are_followed_after_login(web: TestClient) -> None:
    with web:
        page = web.get("/login", params={"next": "https://evil.example/"}).text
    assert 'name="next" value="/"' in page


def test_failed_logins_are_limited_per_address_and_successful_ones_are_not(web: TestClient) -> None:
    with web:
        for _ in range(12):  # many people behind one address log in all day
            assert _login(web, "mo", "right-password").status_code == 303
        for _ in range(10):  # ten guesses a minute per address
            assert _login(web, "mo", "guess").status_code == 401
        blocked = _login(web, "mo", "right-password")
    assert blocked.status_code == 429
    assert blocked.headers["Retry-After"] == "60"
    assert "Too many failed logins" in blocked.text
    assert "ls_session" not in blocked.headers.get("set-cookie", "")
