"""The activity backlog (ADR 21) on SQLite and PostgreSQL: activities received in an API batch are stored at
once and their follow-ups (first and last touch, incremental scoring with MQL promotion, attribution
credits) run afterwards, all pending ones together; the result equals following up at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

import leadstage.cli.app as cli_app
from leadstage.adapters.clock import FixedClock
from leadstage.adapters.db import tables as t
from leadstage.bootstrap import Container, build
from leadstage.config import Settings
from leadstage.services import capture, ingest, tick
from tests.cli_runner import run
from tests.integration.test_report_facts import consistent
from tests.integration.test_scoring import LEADS, explain_at, write
from tests.unit.domain.test_scoring import MODEL

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def at(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


BATCH: list[dict[str, Any]] = [
    {"email": "vp@freight.io", "type": "webinar_attended", "occurred_at": at(6), "source": "email",
     "campaign": "Q4 webinar", "idempotency_key": "w1"},
    {"email": "vp@freight.io", "type": "page_view", "occurred_at": at(1), "source": "direct",
     "page": "/pricing", "idempotency_key": "p1"},
    {"email": "ic@freight.io", "type": "email_click", "occurred_at": at(20), "source": "email",
     "idempotency_key": "c1"},
    {"email": "ic@freight.io", "type": "demo", "occurred_at": at(2), "source": "paid_search",
     "idempotency_key": "d1"},
]  # fmt: skip


@pytest.fixture
def scored(
    capsys: pytest.CaptureFixture[str], db_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> str:
    clock = FixedClock(NOW)
    monkeypatch.setattr(cli_app, "build", lambda settings: build(settings, clock=clock))
    assert run(capsys, db_url, "init").code == 0
    model = tmp_path / "model.yaml"
    model.write_text(MODEL)
    assert run(capsys, db_url, "score", "activate", str(model)).code == 0
    assert run(capsys, db_url, "import", "leads", str(write(tmp_path / "leads.csv", LEADS))).code == 0
    return db_url


@pytest.fixture
def app(scored: str) -> Any:
    c = build(Settings(database_url=scored), clock=FixedClock(NOW))
    yield c
    c.close()


def _send(c: Container, records: list[dict[str, Any]]) -> Any:
    report, rejects = capture.import_records(
        "activities", records, ctx=c.import_context(actor="api", defer=True)
    )
    assert rejects == []
    return report


def _backlog(c: Container) -> int:
    """Activities whose follow-ups wait: in the backlog, or (SQLite) in the inbox, not stored yet."""
    with c.uow() as uow:
        pending = int(
            uow.connection.execute(select(func.count()).select_from(t.activity_backlog)).scalar_one()
        )
        mark = uow.webhooks.cursor(ingest.INBOX_CURSOR)
    return pending + (c.inbox.waiting(mark) if c.inbox is not None else 0)


def _engagement(db_url: str, emails: tuple[str, ...]) -> dict[str, tuple[float, int]]:
    """Each lead's engagement score and level as of one time: a double-counted activity shows here."""
    out = {}
    for email in emails:
        doc = explain_at(db_url, email)["engagement"]
        out[email] = (round(doc["score"], 9), doc["level"])
    return out


def _lead(capsys: pytest.CaptureFixture[str], db_url: str, email: str) -> dict[str, Any]:
    shown: dict[str, Any] = run(capsys, db_url, "leads", "show", email, "--json").json()
    return shown


