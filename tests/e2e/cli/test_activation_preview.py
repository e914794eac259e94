"""Activating a scoring model shows first how many leads it would promote now, against the teams' hand-off
capacity left today; promotions beyond it wait in the ranked queue (issue 9 section 7). SQLite and
PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_runner import run
from tests.e2e.cli.test_cli import write_csv

ROUTING = """\
name: small team
teams:
  emea:
    manager: max
    timezone: UTC
    hours:
      mon-sun: "00:00-24:00"
    first_response: 4h
    daily_capacity: 2
    members:
      ana: {}
      ben: {}
rules:
  - name: everyone
    team: emea
"""

EAGER = """\
name: eager model
engagement:
  rules:
    - {name: pricing page, activity: page_view, points: 10, qualifies: true}
grades:
  fit: {A: {min: 60}, B: {min: 40, max: 60}, C: {min: 20, max: 40}, D: {max: 20}}
  engagement: {1: {min: 50}, 2: {min: 28, max: 50}, 3: {min: 10, max: 28}, 4: {max: 10}}
mql:
  when: [{fit: A, engagement: 1}]
"""


@pytest.fixture
def company(capsys: pytest.CaptureFixture[str], db_url: str, tmp_path: Path) -> Path:
    assert run(capsys, db_url, "init").code == 0
    for name, role in (("max", "sales_manager"), ("ana", "sales_rep"), ("ben", "sales_rep")):
        assert run(capsys, db_url, "users", "add", name, "--role", role).code == 0
    people = [[f"p{i}@firm{i}.example", f"P{i}"] for i in range(7)]
    assert (
        run(
            capsys,
            db_url,
            "import",
            "leads",
            str(write_csv(tmp_path / "l.csv", ["email", "first_name"], people)),
        ).code
        == 0
    )
    views = [[f"p{i}@firm{i}.example", "page_view", "2026-11-01T10:00:00Z"] for i in range(5)]
    acts = write_csv(tmp_path / "a.csv", ["email", "type", "occurred_at"], views)
    assert run(capsys, db_url, "import", "activities", str(acts)).code == 0
    routing = tmp_path / "routing.yaml"
    routing.write_text(ROUTING, encoding="utf-8")
    assert run(capsys, db_url, "routing", "set", str(routing)).code == 0
    model = tmp_path / "eager.yaml"
    model.write_text(EAGER, encoding="utf-8")
    return model


def test_the_preview_counts_the_promotions_and_stores_nothing(
    capsys: pytest.CaptureFixture[str], db_url: str, company: Path
) -> None:
    shown = run(capsys, db_url, "score", "activate", str(company), "--preview", "--json").json()
    assert shown["activated"] is False
    assert shown["preview"] == {
        "would_promote": 5,
        "capacity_left_today": 2,
        "handed_over_today": 2,
        "waiting": 3,
        "routing": True,
        "reads_predictive": True,
        "teams": [{"team": "emea", "daily_capacity": 2, "handed_today": 0, "queued": 0}],
    }
    text = run(capsys, db_url, "score", "activate", str(company), "--preview")
    assert "promotes 5 leads to MQL now" in text.err
    assert "2 go to sales, 3 wait in the ranked queue" in text.err
    assert run(capsys, db_url, "leads", "list", "--stage", "mql", "--json").json()["total"] == 0
    models = run(capsys, db_url, "score", "explain", "p0@firm0.example", "--json").json()
    assert "pricing page" not in str(models)  # the default model is still the active one


def test_activating_promotes_what_it_showed_and_the_rest_wait_in_the_queue(
    capsys: pytest.CaptureFixture[str], db_url: str, company: Path
) -> None:
    done = run(capsys, db_url, "score", "activate", str(company), "--json").json()
    assert done["preview"]["would_promote"] == done["promoted"] == 5
    assert run(capsys, db_url, "leads", "list", "--stage", "mql", "--json").json()["total"] == 5
    assert (
        run(capsys, db_url, "leads", "list", "--owner", "none", "--stage", "mql", "--json").json()["total"]
        == 3
    )
    queue = run(capsys, db_url, "routing", "queue", "--team", "emea", "--json").json()
    assert [item["position"] for item in queue["items"]] == [1, 2, 3]
    again = run(capsys, db_url, "score", "activate", str(company), "--preview", "--json").json()
    assert again["preview"]["would_promote"] == 0  # promoted once per cycle
    assert again["preview"]["capacity_left_today"] == 0
