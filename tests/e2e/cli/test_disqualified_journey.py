"""JOURNEYS.md 4: disqualified, remembered, and back; and forgotten, yet recognised (issue 4 section 8)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import leadstage.cli.app as cli_app
from leadstage.adapters.clock import FixedClock
from leadstage.bootstrap import build
from tests.cli_runner import run
from tests.e2e.cli.test_cli import write_csv

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
HEADER = ["Email", "First Name", "Last Name", "Job Title", "Company", "Lead Source"]
VP = ["vp@retail-shop.com", "Vic", "Park", "VP Operations", "Retail Shop", "webinar"]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FixedClock:
    """The CLI's clock, moved by the test."""
    fixed = FixedClock(START)
    monkeypatch.setattr(cli_app, "build", lambda settings: build(settings, clock=fixed))
    return fixed


def _activity(tmp_path: Path, name: str, email: str, type_: str, at: datetime) -> Path:
    return write_csv(tmp_path / name, ["email", "type", "occurred_at"], [[email, type_, at.isoformat()]])


def _follow_ups(capsys, db_url: str, clock: FixedClock, now: datetime) -> int:
    """`leadstage tick` at that time: how many follow-up tasks it made."""
    clock.at = now
    result = run(capsys, db_url, "tick", "--json")
    assert result.code == 0, result.err
    return int(result.json()["results"]["follow_ups"]["tasks_created"])


def _sql_lead(capsys, db_url: str, tmp_path: Path) -> None:
    assert run(capsys, db_url, "init").code == 0  # the default scoring model and the built-in segments
    assert (
        run(capsys, db_url, "users", "add", "rita", "--role", "sales_rep", "--password", "s3cret-pw!").code
        == 0
    )
    run(capsys, db_url, "import", "leads", str(write_csv(tmp_path / "vp.csv", HEADER, [VP])))
    for args in (
        ["promote_mql", "--reason", "manual", "--note", "asked for pricing"],
        ["accept", "--as", "rita"],
    ):
        assert run(capsys, db_url, "leads", "transition", VP[0], *args).code == 0


def test_disqualified_for_bad_timing_is_remembered_followed_up_and_reopened_after_the_recheck_date(
    capsys, db_url, tmp_path, clock
):
    _sql_lead(capsys, db_url, tmp_path)
    done = run(
        capsys,
        db_url,
        "leads",
        "transition",
        VP[0],
        "disqualify",
        "--reason",
        "bad_timing",
        "--note",
        "budget frozen until next fiscal year",
        "--as",
        "rita",
    )
    assert done.code == 0, done.err
    shown = run(capsys, db_url, "leads", "show", VP[0], "--json").json()
    dq = shown["disqualification"]
    assert dq["summary"] == "previously disqualified on 2026-03-02 for bad_timing by rita"
    assert dq["active"]
    assert set(dq["remedies"]) == {"remove", "nurture", "follow_up"}
    assert dq["recheck_at"].startswith("2026-05-31")  # 90 days
    nurtured = run(capsys, db_url, "leads", "list", "--segment", "disqualified-nurture", "--json").json()
    assert [it["email"] for it in nurtured["items"]] == [VP[0]]
    text = run(capsys, db_url, "leads", "show", VP[0])
    assert "previously disqualified on 2026-03-02 for bad_timing by rita" in text.out

    # three weeks later he fills in a form again: recognised, kept disqualified, no new cycle
    clock.at = START + timedelta(weeks=3)
    again = run(
        capsys, db_url, "import", "leads", str(write_csv(tmp_path / "form.csv", HEADER, [VP])), "--json"
    )
    assert again.code == 0, again.err
    shown = run(capsys, db_url, "leads", "show", VP[0], "--json").json()
    assert (shown["stage"], shown["status"], shown["cycle"]) == ("mql", "disqualified", 1)
    resurfaced = [h for h in shown["history"] if h["action"] == "resurfaced"]
    assert len(resurfaced) == 1
    assert "previously disqualified on 2026-03-02 for bad_timing by rita" in resurfaced[0]["note"]
    assert "kept disqualified until 2026-05-31" in resurfaced[0]["note"]
    webinar = _activity(tmp_path, "early.csv", VP[0], "webinar_attended", clock.at)
    run(capsys, db_url, "import", "activities", str(webinar))
    assert run(capsys, db_url, "leads", "show", VP[0], "--json").json()["status"] == "disqualified"

    # the follow-up comes due after 90 days: one task for the owner, made once however often tick runs
    due = START + timedelta(days=91)
    assert _follow_ups(capsys, db_url, clock, due) == 1
    assert _follow_ups(capsys, db_url, clock, due) == 0
    tasks = run(capsys, db_url, "tasks", "list", "--owner", "rita", "--json").json()
    assert [t["kind"] for t in tasks["items"]] == ["follow_up"]
    assert tasks["items"][0]["lead_id"] == shown["id"]

    # four months later he attends a webinar: reopened for qualification with a note, second cycle
    clock.at = START + timedelta(days=120)
    late = _activity(tmp_path, "late.csv", VP[0], "webinar_attended", clock.at)
    assert run(capsys, db_url, "import", "activities", str(late)).code == 0
    shown = run(capsys, db_url, "leads", "show", VP[0], "--json").json()
    assert (shown["stage"], shown["status"], shown["cycle"]) == ("lead", "open", 2)
    reopen = shown["history"][-1]
    assert (reopen["action"], reopen["reason"], reopen["actor"]) == ("reopen", "recheck_due", "system")
    assert "resurfaced via webinar_attended" in reopen["note"]
    assert "re-check date 2026-05-31 has passed" in reopen["note"]
    assert shown["disqualification"]["ended_reason"] == "reopened"
    assert (
        run(capsys, db_url, "leads", "list", "--segment", "disqualified-nurture", "--json").json()["total"]
        == 0
    )
    # its open follow-up was cancelled with the strategy
    assert run(capsys, db_url, "tasks", "list", "--owner", "rita", "--json").json()["total"] == 0


