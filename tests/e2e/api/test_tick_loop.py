"""``serve`` runs tick in the background, and stops it cleanly on shutdown."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from leadstage.api.app import create_app
from leadstage.config import Settings


def test_serve_runs_tick_in_the_background_and_stops_on_shutdown(sqlite_url: str) -> None:
    app = create_app(Settings(database_url=sqlite_url, tick_seconds=0.05))
    with TestClient(app) as client:
        assert client.get("/api/v1/health").json()["status"] == "ok"
        deadline = time.monotonic() + 20
        while app.state.ticks < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.state.ticks >= 2
    assert app.state.tick_running.done()


def test_a_zero_interval_turns_the_loop_off(sqlite_url: str) -> None:
    app = create_app(Settings(database_url=sqlite_url, tick_seconds=0))
    with TestClient(app):
        time.sleep(0.2)
    assert app.state.ticks == 0
