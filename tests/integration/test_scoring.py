"""Scoring end to end on both databases: models stored and activated, batch and incremental agree,
explanations add up, automatic MQL promotion once per cycle, invalid models change nothing."""

from __future__ import annotations

import csv
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from leadstage.bootstrap import build
from leadstage.cli.scoring import yaml_loader
from leadstage.config import Settings
from leadstage.services import scoring
from tests.cli_runner import run
from tests.unit.domain.test_scoring import MODEL

LEADS = [
    ["email", "first_name", "Seniority", "Department", "phone"],
    ["vp@freight.io", "Vera", "VP", "Finance", "+1 415 555 0101"],
    ["ic@freight.io", "Ian", "Individual contributor", "IT", ""],
    ["stu@gmail.com", "Sam", "Student", "", ""],
]


def ago(days: float) -> str:
    """A time relative to the real clock the CLI reads."""
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


AS_OF = datetime.now(UTC) + timedelta(days=1)


def explain_at(db_url: str, ref: str) -> dict[str, Any]:
    """The explanation as of one fixed time, through the service layer."""
    container = build(Settings(database_url=db_url))
    try:
        with container.uow() as uow:
            return scoring.explain(uow, ref, load=yaml_loader, as_of=AS_OF)
    finally:
        container.close()


def write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return path


@pytest.fixture
def scored_db(capsys, db_url, tmp_path):
    assert run(capsys, db_url, "init").code == 0
    model = tmp_path / "model.yaml"
    model.write_text(MODEL)
    result = run(capsys, db_url, "score", "activate", str(model), "--json")
    assert result.code == 0, result.err
    assert run(capsys, db_url, "import", "leads", str(write(tmp_path / "leads.csv", LEADS))).code == 0
    return db_url


def test_init_installs_and_activates_the_default_model(capsys, db_url):
    result = run(capsys, db_url, "init", "--json").json()
    assert result["default_scoring_model"] is True
    assert run(capsys, db_url, "init", "--json").json()["default_scoring_model"] is False


def test_imported_leads_are_scored_and_explained(capsys, scored_db):
    doc = run(capsys, scored_db, "score", "explain", "vp@freight.io", "--json").json()
    assert set(doc) >= {"lead_id", "as_of", "fit", "engagement", "priority"}
    assert doc["fit"]["grade"] == "B"
    assert doc["fit"]["score"] == sum(c["points"] for c in doc["fit"]["contributions"]) == 25 + 15 - 10
    assert doc["engagement"] == {"score": 0, "level": 4, "contributions": []}
    assert doc["priority"] == "B4"
    shown = run(capsys, scored_db, "leads", "show", "vp@freight.io", "--json").json()
    assert shown["scores"] == {"fit_grade": "B", "engagement_level": 4, "priority": "B4"}
    student = run(capsys, scored_db, "score", "explain", "stu@gmail.com", "--json").json()
    assert (student["fit"]["grade"], student["fit"]["excluded_by"]) == ("D", "students")
    table = run(capsys, scored_db, "score", "explain", "vp@freight.io")
    assert "grade B" in table.out


def test_activities_score_incrementally_promote_once_and_match_a_batch_run(capsys, scored_db, tmp_path):
    acts = write(
        tmp_path / "acts.csv",
        [
            ["email", "type", "occurred_at", "page"],
            ["vp@freight.io", "webinar_attended", ago(6), ""],
            ["vp@freight.io", "page_view", ago(1), "/pricing"],
            ["stu@gmail.com", "demo", ago(1), ""],
            ["ic@freight.io", "email_click", ago(20), ""],
        ],
    )
    assert run(capsys, scored_db, "import", "activities", str(acts)).code == 0
    vp = run(capsys, scored_db, "leads", "show", "vp@freight.io", "--json").json()
    assert (vp["stage"], vp["status"]) == ("mql", "open")
    promotion = vp["history"][-1]
    assert (promotion["action"], promotion["actor"], promotion["reason"]) == (
        "promote_mql",
        "system",
        "criteria_met",
    )
    assert promotion["data"]["criteria"] == ["fit at least B and engagement at least 2"]
    student = run(capsys, scored_db, "leads", "show", "stu@gmail.com", "--json").json()
    assert student["stage"] == "lead"  # an excluded lead is never promoted, even by a qualifying activity
    incremental = explain_at(scored_db, "vp@freight.io")
    # the same file again adds nothing and promotes nothing
    assert run(capsys, scored_db, "import", "activities", str(acts), "--json").json()["created"] == 0
    assert run(capsys, scored_db, "score", "run", "--json").json()["promoted"] == 0
    batch = explain_at(scored_db, "vp@freight.io")
    assert abs(incremental["engagement"]["score"] - batch["engagement"]["score"]) < 1e-9
    assert incremental["engagement"]["level"] == batch["engagement"]["level"]
    again = run(capsys, scored_db, "leads", "show", "vp@freight.io", "--json").json()
    assert [h["action"] for h in again["history"]].count("promote_mql") == 1


