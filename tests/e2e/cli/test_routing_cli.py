"""``leadstage routing``, ``leads assign`` and ``tick`` end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, update

from leadstage.adapters.db import tables as t
from leadstage.adapters.db.engine import normalize_url
from tests.cli_runner import run
from tests.e2e.cli.test_cli import count, write_csv

ROUTING = """\
name: cli routing
territories:
  DACH: [Germany, Austria]
teams:
  emea:
    manager: max
    timezone: Europe/Berlin
    hours:
      mon-fri: "09:00-17:00"
    holidays: [2026-12-24, 2026-12-25]
    first_response: 4h
    daily_capacity: 10
    members:
      ana: {territories: [DACH]}
      ben: {weight: 2}
rules:
  - name: everyone
    team: emea
"""


def _setup(capsys: pytest.CaptureFixture[str], db_url: str, tmp_path: Path) -> Path:
    assert run(capsys, db_url, "init").code == 0
    for name, role in (
        ("max", "sales_manager"),
        ("ana", "sales_rep"),
        ("ben", "sales_rep"),
        ("nina", "marketing"),
    ):
        assert run(capsys, db_url, "users", "add", name, "--role", role).code == 0
    leads = write_csv(
        tmp_path / "leads.csv",
        ["email", "first_name", "Country"],
        [["anna@firma.de", "Anna", "Germany"], ["bo@corp.us", "Bo", "United States"]],
    )
    assert run(capsys, db_url, "import", "leads", str(leads)).code == 0
    good = tmp_path / "routing.yaml"
    good.write_text(ROUTING, encoding="utf-8")
    return good


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            ROUTING.replace("ben: {weight: 2}", "zoe: {weight: 2}"),
            "line 15, teams.emea.members.zoe: no user 'zoe'",
        ),
        (ROUTING.replace("team: emea", "team: apac"), "line 18, rules.0.team: no team 'apac'"),
        (ROUTING.replace("Europe/Berlin", "Europe/Gotham"), "line 7, teams.emea.timezone: unknown time zone"),
        (
            ROUTING.replace('"09:00-17:00"', '["09:00-13:00", "12:00-17:00"]'),
            "teams.emea.hours.mon-fri: the spans overlap",
        ),
        (
            ROUTING.replace("  - name: everyone\n", "  - name: everyone\n    segment: whales\n"),
            "rules.0.segment: no segment 'whales'",
        ),
        (ROUTING.replace("manager: max", "manager: [max"), "invalid YAML"),
    ],
)
def test_routing_set_with_a_bad_file_exits_2_names_line_and_key_and_stores_nothing(
    capsys: pytest.CaptureFixture[str], db_url: str, tmp_path: Path, text: str, message: str
) -> None:
    _setup(capsys, db_url, tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    result = run(capsys, db_url, "routing", "set", str(bad))
    assert result.code == 2, result.err
    assert message in " ".join(result.err.split())
    assert count(db_url, t.routing_documents) == 0
    assert count(db_url, t.teams) == 0
    assert run(capsys, db_url, "routing", "show").code == 2  # nothing active


def test_routing_end_to_end_promotion_routes_a_rep_may_not_reroute_tick_reports(
    capsys: pytest.CaptureFixture[str], db_url: str, tmp_path: Path
) -> None:
    good = _setup(capsys, db_url, tmp_path)
    assert run(capsys, db_url, "routing", "set", str(good), "--as", "ana").code == 3
    result = run(capsys, db_url, "routing", "set", str(good), "--json")
    assert result.code == 0, result.err
    assert result.json()["version"] == 1
    assert result.json()["teams"] == ["emea"]
    shown = run(capsys, db_url, "routing", "show", "--json").json()
    assert shown["teams"]["emea"]["members"][1]["weight"] == 2.0
    assert shown["rules"][0]["name"] == "everyone"
    assert run(capsys, db_url, "routing", "show").code == 0

    promoted = run(
        capsys,
        db_url,
        "leads",
        "transition",
        "anna@firma.de",
        "promote_mql",
        "--reason",
        "manual",
        "--note",
        "demo call",
    )
    assert promoted.code == 0, promoted.err
    lead = run(capsys, db_url, "leads", "show", "anna@firma.de", "--json").json()
    assert lead["owner"] == "ana"  # the DACH member
    assert [h["action"] for h in lead["history"]][-1] == "assign"
    assert (lead["assignment"]["user"], lead["assignment"]["rule"]) == ("ana", "everyone")
    assert lead["assignment"]["sla_state"] == "pending"
    assert lead["assignment"]["sla_due_at"] is not None
    assert "first response due" in run(capsys, db_url, "leads", "show", "anna@firma.de").out
    explained = run(capsys, db_url, "routing", "explain", "anna@firma.de", "--json").json()
    assert explained["assignments"][0]["rule"] == "everyone"
    assert explained["assignments"][0]["sla"]["state"] == "pending"
    assert run(capsys, db_url, "routing", "explain", "anna@firma.de").code == 0

    refused = run(capsys, db_url, "leads", "assign", "anna@firma.de", "ben", "--as", "ana")
    assert refused.code == 3
    assert "may not re-route" in refused.err
    moved = run(capsys, db_url, "leads", "assign", "anna@firma.de", "ben", "--as", "max", "--json")
    assert moved.code == 0, moved.err
    assert moved.json()["user"] == "ben"
    assert moved.json()["kind"] == "manual"
    assert run(capsys, db_url, "leads", "assign", "anna@firma.de", "--as", "max").code == 2  # no target

    sla = run(capsys, db_url, "routing", "sla", "--json").json()
    assert [(i["user"], i["sla"]["state"]) for i in sla["items"]] == [("ben", "pending")]
    assert run(capsys, db_url, "routing", "sla", "--state", "late").code == 2

    calls = write_csv(
        tmp_path / "calls.csv",
        ["email", "type", "occurred_at", "source"],
        [["anna@firma.de", "call", (datetime.now(UTC) + timedelta(seconds=1)).isoformat(), "call_in"]],
    )
    assert run(capsys, db_url, "import", "activities", str(calls)).code == 0
    ticked = run(capsys, db_url, "tick", "--json")
    assert ticked.code == 0, ticked.err
    doc = ticked.json()
    assert set(doc["results"]) == {"activities", "sla", "handoff", "follow_ups", "webhooks"}
    assert doc["results"]["activities"] == {"followed_up": 0, "promoted": 0}  # imports follow up at once
    assert doc["results"]["sla"]["checked"] == 1
    assert doc["results"]["sla"]["met"] == 1  # the imported call answered ben's deadline
    assert doc["errors"] == {}
    assert doc["skipped"] == []
    assert run(capsys, db_url, "tick").code == 0

    queue = run(capsys, db_url, "routing", "queue", "--json")
    assert queue.code == 0
    assert queue.json()["total"] == 0
    assert run(capsys, db_url, "routing", "queue", "--team", "nowhere").code == 2

    assert run(capsys, db_url, "routing", "away", "ana", "--until", "2026-12-01", "--as", "ben").code == 3
    away = run(capsys, db_url, "routing", "away", "ana", "--until", "2026-12-01", "--as", "max", "--json")
    assert away.code == 0
    assert away.json()["out_of_office_until"] == "2026-12-01"
    assert run(capsys, db_url, "routing", "away", "ana", "--until", "soon").code == 2
    shown = run(capsys, db_url, "routing", "show", "--json").json()
    assert shown["teams"]["emea"]["members"][0]["out_of_office_until"] == "2026-12-01"
    teams = run(capsys, db_url, "teams", "list", "--json").json()["items"]
    assert [(t["name"], t["manager"], t["daily_capacity"]) for t in teams] == [("emea", "max", 10)]
    members = {m["user"]: m for m in teams[0]["members"]}
    assert members["ben"]["open_mqls"] == 1
    assert members["ana"]["out_of_office_until"] == "2026-12-01"
    assert run(capsys, db_url, "teams", "list").code == 0


def test_score_run_routes_the_open_mqls_without_an_owner(
    capsys: pytest.CaptureFixture[str], db_url: str, tmp_path: Path
) -> None:
    good = _setup(capsys, db_url, tmp_path)
    assert run(capsys, db_url, "routing", "set", str(good)).code == 0
    engine = create_engine(normalize_url(db_url))
    with engine.begin() as conn:
        conn.execute(update(t.leads).values(stage="mql", status="open", furthest_stage="mql"))
    engine.dispose()
    result = run(capsys, db_url, "score", "run")
    assert result.code == 0, result.err
    assert "routing: 2 MQLs assigned" in result.err
    items = run(capsys, db_url, "routing", "sla", "--json").json()["items"]
    assert sorted(item["user"] for item in items) == ["ana", "ben"]  # Germany to the DACH member
