"""Browser tests of the web workspace: Playwright for Python driving Debian's Chromium
(``/usr/bin/chromium``) against ``leadstage serve`` on a loopback port, with the demo company.

Without Chromium the set-up tries ``apt-get install -y chromium``; where it cannot, these tests are skipped
with the reason, except with ``CI=true``, where they fail. Every page a test visits is screenshotted into
the run's artifacts: ``LEADSTAGE_WEB_ARTIFACTS`` or ``<pytest's base temp>/artifacts/web``. A test fails
when the browser logged an error on its console (or a page script threw).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.cli_runner import leadstage_bin
from tests.conftest import IN_CI
from tests.e2e.api.test_live_server import _free_port
from tests.e2e.web.pages import Site, add_people

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEMO_PASSWORD = "leadstage-demo"
USERS = {
    "admin": "ada.admin",
    "marketing": "nina.patel",
    "sales_manager": "olivia.grant",
    "sales_rep": "ben.carter.na-east",
}


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"browser tests cannot run (CI=true makes this a failure): {reason}")
    pytest.skip(f"browser tests skipped: {reason}")


def _install_chromium() -> str:
    """Try to install Debian's chromium package; returns why it could not, or ''."""
    if shutil.which("apt-get") is None:
        return "no apt-get on this machine to install the chromium package"
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return "not root: cannot run `apt-get install -y chromium` (install the chromium package)"
    try:
        done = subprocess.run(
            ["apt-get", "install", "-y", "chromium"], capture_output=True, text=True, timeout=900, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`apt-get install -y chromium` failed: {exc}"
    if done.returncode != 0:
        # another process may hold the package lock while it installs chromium: give it time
        for _ in range(120):
            if os.path.exists(CHROMIUM):
                return ""
            time.sleep(2)
        return f"`apt-get install -y chromium` failed: {done.stderr.strip()[-300:]}"
    return ""


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not os.path.exists(CHROMIUM):
        why = _install_chromium()
        if not os.path.exists(CHROMIUM):
            _unavailable(why or f"{CHROMIUM} is still missing after installing chromium")
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _unavailable(f"Playwright for Python is not installed (pip install -e '.[web-test]'): {exc}")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("LEADSTAGE_WEB_ARTIFACTS")
    path = Path(configured) if configured else tmp_path_factory.getbasetemp() / "artifacts" / "web"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def _serving(db_url: str, tmp: Path, env: dict[str, str]) -> Iterator[str]:
    """``leadstage serve`` on a free loopback port until the block ends (as tests/e2e/api does, with more
    patience for a loaded machine: the browser tests start one server for all of them)."""
    port = _free_port()
    log_path = tmp / f"serve-{port}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [leadstage_bin(), "--db", db_url, "serve", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/api/v1/health", timeout=5) as r:
                        if r.status == 200:
                            break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(f"the server did not start: {log_path.read_text()[-3000:]}")
                    time.sleep(0.25)
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@dataclass
class Live:
    """A running server with the demo company (its logins use the demo password), a capture form for the
    website (its thank-you page is the login page) and an integration's API token."""

    base: str
    db_url: str
    tmp: Path
    form_key: str
    token: str

    def tick(self) -> None:
        """What the server's background loop does every minute (off here, so tests decide when)."""
        _cli(self.db_url, "tick")

    def api(self, method: str, path: str, body: object | None = None) -> tuple[int, Any]:
        """Call the REST API as the integration."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                **({"Content-Type": "application/json"} if data else {}),
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")


def _cli(db_url: str, *args: str) -> None:
    """Run a command of the CLI in this process (a subprocess would import everything again)."""
    from leadstage.cli.app import main

    code: Any = 0
    try:
        main(["--db", db_url, *args])
    except SystemExit as exc:
        code = exc.code
    assert not code, (args, code)


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    from leadstage.bootstrap import build
    from leadstage.config import Settings
    from leadstage.services import access
    from leadstage.services import users as user_service
    from leadstage.services.leads import BUILTIN_ADMIN

    tmp = tmp_path_factory.mktemp("web-live")
    db_url = f"sqlite:///{tmp / 'web.db'}"
    _cli(db_url, "init")
    _cli(db_url, "demo", "--leads", "300", "--seed", "11")
    c = build(Settings(database_url=db_url))
    with c.uow(write=True) as uow:
        form = access.create_form(
            uow,
            "Freight eBook",
            actor=BUILTIN_ADMIN,
            at=c.clock.now(),
            source="paid_search",
            redirect_url="/login",
        )
        user_service.add_user(
            uow, username="integration", role="admin", team=None, password_hash=None, at=c.clock.now()
        )
        _record, token = access.create_token(
            uow, "integration", scope="write", actor=BUILTIN_ADMIN, at=c.clock.now()
        )
        uow.commit()
    c.close()
    with _serving(db_url, tmp, {"LEADSTAGE_TICK_SECONDS": "0"}) as base:
        yield Live(base, db_url, tmp, form.key, token)


@dataclass
class Browsing:
    """One browser context of a test: its page, the console errors seen, and screenshots by name."""

    page: Any
    live: Live
    artifacts: Path
    test_name: str
    errors: list[str] = field(default_factory=list)
    shots: list[Path] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.live.base + path

    def goto(self, path: str, shot: str | None = None) -> Any:
        response = self.page.goto(self.url(path))
        self.page.wait_for_load_state("load")
        if shot:
            self.screenshot(shot)
        return response

    def path(self) -> str:
        """The path and query of the page shown now."""
        return "/" + self.page.url.split("://", 1)[1].split("/", 1)[1]

    def screenshot(self, name: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{self.test_name}-{name}")[:150]
        path = self.artifacts / f"{safe}.png"
        self.page.evaluate("window.scrollTo(0, 0)")  # the sticky bar at the top of a full-page picture
        self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)
        return path

    def login(self, who: str, next_path: str = "/") -> None:
        """Log in through the form, as the demo user of a role (or a demo user by name)."""
        self.page.goto(self.url(f"/login?next={next_path}"))
        self.page.get_by_label("User name").fill(USERS.get(who, who))
        self.page.get_by_label("Password").fill(DEMO_PASSWORD)
        self.page.get_by_role("button", name="Log in").click()
        self.page.wait_for_load_state("load")
        assert "/login" not in self.page.url, self.page.content()[:2000]

    def logout(self) -> None:
        self.page.get_by_role("button", name="Log out").click()
        self.page.wait_for_url(re.compile(r".*/login.*"))


@pytest.fixture
def web(browser: Any, live: Live, artifacts: Path, request: pytest.FixtureRequest) -> Iterator[Browsing]:
    context = browser.new_context(viewport={"width": 1366, "height": 800}, locale="en-GB")
    context.set_default_timeout(20_000)
    page = context.new_page()
    browsing = Browsing(page, live, artifacts, request.node.name)
    page.on(
        "console",
        lambda msg: browsing.errors.append(f"{page.url}: {msg.text}") if msg.type == "error" else None,
    )
    page.on("pageerror", lambda exc: browsing.errors.append(f"{page.url}: uncaught {exc}"))
    try:
        yield browsing
    finally:
        context.close()
    assert browsing.errors == [], "the browser console logged errors"


@pytest.fixture
def site(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """Web clients logged in as a user of each role (``site(name)``), on SQLite and PostgreSQL."""
    from leadstage.api.app import create_app
    from leadstage.bootstrap import build
    from leadstage.config import Settings

    monkeypatch.setenv("LEADSTAGE_TICK_SECONDS", "0")
    monkeypatch.setenv("LEADSTAGE_FOLLOW_UP_PROCESS", "false")  # no child process per test (ADR 25)
    container = build(Settings(database_url=db_url))
    add_people(container)
    app = create_app(Settings(database_url=db_url))
    with TestClient(app, base_url="http://testserver") as first:
        s = Site(app, container, {"anonymous": first})
        yield s
    container.close()