def test_a_rejected_lead_is_promoted_again_only_on_new_engagement_in_a_new_cycle(capsys, scored_db, tmp_path):
    first = write(
        tmp_path / "a1.csv",
        [
            ["email", "type", "occurred_at"],
            ["vp@freight.io", "webinar_attended", ago(2)],
            ["vp@freight.io", "webinar_attended", ago(1)],
        ],
    )
    run(capsys, scored_db, "import", "activities", str(first))
    assert (
        run(
            capsys, scored_db, "leads", "transition", "vp@freight.io", "reject", "--reason", "bad_timing"
        ).code
        == 0
    )
    assert (
        run(capsys, scored_db, "score", "run", "--json").json()["promoted"] == 0
    )  # nothing new: stays in nurture
    time.sleep(1.1)  # the new engagement must come after the rejection (times in files have whole seconds)
    second = write(
        tmp_path / "a2.csv", [["email", "type", "occurred_at"], ["vp@freight.io", "webinar_attended", ago(0)]]
    )
    run(capsys, scored_db, "import", "activities", str(second))
    shown = run(capsys, scored_db, "leads", "show", "vp@freight.io", "--json").json()
    assert (shown["stage"], shown["status"], shown["cycle"]) == ("mql", "open", 2)


def test_a_disqualified_lead_is_never_promoted(capsys, scored_db, tmp_path):
    assert (
        run(
            capsys,
            scored_db,
            "leads",
            "transition",
            "vp@freight.io",
            "disqualify",
            "--reason",
            "no_budget",
            "--note",
            "frozen",
        ).code
        == 0
    )
    acts = write(
        tmp_path / "a.csv",
        [
            ["email", "type", "occurred_at"],
            ["vp@freight.io", "webinar_attended", ago(2)],
            ["vp@freight.io", "demo", ago(2)],
        ],
    )
    run(capsys, scored_db, "import", "activities", str(acts))
    shown = run(capsys, scored_db, "leads", "show", "vp@freight.io", "--json").json()
    assert shown["status"] == "disqualified"


def test_an_invalid_model_exits_2_and_the_active_one_stays(capsys, scored_db, tmp_path):
    before = run(capsys, scored_db, "score", "explain", "vp@freight.io", "--json").json()
    bad = tmp_path / "bad.yaml"
    bad.write_text(MODEL.replace("{half_life_days: 10}", "{half_life_days: -1}"))
    result = run(capsys, scored_db, "score", "activate", str(bad))
    assert result.code == 2
    assert "line 17: engagement.rules[0].decay.half_life_days: must be greater than zero" in result.err
    after = run(capsys, scored_db, "score", "explain", "vp@freight.io", "--json").json()
    assert {k: after[k] for k in ("fit", "engagement", "priority")} == {
        k: before[k] for k in ("fit", "engagement", "priority")
    }
    missing = run(capsys, scored_db, "score", "activate", str(tmp_path / "nope.yaml"))
    assert missing.code == 2


def test_a_new_model_rescores_every_lead_and_keeps_score_history(capsys, scored_db, tmp_path):
    richer = tmp_path / "v2.yaml"
    richer.write_text(MODEL.replace("role: {cap: 30}", "role: {cap: 60}"))
    result = run(capsys, scored_db, "score", "activate", str(richer), "--json").json()
    assert result["version"] == 3  # default model, test model, this one
    assert result["scored"] == 3
    doc = run(capsys, scored_db, "score", "explain", "vp@freight.io", "--json").json()
    assert doc["fit"]["grade"] == "A"


def test_marketing_may_activate_models_sales_may_not(capsys, scored_db, tmp_path):
    model = tmp_path / "m.yaml"
    model.write_text(MODEL)
    run(capsys, scored_db, "users", "add", "rob", "--role", "sales_rep")
    assert run(capsys, scored_db, "score", "activate", str(model), "--as", "rob").code == 3
