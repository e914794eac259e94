"""`leadstage score backtest` end to end on both databases, on the demo company (journey 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadstage.adapters.clock import FixedClock
from leadstage.adapters.scoring_yaml import default_model_source
from leadstage.bootstrap import build
from leadstage.config import Settings
from tests.cli_runner import run
from tests.conftest import NOW

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "src/leadstage/adapters/models/default_scoring.yaml"
FIGURES = {"mqls", "sqls", "customers", "precision_sql", "precision_customer"}
TOTALS = FIGURES | {"mean_weekly_mqls", "recall_customer"}


@pytest.fixture
def fixed_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's clock says NOW, so the demo company (built relative to now) is the same every day."""
    monkeypatch.setattr("leadstage.bootstrap.SystemClock", lambda: FixedClock(NOW))


@pytest.fixture
def demo_db(capsys, db_url, fixed_now):
    assert run(capsys, db_url, "init").code == 0
    result = run(capsys, db_url, "demo", "--leads", "300", "--seed", "7")
    assert result.code == 0, result.err
    return db_url


@pytest.fixture
def stricter(tmp_path: Path) -> Path:
    """The default model with "at least B and level 2" tightened to "at least A and level 2"."""
    source = default_model_source()
    assert "- {fit: B, engagement: 2}" in source
    path = tmp_path / "stricter.yaml"
    path.write_text(source.replace("- {fit: B, engagement: 2}", "- {fit: A, engagement: 2}"))
    return path


def models_of(db_url: str) -> list[tuple[int, bool]]:
    c = build(Settings(database_url=db_url))
    try:
        with c.uow() as uow:
            return [(m.version, m.active) for m in uow.scoring.models()]
    finally:
        c.close()


def backtest(capsys, db_url: str, *args: str):
    result = run(capsys, db_url, "score", "backtest", *args, "--json")
    assert result.code == 0, result.err
    return result.json()


def test_backtests_the_default_and_a_stricter_model_beside_the_active_one(
    capsys, demo_db, stricter, tmp_path
):
    before = models_of(demo_db)
    default = backtest(capsys, demo_db, str(DEFAULT_MODEL))
    assert set(default) >= {"from", "to", "weeks", "totals", "capacity"}
    assert default["capacity"] is None
    weeks = default["weeks"]
    assert 52 <= len(weeks) <= 54  # a year of history, in whole ISO weeks
    assert weeks[0]["start"] == default["from"]
    assert all(set(w) >= {"week", "candidate", "active"} for w in weeks)
    assert set(weeks[0]["candidate"]) == FIGURES
    assert set(default["totals"]["candidate"]) >= TOTALS
    cand, active = default["totals"]["candidate"], default["totals"]["active"]
    assert cand == active  # the candidate is the active (default) model
    assert cand["mqls"] == sum(w["candidate"]["mqls"] for w in weeks) > 0
    assert cand["mean_weekly_mqls"] == round(cand["mqls"] / len(weeks), 2)
    assert 0 < cand["precision_sql"] <= 1
    assert cand["customers_won"] > 0
    assert 0 <= cand["recall_customer"] <= 1

    strict = backtest(capsys, demo_db, str(stricter))
    s, a = strict["totals"]["candidate"], strict["totals"]["active"]
    assert a == active
    assert s["mqls"] < a["mqls"]
    assert s["precision_sql"] >= a["precision_sql"]
    assert s["precision_customer"] >= a["precision_customer"]
    assert models_of(demo_db) == before  # a backtest stores and activates nothing


