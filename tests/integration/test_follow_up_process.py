"""The server's follow-up process (ADR 25), SQLite: runs the follow-ups in a spawned child when asked, is
started again when it died, and reports a failing run instead of hanging."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from leadstage.adapters.db import tables as t
from leadstage.api import follow_up
from leadstage.api.follow_up import FollowUpFailed, FollowUpProcess
from leadstage.bootstrap import build
from leadstage.config import Settings
from leadstage.services import capture
from tests.cli_runner import run
from tests.integration.test_scoring import LEADS, write


@pytest.fixture
def url(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> str:
    db_url = f"sqlite:///{tmp_path / 'leadstage.db'}"
    assert run(capsys, db_url, "init").code == 0
    assert run(capsys, db_url, "import", "leads", str(write(tmp_path / "leads.csv", LEADS))).code == 0
    return db_url


def _send(db_url: str, prefix: str, n: int = 3) -> None:
    c = build(Settings(database_url=db_url))
    try:
        records: list[dict[str, Any]] = [
            {"email": "vp@freight.io", "type": "page_view", "occurred_at": f"2026-10-0{i + 1}T10:00:00Z",
             "idempotency_key": f"{prefix}{i}"}
            for i in range(n)
        ]  # fmt: skip
        report, rejects = capture.import_records("activities", records, ctx=c.import_context(defer=True))
        assert (report.created, rejects) == (n, [])
    finally:
        c.close()


def _stored(db_url: str) -> int:
    c = build(Settings(database_url=db_url))
    try:
        with c.uow() as uow:
            return int(uow.connection.execute(select(func.count()).select_from(t.activities)).scalar_one())
    finally:
        c.close()


def test_the_child_follows_up_when_asked_and_is_started_again_when_it_died(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(follow_up, "RESTART_SECONDS", 0.2)
    follower = FollowUpProcess(Settings(database_url=url))
    try:
        before = _stored(url)
        _send(url, "a")
        assert follower.run().activities == 3
        assert _stored(url) == before + 3
        child = follower._process
        assert child is not None
        # the server's Ctrl-C reaches its process group: the child leaves stopping to the server
        os.kill(child.pid, signal.SIGINT)
        assert follower.run().activities == 0
        assert follower._process is child
        assert child.is_alive()
        child.kill()
        child.join(10)
        _send(url, "b")
        assert follower.run().activities == 3  # a new child
        assert follower._process is not child
        assert _stored(url) == before + 6
    finally:
        follower.close()
    assert follower._process is None


def test_a_failing_run_is_reported_and_the_next_one_can_succeed(tmp_path: Path) -> None:
    empty = f"sqlite:///{tmp_path / 'nothing.db'}"  # no schema: every run fails
    follower = FollowUpProcess(Settings(database_url=empty))
    try:
        with pytest.raises(FollowUpFailed, match="no such table"):
            follower.run()
        child = follower._process
        with pytest.raises(FollowUpFailed, match="no such table"):
            follower.run()  # the child lives on and answers again
        assert follower._process is child
    finally:
        follower.close()
