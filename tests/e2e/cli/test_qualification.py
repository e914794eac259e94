"""Sales review, BANT to SQL, conversion and advocacy through the CLI (issue 4 sections 5-7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_runner import run
from tests.e2e.cli.test_cli import LEAD_HEADER, write_csv

ANA = "ana@acme-logistics.com"


@pytest.fixture
def working_mql(capsys, db_url, tmp_path: Path) -> str:
    """Ana, an MQL accepted by rep rita; marketer mo exists too."""
    rows = [[ANA, "Ana", "Silva", "CFO", "Acme Logistics", "+1 415 555 0100", "paid_search", "40k"]]
    run(capsys, db_url, "import", "leads", str(write_csv(tmp_path / "l.csv", LEAD_HEADER, rows)))
    for name, role in (("rita", "sales_rep"), ("mo", "marketing")):
        assert (
            run(capsys, db_url, "users", "add", name, "--role", role, "--password", "long-enough-pw").code
            == 0
        )
    assert (
        run(
            capsys, db_url, "leads", "transition", ANA, "promote_mql", "--reason", "manual", "--note", "x"
        ).code
        == 0
    )
    assert run(capsys, db_url, "leads", "transition", ANA, "accept", "--as", "rita").code == 0
    return ANA


def test_bant_gates_sql_and_says_what_is_missing(capsys, db_url, working_mql):
    part = run(
        capsys,
        db_url,
        "leads",
        "bant",
        ANA,
        "--budget",
        "confirmed amount=50,000 currency=eur evidence='CFO on the call'",
        "--need",
        "confirmed pain='slow hand-off'",
        "--as",
        "rita",
        "--json",
    )
    assert part.code == 0, part.err
    assert part.json()["missing"] == ["authority", "timeline"]
    refused = run(capsys, db_url, "leads", "transition", ANA, "qualify_sql", "--as", "rita")
    assert refused.code == 3
    assert "missing authority, timeline" in refused.err
    run(
        capsys,
        db_url,
        "leads",
        "bant",
        ANA,
        "--authority",
        "decision_maker role=CFO",
        "--timeline",
        "Q2 2027",
        "--as",
        "rita",
    )
    assert run(capsys, db_url, "leads", "transition", ANA, "qualify_sql", "--as", "rita").code == 0
    assert run(capsys, db_url, "leads", "show", ANA, "--json").json()["stage"] == "sql"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--budget", "confirmed amount=lots"], "--budget amount: a number"),
        (["--authority", "boss"], "--authority level: one of decision_maker, influencer, none"),
        (["--timeline", "soonish"], "--timeline target: a date YYYY-MM-DD or a window"),
        (["--set", "metrics=confirmed"], "bant has no criterion 'metrics'"),
        (["--budget", "confirmed colour=red"], "unknown field 'colour'"),
    ],
)
def test_bant_values_of_the_wrong_type_exit_2_and_store_nothing(capsys, db_url, working_mql, args, message):
    result = run(capsys, db_url, "leads", "bant", ANA, *args, "--as", "rita")
    assert result.code == 2
    assert message in result.err
    check = run(capsys, db_url, "leads", "bant", ANA, "--need", "unclear", "--as", "rita", "--json").json()
    assert check["missing"] == ["budget", "authority", "need", "timeline"]


def test_only_sales_records_qualification(capsys, db_url, working_mql):
    result = run(capsys, db_url, "leads", "bant", ANA, "--need", "confirmed", "--as", "mo")
    assert result.code == 3
    assert "only sales" in result.err


def test_a_team_policy_and_another_framework_come_from_the_qualification_file(
    capsys, db_url, working_mql, tmp_path, monkeypatch
):
    setup = tmp_path / "qualification.yaml"
    setup.write_text(
        """
frameworks:
  - name: bant
    criteria:
      budget: {fields: {status: [confirmed, planned, none, unknown]}, confirmed_when: {status: [confirmed]}}
      authority: {fields: {level: [decision_maker, influencer, none]}, confirmed_when: {level: [decision_maker]}}
      need: {fields: {status: [confirmed, unclear, none]}, confirmed_when: {status: [confirmed]}}
      timeline: {fields: {target: window}}
    policy: {required: [need], optional: [budget, authority, timeline], at_least: 2}
  - name: meddic
    criteria:
      metrics: {fields: {status: [confirmed, unknown]}, confirmed_when: {status: [confirmed]}}
      champion: {fields: {name: text}}
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("LEADSTAGE_QUALIFICATION_FILE", str(setup))
    out = run(
        capsys,
        db_url,
        "leads",
        "bant",
        ANA,
        "--need",
        "confirmed",
        "--budget",
        "confirmed",
        "--as",
        "rita",
        "--json",
    )
    assert out.json()["missing"] == ["1 more of authority, timeline"]
    run(capsys, db_url, "leads", "bant", ANA, "--timeline", "3 months", "--as", "rita")
    meddic = run(
        capsys,
        db_url,
        "leads",
        "bant",
        ANA,
        "--framework",
        "meddic",
        "--set",
        "metrics=confirmed",
        "--as",
        "rita",
        "--json",
    )
    assert meddic.json()["missing"] == ["champion"]
    assert run(capsys, db_url, "leads", "transition", ANA, "qualify_sql", "--as", "rita").code == 0

    setup.write_text("frameworks:\n  - name: meddic\n    criteria: {}\n", encoding="utf-8")
    bad = run(capsys, db_url, "leads", "bant", ANA, "--need", "confirmed", "--as", "rita")
    assert bad.code == 2
    assert "frameworks[0].criteria" in bad.err


def test_conversion_to_customer_and_evangelist_on_a_referral(capsys, db_url, working_mql, tmp_path):
    run(
        capsys,
        db_url,
        "leads",
        "bant",
        ANA,
        "--budget",
        "confirmed",
        "--authority",
        "decision_maker",
        "--need",
        "confirmed",
        "--timeline",
        "2027-03-31",
        "--as",
        "rita",
    )
    steps = [
        ["qualify_sql"],
        ["open_opportunity", "--amount", "12000", "--currency", "EUR", "--close-date", "2027-01-31"],
        ["win", "--amount", "11500", "--currency", "EUR", "--close-date", "2027-01-20"],
    ]
    for step in steps:
        result = run(capsys, db_url, "leads", "transition", ANA, *step, "--as", "rita")
        assert result.code == 0, result.err
    missing_amount = run(capsys, db_url, "leads", "transition", ANA, "open_opportunity", "--as", "rita")
    assert missing_amount.code == 2
    activities = write_csv(
        tmp_path / "a.csv",
        ["email", "type", "occurred_at", "score"],
        [[ANA, "nps_response", "2027-02-01T10:00:00Z", "7"]],
    )
    run(capsys, db_url, "import", "activities", str(activities))
    assert (
        run(capsys, db_url, "leads", "show", ANA, "--json").json()["stage"] == "customer"
    )  # a 7 is no praise
    referral = write_csv(
        tmp_path / "r.csv", ["email", "type", "occurred_at"], [[ANA, "referral_made", "2027-02-03T10:00:00Z"]]
    )
    run(capsys, db_url, "import", "activities", str(referral))
    shown = run(capsys, db_url, "leads", "show", ANA, "--json").json()
    assert shown["stage"] == "evangelist"
    last = shown["history"][-1]
    assert (last["action"], last["actor"]) == ("advocate", "system")