def test_capacity_proposes_an_engagement_threshold_that_fits(capsys, demo_db):
    plain = backtest(capsys, demo_db, str(DEFAULT_MODEL))
    mean = plain["totals"]["candidate"]["mean_weekly_mqls"]
    per_week = max(1, int(mean / 2))
    assert per_week < mean
    doc = backtest(capsys, demo_db, str(DEFAULT_MODEL), "--capacity", str(per_week))
    capacity = doc["capacity"]
    assert set(capacity) >= {
        "per_week",
        "threshold",
        "mean_weekly_mqls",
        "precision_sql",
        "precision_customer",
        "recall_customer",
    }
    assert capacity["per_week"] == per_week
    assert capacity["threshold"] is not None
    assert capacity["mean_weekly_mqls"] <= per_week
    assert len(capacity["weeks"]) == len(doc["weeks"])
    assert sum(w["mqls"] for w in capacity["weeks"]) <= per_week * len(doc["weeks"])
    # the unthresholded figures are unchanged by asking for a capacity
    assert doc["totals"] == plain["totals"]
    # a capacity the candidate already fits needs no threshold
    roomy = backtest(capsys, demo_db, str(DEFAULT_MODEL), "--capacity", str(int(mean) + 1))
    assert roomy["capacity"]["threshold"] is None


def test_the_readable_report_and_the_chart(capsys, demo_db, stricter, tmp_path):
    png = tmp_path / "backtest.png"
    result = run(capsys, demo_db, "score", "backtest", str(stricter), "--capacity", "2", "--png", str(png))
    assert result.code == 0, result.err
    assert "ISO week" in result.out
    assert "Totals over" in result.out
    assert "Capacity 2 lead(s) a week" in result.out
    assert f"chart written to {png}" in result.err
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000


def test_a_range_limits_the_weeks(capsys, demo_db):
    doc = backtest(capsys, demo_db, str(DEFAULT_MODEL), "--from", "2026-06-03", "--to", "2026-06-30")
    assert (doc["from"], doc["to"]) == ("2026-06-01", "2026-07-05")
    assert [w["week"] for w in doc["weeks"]] == ["2026-W23", "2026-W24", "2026-W25", "2026-W26", "2026-W27"]


def test_an_invalid_candidate_exits_2_and_stores_nothing(capsys, db_url, tmp_path):
    assert run(capsys, db_url, "init").code == 0
    before = models_of(db_url)
    bad = tmp_path / "bad.yaml"
    bad.write_text(default_model_source().replace("{half_life_days: 21}", "{half_life_days: -1}", 1))
    result = run(capsys, db_url, "score", "backtest", str(bad), "--from", "2026-01-01", "--to", "2026-02-01")
    assert result.code == 2
    assert "engagement.rules[0].decay.half_life_days: must be greater than zero" in result.err
    assert "line 32" in result.err
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(default_model_source().replace("activity: chat,", "activity: chatt,"))
    result = run(
        capsys, db_url, "score", "backtest", str(unknown), "--from", "2026-01-01", "--to", "2026-02-01"
    )
    assert result.code == 2
    assert "unknown activity type 'chatt'" in result.err
    assert run(capsys, db_url, "score", "backtest", str(tmp_path / "missing.yaml")).code == 2
    assert models_of(db_url) == before == [(1, True)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "2026-03-09", "--to", "2026-03-01"), "the range is reversed"),
        (("--from", "2026-02-30"), "is not an ISO date"),
        (("--to", ""), "--to: empty"),
        (("--capacity", "0"), "--capacity"),
        ((), "nothing to backtest"),  # no leads or activities yet
    ],
)
def test_bad_ranges_and_capacities_exit_2(capsys, db_url, args, message):
    assert run(capsys, db_url, "init").code == 0
    result = run(capsys, db_url, "score", "backtest", str(DEFAULT_MODEL), *args)
    assert result.code == 2
    assert message in result.err


def test_without_an_active_model_only_the_candidate_is_shown(capsys, db_url, tmp_path):
    # a migrated database that never ran `init` has no scoring model
    assert models_of(db_url) == []
    png = tmp_path / "empty.png"
    result = run(
        capsys,
        db_url,
        "score",
        "backtest",
        str(DEFAULT_MODEL),
        "--from",
        "2026-01-05",
        "--to",
        "2026-01-11",
        "--png",
        str(png),
        "--json",
    )
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["totals"]["active"] is None
    assert doc["weeks"] == [
        {
            "week": "2026-W02",
            "start": "2026-01-05",
            "candidate": {
                "mqls": 0,
                "sqls": 0,
                "customers": 0,
                "precision_sql": None,
                "precision_customer": None,
            },
            "active": None,
        }
    ]
    assert "no active scoring model" in result.err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # a chart of an empty week still draws