def test_a_changed_job_title_reopens_a_disqualified_lead_and_not_icp_offers_an_alternative(
    capsys, db_url, tmp_path, clock
):
    student = ["sam@uni.edu", "Sam", "Lo", "Student", "State University", "organic"]
    assert run(capsys, db_url, "init").code == 0
    run(capsys, db_url, "import", "leads", str(write_csv(tmp_path / "s.csv", HEADER, [student])))
    out = run(
        capsys,
        db_url,
        "leads",
        "transition",
        student[0],
        "disqualify",
        "--reason",
        "not_icp",
        "--note",
        "a student",
    )
    assert out.code == 0, out.err
    tasks = run(capsys, db_url, "tasks", "list", "--json").json()["items"]
    assert [t["kind"] for t in tasks] == ["alternative_offer"]
    assert "partner" in tasks[0]["title"]
    clock.at = START + timedelta(days=200)
    promoted = ["sam@uni.edu", "Sam", "Lo", "Head of Sales", "Big Retail", "organic"]
    run(capsys, db_url, "import", "leads", str(write_csv(tmp_path / "s2.csv", HEADER, [promoted])))
    shown = run(capsys, db_url, "leads", "show", student[0], "--json").json()
    assert (shown["status"], shown["cycle"], shown["job_title"]) == ("open", 2, "Head of Sales")
    reopen = shown["history"][-1]
    assert reopen["reason"] == "fit_changed"
    assert "job title Student -> Head of Sales" in reopen["note"]


def test_a_forgotten_person_is_erased_and_still_recognised_when_they_come_back(
    capsys, db_url, tmp_path, clock
):
    _sql_lead(capsys, db_url, tmp_path)
    run(
        capsys,
        db_url,
        "leads",
        "transition",
        VP[0],
        "disqualify",
        "--reason",
        "competitor",
        "--note",
        "works at Rival",
    )
    lead_id = run(capsys, db_url, "leads", "show", VP[0], "--json").json()["id"]
    denied = run(capsys, db_url, "leads", "forget", str(lead_id), "--as", "rita")
    assert denied.code == 3
    assert run(capsys, db_url, "leads", "forget", str(lead_id)).code == 0
    gone = run(capsys, db_url, "leads", "show", str(lead_id), "--json").json()
    assert gone["email"] is None
    assert (gone["first_name"], gone["last_name"], gone["job_title"], gone["company"]) == (
        None,
        None,
        None,
        None,
    )
    assert gone["status"] == "disqualified"
    assert all(h["note"] is None or "personal data erased" in h["note"] for h in gone["history"])
    assert gone["disqualification"]["reason"] == "competitor"
    assert gone["disqualification"]["note"] is None
    assert {e["system"] for e in gone["external_ids"]} == {"forgotten-email"}
    assert run(capsys, db_url, "leads", "show", VP[0]).code == 2  # the address itself is not stored

    clock.at = START + timedelta(days=10)
    back = run(
        capsys, db_url, "import", "leads", str(write_csv(tmp_path / "back.csv", HEADER, [VP])), "--json"
    )
    assert back.json()["created"] == 0
    again = run(capsys, db_url, "leads", "show", VP[0], "--json").json()
    assert again["id"] == lead_id
    assert again["status"] == "disqualified"
    assert again["disqualification"]["summary"].endswith("for competitor by admin")
    assert again["history"][-1]["action"] == "resurfaced"