def test_a_batch_is_stored_at_once_and_followed_up_later_as_an_import_would(
    capsys: pytest.CaptureFixture[str], scored: str, app: Container
) -> None:
    before = _lead(capsys, scored, "vp@freight.io")
    assert _send(app, BATCH).created == 4
    # kept, and waiting: no score, touch or promotion yet; on SQLite they wait in the inbox file, stored in
    # the database by the follow-up (ADR 24); on PostgreSQL they are stored at once
    assert _backlog(app) == 4
    waiting = _lead(capsys, scored, "vp@freight.io")
    assert waiting["activity_count"] == (0 if app.inbox is not None else 2)
    assert (waiting["scores"], waiting["stage"], waiting["last_touch_at"]) == (
        before["scores"],
        "lead",
        None,
    )
    # a retried batch adds nothing, to the activities or to the backlog
    assert _send(app, BATCH).unchanged == 4
    assert _backlog(app) == 4

    assert app.follow_up().activities == 4
    assert _backlog(app) == 0
    vp = _lead(capsys, scored, "vp@freight.io")
    assert (vp["stage"], vp["status"]) == ("mql", "open")
    promotion = vp["history"][-1]
    assert (promotion["action"], promotion["actor"], promotion["reason"]) == (
        "promote_mql",
        "system",
        "criteria_met",
    )
    assert vp["first_touch_at"].startswith(at(6)[:10])
    assert vp["last_touch_at"].startswith(at(1)[:10])
    ic = _lead(capsys, scored, "ic@freight.io")
    assert ic["stage"] == "mql"  # the demo request qualifies on its own
    # what the follow-up left equals a batch recomputation of every score from every activity...
    followed = _engagement(scored, ("vp@freight.io", "ic@freight.io"))
    assert followed["vp@freight.io"][0] > 0
    assert run(capsys, scored, "score", "run", "--json").json()["promoted"] == 0
    assert _engagement(scored, ("vp@freight.io", "ic@freight.io")) == followed
    # ...and the report facts equal what the history and activities say now
    consistent(scored)
    # nothing is followed up twice
    assert app.follow_up().activities == 0
    assert [h["action"] for h in _lead(capsys, scored, "vp@freight.io")["history"]].count("promote_mql") == 1


def test_a_rescore_meanwhile_leaves_pending_activities_to_the_backlog_and_tick_follows_them_up(
    capsys: pytest.CaptureFixture[str], scored: str, app: Container
) -> None:
    """Folds of all of a lead's activities (a merge, `score run`) leave pending ones out; the backlog then
    folds each of them once, whoever follows it up (here tick, as when no server did)."""
    _send(app, BATCH)
    # before anything followed them up, the two people turn out to be one: ic is merged into vp, whose
    # scores are computed again from all his activities but the four pending ones
    assert run(capsys, scored, "leads", "merge", "vp@freight.io", "ic@freight.io").code == 0
    assert run(capsys, scored, "score", "run").code == 0  # and every lead is rescored meanwhile
    assert _backlog(app) == 4
    assert _lead(capsys, scored, "vp@freight.io")["stage"] == "lead"
    report = tick.tick(app.uow, now=NOW, evaluators=app.tick_evaluators())
    assert report.errors == {}
    assert report.results["activities"] == {"followed_up": 4, "promoted": 1}
    assert _backlog(app) == 0
    vp = _lead(capsys, scored, "vp@freight.io")
    assert (vp["activity_count"], vp["stage"]) == (4, "mql")
    assert vp["first_touch_at"].startswith(at(20)[:10])  # ic's email click, now vp's
    followed = _engagement(scored, ("vp@freight.io", "stu@gmail.com"))
    assert followed["vp@freight.io"][0] > 0
    # each activity counted once: a batch recomputation from every activity gives the same
    assert run(capsys, scored, "score", "run", "--json").json()["promoted"] == 0
    assert _engagement(scored, ("vp@freight.io", "stu@gmail.com")) == followed
    consistent(scored)


def test_a_lead_first_scored_by_the_backlog_counts_its_pending_activities(
    capsys: pytest.CaptureFixture[str], scored: str, app: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lead the active model has not scored yet is folded from all its activities by the follow-up:
    the ones it is following up count too (they leave the backlog first)."""
    monkeypatch.setattr(app.settings, "incremental_scoring", False)  # the lead arrives unscored
    report, _rejects = capture.import_records(
        "leads", [{"email": "new@freight.io", "job_title": "CFO"}], ctx=app.import_context(actor="api")
    )
    assert report.created == 1
    monkeypatch.setattr(app.settings, "incremental_scoring", True)
    _send(app, [{**a, "email": "new@freight.io", "idempotency_key": f"n-{i}"} for i, a in enumerate(BATCH)])
    assert app.follow_up().activities == 4
    followed = _engagement(scored, ("new@freight.io",))
    assert followed["new@freight.io"][0] > 0
    assert run(capsys, scored, "score", "run", "--json").json()["promoted"] == 0
    assert _engagement(scored, ("new@freight.io",)) == followed


def test_with_incremental_scoring_off_the_follow_up_keeps_touches_and_credits_only(
    capsys: pytest.CaptureFixture[str], scored: str, app: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app.settings, "incremental_scoring", False)
    before = _lead(capsys, scored, "vp@freight.io")["scores"]
    _send(app, BATCH)
    assert app.follow_up().activities == 4
    vp = _lead(capsys, scored, "vp@freight.io")
    assert (vp["scores"], vp["stage"]) == (before, "lead")
    assert vp["last_touch_at"] is not None
    consistent(scored)
