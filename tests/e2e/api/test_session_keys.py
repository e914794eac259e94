"""The session signing key (issue 9 section 5, ADR 15): generated at `init` outside the database, mode 600;
cookies and CSRF tokens signed with it (a forged cookie is refused before any database query); rotated
by `leadstage secrets rotate` without logging anyone out; on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from leadstage.adapters.clock import FixedClock
from leadstage.adapters.keyring import KeyringStore, keyring_path
from leadstage.adapters.security import hash_password
from leadstage.api.app import create_app
from leadstage.bootstrap import build
from leadstage.config import Settings
from leadstage.domain.stages import Actor, Role
from leadstage.services import session_keys
from leadstage.services import users as user_service
from tests.cli_runner import run, run_process
from tests.conftest import NOW

ADMIN = Actor(name="admin", role=Role.ADMIN)


def _key_file(db_url: str) -> Path:
    path = keyring_path(db_url, Settings(database_url=db_url).secret_file)
    assert path is not None
    return path


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def web(db_url: str, clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("LEADSTAGE_TICK_SECONDS", "0")
    c = build(Settings(database_url=db_url))
    with c.uow(write=True) as uow:
        user_service.add_user(
            uow, username="mo", role="marketing", team=None, password_hash=hash_password("pw-mo-1234"), at=NOW
        )
        user_service.add_user(uow, username="vi", role="viewer", team=None, password_hash=None, at=NOW)
        uow.commit()
    c.close()
    with TestClient(create_app(Settings(database_url=db_url), clock=clock)) as client:
        yield client


def _login(client: TestClient) -> str:
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    done = client.post(
        "/login", data={"username": "mo", "password": "pw-mo-1234", "csrf": token}, follow_redirects=False
    )
    assert done.status_code == 303
    return str(client.cookies["ls_session"])


def _use(client: TestClient, cookie: str) -> None:
    client.cookies.clear()
    client.cookies.set("ls_session", cookie)


def _sent_back(client: TestClient) -> list[str]:
    return [c.value or "" for c in client.cookies.jar if c.name == "ls_session"]


def _rotate(db_url: str, clock: FixedClock, hours: float) -> None:
    c = build(Settings(database_url=db_url))
    with c.uow(write=True) as uow:
        session_keys.rotate(
            uow, KeyringStore(_key_file(db_url)), actor=ADMIN, at=clock.now(), grace=timedelta(hours=hours)
        )
        uow.commit()
    c.close()


def test_init_writes_the_key_beside_the_sqlite_file_readable_by_its_owner_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LEADSTAGE_SECRET_FILE", raising=False)
    db = tmp_path / "crm.db"
    done = run(capsys, str(db), "init", "--json").json()
    key = tmp_path / "crm.db.secret"
    assert done["secret_file"] == str(key)
    assert done["secret_created"] is True
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    secret = KeyringStore(key).load().current.secret.hex()
    assert secret.encode() not in db.read_bytes()  # outside the database, not a copy in it
    again = run(capsys, str(db), "init", "--json").json()
    assert again["secret_created"] is False  # init again keeps the key (and every session)
    assert KeyringStore(key).load().current.secret.hex() == secret


@pytest.mark.postgres
def test_postgresql_needs_a_configured_key_file(
    pg_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LEADSTAGE_SECRET_FILE", raising=False)
    warned = run(capsys, pg_server, "init")
    assert warned.code == 0
    assert "LEADSTAGE_SECRET_FILE" in warned.err
    refused = run_process(pg_server, "serve", "--port", "1")
    assert refused.code == 2
    assert "LEADSTAGE_SECRET_FILE" in refused.err
    key = tmp_path / "keys" / "leadstage.secret"
    monkeypatch.setenv("LEADSTAGE_SECRET_FILE", str(key))
    made = run(capsys, pg_server, "init", "--json").json()
    assert made["secret_file"] == str(key)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_a_key_file_others_can_read_is_refused_by_name(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, db_url, "init").code == 0
    key = _key_file(db_url)
    key.chmod(0o644)
    refused = run(capsys, db_url, "secrets", "rotate")
    assert refused.code == 2
    assert str(key) in refused.err
    assert "chmod 600" in refused.err


def test_a_forged_session_cookie_is_refused_before_any_database_query(db_url: str, web: TestClient) -> None:
    cookie = _login(web)
    value, key_id, mac = cookie.split(".")
    statements: list[str] = []
    engine = web.app.state.container.engine  # type: ignore[attr-defined]
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    forged = {
        "another session id": f"{value[:-1]}{'A' if value[-1] != 'A' else 'B'}.{key_id}.{mac}",
        "no signature": value,
        "another key": f"{value}.k7.{mac}",
    }
    for what, bad in forged.items():
        _use(web, bad)
        assert web.get("/api/v1/me").status_code == 401, what
    assert statements == []
    _use(web, cookie)
    assert web.get("/api/v1/me").status_code == 200
    assert statements  # the genuine cookie is looked up


def test_rotating_the_key_logs_nobody_out_and_sessions_move_to_the_new_key(
    db_url: str, web: TestClient, clock: FixedClock
) -> None:
    old_cookie = _login(web)
    csrf = web.get("/api/v1/session").json()["csrf"]
    _rotate(db_url, clock, hours=1)
    clock.at += timedelta(minutes=30)
    _use(web, old_cookie)
    me = web.get("/api/v1/me")
    assert me.status_code == 200  # still logged in
    [renewed] = [c for c in _sent_back(web) if c != old_cookie]
    _use(web, renewed)
    assert renewed.split(".")[0] == old_cookie.split(".")[0]  # the same session ...
    assert renewed.split(".")[1] == "k2"  # ... signed with the new key
    made = web.post("/api/v1/leads", json={"email": "a@b.example"}, headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201  # the page's CSRF token from before the rotation still works
    assert web.get("/api/v1/session").json()["csrf"].startswith("k2.")
    clock.at += timedelta(hours=1)  # the grace is over: the old cookie is refused, the renewed one is not
    _use(web, old_cookie)
    assert web.get("/api/v1/me").status_code == 401
    _use(web, renewed)
    assert web.get("/api/v1/me").status_code == 200


def test_a_zero_grace_rotation_ends_every_session_at_once(
    db_url: str, web: TestClient, clock: FixedClock
) -> None:
    cookie = _login(web)
    _rotate(db_url, clock, hours=0)
    _use(web, cookie)
    assert web.get("/api/v1/me").status_code == 401
    web.cookies.clear()
    assert _login(web).split(".")[1] == "k2"  # logging in again works


def test_secrets_rotate_is_for_administrators_and_audited(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, db_url, "init").code == 0
    assert (
        run(capsys, db_url, "users", "add", "vi", "--role", "viewer", "--password", "pw-vi-12345").code == 0
    )
    refused = run(capsys, db_url, "secrets", "rotate", "--as", "vi")
    assert refused.code == 3
    assert run(capsys, db_url, "secrets", "rotate", "--grace-hours", "-1").code == 2
    done = run(capsys, db_url, "secrets", "rotate", "--grace-hours", "2", "--json").json()
    assert done["current"] == "k2"
    assert [k["id"] for k in done["keys"]] == ["k2", "k1"]
    assert done["keys"][1]["accepted_now"] is True
    assert "secret" not in str(done["keys"])
    assert stat.S_IMODE(_key_file(db_url).stat().st_mode) == 0o600
    audit = run(capsys, db_url, "audit", "list", "--action", "secrets.rotate", "--json").json()
    assert audit["total"] == 1
    assert audit["items"][0]["details"]["key"] == "k2"
