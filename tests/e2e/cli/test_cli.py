"""The command line, end to end, on SQLite and PostgreSQL (DESIGN.md "Public interfaces")."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, func, select

from leadstage.adapters.db import tables as t
from leadstage.adapters.db.engine import normalize_url
from tests.cli_runner import run


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def count(db_url: str, table: t.Table) -> int:
    engine = create_engine(normalize_url(db_url))
    with engine.connect() as conn:
        n = int(conn.execute(select(func.count()).select_from(table)).scalar_one())
    engine.dispose()
    return n


def snapshot(db_url: str) -> dict[str, int]:
    return {
        name: count(db_url, table)
        for name, table in [
            ("leads", t.leads),
            ("activities", t.activities),
            ("history", t.lead_history),
            ("accounts", t.accounts),
            ("external", t.lead_external_ids),
        ]
    }


LEAD_HEADER = [
    "Email",
    "First Name",
    "Last Name",
    "Job Title",
    "Company",
    "Phone",
    "Lead Source",
    "Budget Band",
]


@pytest.fixture
def leads_file(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / "leads.csv",
        LEAD_HEADER,
        [
            [
                "ana@acme-logistics.com",
                "Ana",
                "Silva",
                "CFO",
                "Acme Logistics",
                "+1 415 555 0100",
                "paid_search",
                "40k",
            ],
            ["Ana+webinar@Acme-Logistics.com", "Ana", "", "", "", "", "", "50k"],  # same person, once more
            ["bob@gmail.com", "Bob", "Stone", "Student", "", "not a phone", "organic_search", "Select"],
            ["not-an-email", "Cy", "Lee", "", "Lee Corp", "", "event", ""],
            [
                "dee@acme-logistics.com",
                "Dee",
                "Ray",
                "VP Ops",
                "Acme Logistics",
                "(415) 555-0199",
                "referral",
                "",
            ],
        ],
    )


def test_init_creates_and_then_reports_up_to_date(capsys, db_url):
    first = run(capsys, db_url, "init", "--json")
    assert first.code == 0
    assert first.json()["schema"]
    again = run(capsys, db_url, "init", "--json")
    assert again.json()["upgraded"] is False


def test_commands_on_a_database_without_schema_say_to_run_init(capsys, tmp_path):
    result = run(capsys, f"sqlite:///{tmp_path / 'empty.db'}", "leads", "list")
    assert result.code == 1
    assert "leadstage init" in result.err


def test_import_leads_recognises_the_same_person_and_keeps_every_column(capsys, db_url, leads_file):
    result = run(capsys, db_url, "import", "leads", str(leads_file), "--json")
    assert result.code == 0, result.err
    report = result.json()
    assert report["created"] == 4
    assert report["updated"] == 1
    assert report["rejected"] == 0
    listing = run(capsys, db_url, "leads", "list", "--json").json()
    assert listing["total"] == 4
    ana = run(capsys, db_url, "leads", "show", "ana@acme-logistics.com", "--json").json()
    assert ana["first_name"] == "Ana"
    assert ana["properties"] == {"Lead Source": "paid_search", "Budget Band": "50k"}
    assert ana["first_source"] == "paid_search"
    assert ana["account"]["domain"] == "acme-logistics.com"
    assert ana["phone_e164"] == "+14155550100"
    assert [h["action"] for h in ana["history"]] == ["create"]
    assert {"id", "email", "stage", "status", "cycle", "properties", "history"} <= set(ana)
    assert set(ana["history"][0]) >= {"action", "actor", "reason", "note", "at", "cycle"}
    dee = run(capsys, db_url, "leads", "show", "dee@acme-logistics.com", "--json").json()
    assert dee["account"]["id"] == ana["account"]["id"]  # one account per company domain


def test_invalid_emails_and_phones_are_kept_flagged_and_not_used_to_match(capsys, db_url, leads_file):
    run(capsys, db_url, "import", "leads", str(leads_file))
    items = run(capsys, db_url, "leads", "list", "--json").json()["items"]
    cy = next(i for i in items if i["first_name"] == "Cy")
    shown = run(capsys, db_url, "leads", "show", str(cy["id"]), "--json").json()
    assert shown["email"] == "not-an-email"
    assert shown["email_valid"] is False
    assert shown["account"] is None
    bob = run(capsys, db_url, "leads", "show", "bob@gmail.com", "--json").json()
    assert bob["phone"] == "not a phone"
    assert bob["phone_valid"] is False
    assert bob["phone_e164"] is None
    assert bob["account"] is None  # free mail never makes an account


def test_reimporting_the_same_file_adds_nothing(capsys, db_url, leads_file):
    run(capsys, db_url, "import", "leads", str(leads_file))
    before = snapshot(db_url)
    again = run(capsys, db_url, "import", "leads", str(leads_file), "--json").json()
    assert again["created"] == 0
    assert snapshot(db_url) == before


def test_placeholders_declared_in_the_map_mean_missing(capsys, db_url, leads_file, tmp_path):
    mapping = tmp_path / "map.yaml"
    mapping.write_text("missing_values: [Select]\ncolumns:\n  Lead Source: source\n")
    run(capsys, db_url, "import", "leads", str(leads_file), "--map", str(mapping))
    bob = run(capsys, db_url, "leads", "show", "bob@gmail.com", "--json").json()
    assert bob["properties"]["Budget Band"] is None


def test_ragged_rows_go_to_the_rejects_file_and_the_rest_import(capsys, db_url, tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text(
        "email,first_name,company\n"
        "a@one.com,A,One\n"
        "b@two.com,B\n"
        "c@three.com,C,Three,extra\n"
        "d@four.com,D,Four\n",
        encoding="utf-8",
    )
    result = run(capsys, db_url, "import", "leads", str(path), "--json")
    assert result.code == 0
    assert result.json()["created"] == 2
    assert result.json()["rejected"] == 2
    rejects = list(csv.DictReader((tmp_path / "ragged.csv.rejects.csv").open(encoding="utf-8")))
    assert [r["email"] for r in rejects] == ["b@two.com", "c@three.com"]
    assert "has 2 cells, the header has 3" in rejects[0]["reason"]
    assert "has 4 cells" in rejects[1]["reason"]
    assert list(rejects[0]) == ["email", "first_name", "company", "reason"]


def test_a_file_in_the_wrong_encoding_is_refused_before_anything_is_stored(
    capsys, db_url, tmp_path, leads_file
):
    run(capsys, db_url, "import", "leads", str(leads_file))
    before = snapshot(db_url)
    path = write_csv(
        tmp_path / "latin.csv",
        ["email", "company"],
        [["z@zurich.ch", "Zürich Versicherung"]],
        encoding="cp1252",
    )
    result = run(capsys, db_url, "import", "leads", str(path))
    assert result.code == 2
    assert "latin.csv: line 2" in result.err
    assert "encoding" in result.err
    assert snapshot(db_url) == before
    mapping = tmp_path / "map.yaml"
    mapping.write_text("encoding: cp1252\n")
    fixed = run(capsys, db_url, "import", "leads", str(path), "--map", str(mapping))
    assert fixed.code == 0
    assert (
        run(capsys, db_url, "leads", "show", "z@zurich.ch", "--json").json()["company"]
        == "Zürich Versicherung"
    )


def test_a_byte_order_mark_does_not_end_up_in_the_first_column_name(capsys, db_url, tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffemail,Region\nbom@acme.com,EMEA\n".encode())
    assert run(capsys, db_url, "import", "leads", str(path)).code == 0
    shown = run(capsys, db_url, "leads", "show", "bom@acme.com", "--json").json()
    assert shown["properties"] == {"Region": "EMEA"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("columns:\n  Nope: email\n", "the file has no column 'Nope'"),
        ("columns:\n  Email: mail_address\n", "unknown field 'mail_address'"),
        ("colums:\n  Email: email\n", "unknown key 'colums'"),
        ("columns: [Email\n", "invalid YAML"),
    ],
)
def test_an_invalid_mapping_exits_2_naming_the_problem(
    capsys, db_url, leads_file, tmp_path, content, message
):
    mapping = tmp_path / "map.yaml"
    mapping.write_text(content)
    result = run(capsys, db_url, "import", "leads", str(leads_file), "--map", str(mapping))
    assert result.code == 2
    assert message in result.err
    assert snapshot(db_url)["leads"] == 0


def test_a_missing_file_or_unknown_format_exits_2(capsys, db_url, tmp_path):
    assert run(capsys, db_url, "import", "leads", str(tmp_path / "nope.csv")).code == 2
    other = tmp_path / "leads.xlsx"
    other.write_text("x")
    result = run(capsys, db_url, "import", "leads", str(other))
    assert result.code == 2
    assert "unknown file type" in result.err


def test_ndjson_and_parquet_import_like_csv(capsys, db_url, tmp_path):
    nd = tmp_path / "leads.ndjson"
    nd.write_text(
        '{"email": "n1@nd.io", "Score Hint": 3}\n{"email": "n2@nd.io", "Score Hint": 4.5}\nnot json\n'
    )
    result = run(capsys, db_url, "import", "leads", str(nd), "--json")
    assert result.json()["created"] == 2
    assert result.json()["rejected"] == 1
    assert "line 3" in (tmp_path / "leads.ndjson.rejects.csv").read_text()
    pq.write_table(
        pa.table({"email": ["p1@pq.io", "p2@pq.io"], "Seats": [10, 25]}), tmp_path / "leads.parquet"
    )
    result = run(capsys, db_url, "import", "leads", str(tmp_path / "leads.parquet"), "--json")
    assert result.json()["created"] == 2
    assert run(capsys, db_url, "leads", "show", "p2@pq.io", "--json").json()["properties"]["Seats"] == 25


def test_accounts_import_one_per_domain_and_leads_link_to_them(capsys, db_url, tmp_path):
    accounts = write_csv(
        tmp_path / "accounts.csv",
        ["Company Name", "Website", "Industry", "Employees", "Annual Revenue", "Country", "Tier"],
        [
            [
                "Acme Logistics",
                "https://www.acme-logistics.com",
                "Logistics",
                "400",
                "52000000",
                "US",
                "gold",
            ],
            ["ACME Logistics Inc", "acme-logistics.com", "", "", "", "", ""],
            ["Nodomain GmbH", "", "Retail", "12", "", "DE", ""],
            ["Broken", "http://", "", "many", "", "", ""],
        ],
    )
    result = run(capsys, db_url, "import", "accounts", str(accounts), "--json")
    assert result.json()["created"] == 2
    assert result.json()["updated"] == 1
    assert result.json()["rejected"] == 1
    again = run(capsys, db_url, "import", "accounts", str(accounts), "--json").json()
    assert again["created"] == 0
    leads = write_csv(tmp_path / "l.csv", ["email"], [["cfo@acme-logistics.com"]])
    run(capsys, db_url, "import", "leads", str(leads))
    shown = run(capsys, db_url, "leads", "show", "cfo@acme-logistics.com", "--json").json()
    assert shown["account"]["name"] == "ACME Logistics Inc"
    assert shown["account"]["employees"] == 400
    assert shown["account"]["industry"] == "Logistics"


ACT_HEADER = ["email", "type", "occurred_at", "source", "campaign", "content", "idempotency_key", "page"]


def test_activities_import_with_times_in_many_formats_and_zones(capsys, db_url, leads_file, tmp_path):
    run(capsys, db_url, "import", "leads", str(leads_file))
    acts = write_csv(
        tmp_path / "acts.csv",
        ACT_HEADER,
        [
            [
                "ana@acme-logistics.com",
                "content_download",
                "2026-01-05T10:00:00Z",
                "paid_search",
                "Q1 Search",
                "eBook: CFO Playbook",
                "k1",
                "",
            ],
            [
                "ANA@acme-logistics.com",
                "webinar_attended",
                "2026-01-12 16:00:00+01:00",
                "email",
                "",
                "Webinar: Freight",
                "k2",
                "",
            ],
            [
                "ana@acme-logistics.com",
                "page_view",
                "12/01/2026 17:30",
                "organic_search",
                "",
                "",
                "",
                "/pricing",
            ],
            [
                "ana@acme-logistics.com",
                "Page View",
                "Mon, 12 Jan 2026 18:00:00 -0500",
                "direct",
                "",
                "",
                "",
                "/pricing",
            ],
            ["ghost@nowhere.com", "page_view", "2026-01-05T10:00:00Z", "", "", "", "", ""],
            ["ana@acme-logistics.com", "telepathy", "2026-01-05T10:00:00Z", "", "", "", "", ""],
            ["ana@acme-logistics.com", "page_view", "last tuesday", "", "", "", "", ""],
        ],
    )
    result = run(capsys, db_url, "import", "activities", str(acts), "--json")
    assert result.code == 0, result.err
    assert result.json()["created"] == 4
    assert result.json()["rejected"] == 3
    reasons = [r["reason"] for r in csv.DictReader((tmp_path / "acts.csv.rejects.csv").open())]
    assert "no lead with email 'ghost@nowhere.com'" in reasons[0]
    assert "unknown activity type 'telepathy'" in reasons[1]
    assert "unreadable timestamp 'last tuesday'" in reasons[2]
    shown = run(capsys, db_url, "leads", "show", "ana@acme-logistics.com", "--json").json()
    times = sorted(a["occurred_at"] for a in shown["activities"])
    assert times == [
        "2026-01-05T10:00:00+00:00",
        "2026-01-12T15:00:00+00:00",
        "2026-01-12T17:30:00+00:00",
        "2026-01-12T23:00:00+00:00",
    ]
    assert shown["latest_source"] == "direct"
    pricing = [a for a in shown["activities"] if a["properties"]]
    assert pricing[0]["properties"] == {"page": "/pricing"}
    again = run(capsys, db_url, "import", "activities", str(acts), "--json").json()
    assert again["created"] == 0
    assert again["unchanged"] == 4


def test_activities_in_the_default_time_zone_setting(capsys, db_url, leads_file, tmp_path, monkeypatch):
    run(capsys, db_url, "import", "leads", str(leads_file))
    monkeypatch.setenv("LEADSTAGE_DEFAULT_TIMEZONE", "America/New_York")
    acts = write_csv(
        tmp_path / "a.csv",
        ["email", "type", "occurred_at"],
        [["dee@acme-logistics.com", "call", "2026-07-01 09:00"]],
    )
    assert run(capsys, db_url, "import", "activities", str(acts)).code == 0
    shown = run(capsys, db_url, "leads", "show", "dee@acme-logistics.com", "--json").json()
    assert shown["activities"][0]["occurred_at"] == "2026-07-01T13:00:00+00:00"


def test_activity_file_without_required_columns_exits_2(capsys, db_url, tmp_path):
    acts = write_csv(tmp_path / "a.csv", ["email", "occurred_at"], [["x@y.com", "2026-01-01"]])
    result = run(capsys, db_url, "import", "activities", str(acts))
    assert result.code == 2
    assert "'type'" in result.err


def walk(capsys, db_url: str, ref: str, *steps: list[str]) -> None:
    for step in steps:
        result = run(capsys, db_url, "leads", "transition", ref, *step)
        assert result.code == 0, (step, result.err)


def test_transitions_follow_the_table_and_are_kept_as_history(capsys, db_url, leads_file):
    run(capsys, db_url, "import", "leads", str(leads_file))
    walk(
        capsys,
        db_url,
        "ana@acme-logistics.com",
        ["promote_mql", "--reason", "manual", "--note", "met at the fair"],
        ["accept"],
        ["reject", "--reason", "bad_timing"],
        ["promote_mql", "--reason", "manual", "--note", "back with budget"],
    )
    shown = run(capsys, db_url, "leads", "show", "ana@acme-logistics.com", "--json").json()
    assert (shown["stage"], shown["status"], shown["cycle"]) == ("mql", "open", 2)
    assert [(h["action"], h["actor"], h["cycle"]) for h in shown["history"]] == [
        ("create", "import", 1),
        ("promote_mql", "admin", 1),
        ("accept", "admin", 1),
        ("reject", "admin", 1),
        ("promote_mql", "admin", 2),
    ]
    assert shown["history"][3]["reason"] == "bad_timing"


def test_a_refused_transition_exits_3_naming_the_allowed_actions(capsys, db_url, leads_file):
    run(capsys, db_url, "import", "leads", str(leads_file))
    before = run(capsys, db_url, "leads", "show", "ana@acme-logistics.com", "--json").json()
    result = run(capsys, db_url, "leads", "transition", "ana@acme-logistics.com", "accept")
    assert result.code == 3
    assert "allowed from lead/open: promote_mql, disqualify" in result.err
    after = run(capsys, db_url, "leads", "show", "ana@acme-logistics.com", "--json").json()
    assert after["history"] == before["history"]
    assert after["version"] == before["version"]


def test_a_missing_reason_exits_2_and_an_unknown_one_too(capsys, db_url, leads_file):
    run(capsys, db_url, "import", "leads", str(leads_file))
    before = run(capsys, db_url, "leads", "show", "ana@acme-logistics.com", "--json").json()
    missing = run(capsys, db_url, "leads", "transition", "ana@acme-logistics.com", "disqualify")
    assert missing.code == 2
    assert "needs a reason code" in missing.err
    unknown = run(
        capsys,
        db_url,
        "leads",
        "transition",
        "ana@acme-logistics.com",
        "disqualify",
        "--reason",
        "ugly",
        "--note",
        "x",
    )
    assert unknown.code == 2
    assert "unknown reason code 'ugly'" in unknown.err
    assert run(capsys, db_url, "leads", "transition", "nobody@nowhere.io", "accept").code == 2
    assert run(capsys, db_url, "leads", "transition", "ana@acme-logistics.com", "fly").code == 2
    after = run(capsys, db_url, "leads", "show", "ana@acme-logistics.com", "--json").json()
    assert (after["history"], after["version"], after["status"]) == (
        before["history"],
        before["version"],
        "open",
    )
    assert after["disqualification"] is None
    assert run(capsys, db_url, "tasks", "list", "--all", "--json").json()["total"] == 0


def test_roles_are_enforced_with_as_user(capsys, db_url, leads_file):
    run(capsys, db_url, "import", "leads", str(leads_file))
    assert (
        run(capsys, db_url, "users", "add", "mia", "--role", "marketing", "--password", "s3cret-pass").code
        == 0
    )
    assert run(capsys, db_url, "users", "add", "rob", "--role", "sales_rep").code == 0
    walk(
        capsys,
        db_url,
        "ana@acme-logistics.com",
        ["promote_mql", "--reason", "manual", "--note", "x", "--as", "mia"],
    )
    refused = run(capsys, db_url, "leads", "transition", "ana@acme-logistics.com", "accept", "--as", "mia")
    assert refused.code == 3
    assert "role marketing may not accept" in refused.err
    walk(capsys, db_url, "ana@acme-logistics.com", ["accept", "--as", "rob"])
    policy = run(
        capsys, db_url, "leads", "transition", "ana@acme-logistics.com", "qualify_sql", "--as", "rob"
    )
    assert policy.code == 3
    assert "budget, authority, need, timeline" in policy.err
    assert (
        run(capsys, db_url, "leads", "transition", "ana@acme-logistics.com", "accept", "--as", "zed").code
        == 2
    )
    users = run(capsys, db_url, "users", "list", "--json").json()
    assert [u["username"] for u in users["items"]] == ["mia", "rob"]


def test_leads_list_counts_every_lead_whatever_its_status_and_filters(capsys, db_url, leads_file):
    run(capsys, db_url, "import", "leads", str(leads_file))
    walk(
        capsys,
        db_url,
        "bob@gmail.com",
        ["disqualify", "--reason", "student_or_job_seeker", "--note", "student"],
    )
    assert run(capsys, db_url, "leads", "list", "--json").json()["total"] == 4
    disq = run(capsys, db_url, "leads", "list", "--status", "disqualified", "--json").json()
    assert disq["total"] == 1
    assert disq["items"][0]["email"] == "bob@gmail.com"
    limited = run(capsys, db_url, "leads", "list", "--limit", "1", "--json").json()
    assert limited["total"] == 4
    assert len(limited["items"]) == 1
    assert run(capsys, db_url, "leads", "list", "--stage", "wizard").code == 2


def test_merge_keeps_activities_and_history_of_both_and_records_who(capsys, db_url, tmp_path):
    leads = write_csv(
        tmp_path / "l.csv",
        ["email", "first_name", "last_name", "company", "crm id"],
        [
            ["jo@acme.io", "Jo", "Park", "Acme", "A-1"],
            ["jo.park@gmail.com", "Jo", "Park", "Acme", "B-2"],
        ],
    )
    mapping = tmp_path / "m.yaml"
    mapping.write_text("columns:\n  crm id: external_id\nid_system: crm\n")
    run(capsys, db_url, "import", "leads", str(leads), "--map", str(mapping))
    acts = write_csv(
        tmp_path / "a.csv",
        ["email", "type", "occurred_at"],
        [
            ["jo@acme.io", "page_view", "2026-02-01T10:00:00Z"],
            ["jo.park@gmail.com", "email_open", "2026-02-02T10:00:00Z"],
        ],
    )
    run(capsys, db_url, "import", "activities", str(acts))
    jo = run(capsys, db_url, "leads", "show", "jo@acme.io", "--json").json()
    assert [d["email"] for d in jo["possible_duplicates"]] == ["jo.park@gmail.com"]
    other = jo["possible_duplicates"][0]["id"]
    result = run(capsys, db_url, "leads", "merge", "jo@acme.io", str(other))
    assert result.code == 0, result.err
    merged = run(capsys, db_url, "leads", "show", "jo@acme.io", "--json").json()
    assert merged["activity_count"] == 2
    assert [h["action"] for h in merged["history"]] == ["create", "create", "merge"]
    assert merged["history"][-1]["actor"] == "admin"
    assert {(e["system"], e["value"]) for e in merged["external_ids"]} == {
        ("crm", "A-1"),
        ("crm", "B-2"),
        ("merged-email", "jopark@gmail.com"),
    }
    assert run(capsys, db_url, "leads", "list", "--json").json()["total"] == 1
    assert run(capsys, db_url, "leads", "show", str(other), "--json").json()["id"] == merged["id"]
    assert run(capsys, db_url, "leads", "show", "B-2", "--json").json()["id"] == merged["id"]
    assert run(capsys, db_url, "leads", "merge", "jo@acme.io", "jo@acme.io").code == 2


def test_exports_write_every_row_in_each_format(capsys, db_url, leads_file, tmp_path):
    run(capsys, db_url, "import", "leads", str(leads_file))
    walk(capsys, db_url, "ana@acme-logistics.com", ["promote_mql", "--reason", "manual", "--note", "x"])
    out = tmp_path / "leads.csv"
    assert run(capsys, db_url, "export", "leads", str(out)).code == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 4
    assert {"email", "stage", "Budget Band", "Lead Source"} <= set(rows[0])
    hist = tmp_path / "history.ndjson"
    assert run(capsys, db_url, "export", "history", str(hist)).code == 0
    lines = [json.loads(x) for x in hist.read_text().splitlines()]
    assert sorted(x["action"] for x in lines) == ["create"] * 4 + ["promote_mql"]
    acts = tmp_path / "acts.parquet"
    assert run(capsys, db_url, "export", "activities", str(acts), "--json").json()["rows"] == 0
    assert pq.read_table(acts).num_rows == 0
    # an exported lead file imports back onto the same leads; only the lead with no usable identity
    # (invalid email, no phone, no external id) cannot be recognised from a file of another shape
    again = run(capsys, db_url, "import", "leads", str(out), "--json").json()
    assert again["created"] == 1
    assert again["unchanged"] + again["updated"] == 3


def test_a_shared_phone_never_joins_two_people_with_different_emails(capsys, db_url, tmp_path):
    leads = write_csv(
        tmp_path / "l.csv",
        ["email", "phone"],
        [
            ["amy@acme.io", "+1 415 555 0100"],
            ["ben@acme.io", "+1 415 555 0100"],  # the switchboard
            ["", "+1 (415) 555-0100"],  # no email: recognised by the phone
        ],
    )
    report = run(capsys, db_url, "import", "leads", str(leads), "--json").json()
    assert (report["created"], report["updated"] + report["unchanged"]) == (2, 1)


@pytest.mark.parametrize(
    "args",
    [
        ["leads", "list", "--limit", "0"],
        ["leads", "list", "--bogus"],
        ["leads", "transition"],
        ["import", "leads"],
    ],
)
def test_usage_errors_exit_2(capsys, sqlite_url, args):
    result = run(capsys, sqlite_url, *args)
    assert result.code == 2
    assert "Traceback" not in result.err


def test_the_same_event_twice_in_a_file_is_stored_once(capsys, db_url, leads_file, tmp_path):
    run(capsys, db_url, "import", "leads", str(leads_file))
    acts = write_csv(
        tmp_path / "dupes.csv",
        ["email", "type", "occurred_at"],
        [
            ["dee@acme-logistics.com", "webinar_attended", "2026-01-05T10:00:00Z"],
            ["dee@acme-logistics.com", "webinar_attended", "2026-01-05T10:00:00Z"],
        ],
    )
    report = run(capsys, db_url, "import", "activities", str(acts), "--json").json()
    assert (report["created"], report["unchanged"]) == (1, 1)
    assert (
        run(capsys, db_url, "leads", "show", "dee@acme-logistics.com", "--json").json()["activity_count"] == 1
    )


def test_a_callers_key_is_scoped_to_its_lead(capsys, db_url, leads_file, tmp_path):
    run(capsys, db_url, "import", "leads", str(leads_file))
    acts = write_csv(
        tmp_path / "keys.csv",
        ["email", "type", "occurred_at", "idempotency_key"],
        [
            ["dee@acme-logistics.com", "form_submit", "2026-01-05T10:00:00Z", "1001"],
            ["bob@gmail.com", "form_submit", "2026-01-06T10:00:00Z", "1001"],
        ],
    )
    assert run(capsys, db_url, "import", "activities", str(acts), "--json").json()["created"] == 2
    assert run(capsys, db_url, "import", "activities", str(acts), "--json").json()["created"] == 0
    for email in ("dee@acme-logistics.com", "bob@gmail.com"):
        assert run(capsys, db_url, "leads", "show", email, "--json").json()["activity_count"] == 1


def test_an_unknown_email_falls_back_to_the_lead_id_on_the_same_row(capsys, db_url, leads_file, tmp_path):
    run(capsys, db_url, "import", "leads", str(leads_file))
    dee = run(capsys, db_url, "leads", "show", "dee@acme-logistics.com", "--json").json()
    acts = write_csv(
        tmp_path / "a.csv",
        ["email", "lead_id", "type", "occurred_at"],
        [["dee.new@elsewhere.com", str(dee["id"]), "page_view", "2026-01-05T10:00:00Z"]],
    )
    assert run(capsys, db_url, "import", "activities", str(acts), "--json").json()["created"] == 1


def test_latest_source_follows_the_newest_import(capsys, db_url, tmp_path):
    first = write_csv(tmp_path / "a.csv", ["email", "Lead Source"], [["ana@acme.io", "webinar"]])
    second = write_csv(tmp_path / "b.csv", ["email", "Lead Source"], [["ana@acme.io", "paid_search"]])
    run(capsys, db_url, "import", "leads", str(first))
    run(capsys, db_url, "import", "leads", str(second))
    shown = run(capsys, db_url, "leads", "show", "ana@acme.io", "--json").json()
    assert (shown["first_source"], shown["latest_source"]) == ("webinar", "paid_search")


def test_long_numbers_and_late_ndjson_keys_are_kept_exactly(capsys, db_url, tmp_path):
    lines = [json.dumps({"email": f"p{i}@corp.io"}) for i in range(1100)]
    lines.append(json.dumps({"email": "late@corp.io", "Budget": 5000, "Tracking": "1234567890123456789"}))
    nd = tmp_path / "late.ndjson"
    nd.write_text("\n".join(lines) + "\n")
    assert run(capsys, db_url, "import", "leads", str(nd)).code == 0
    props = run(capsys, db_url, "leads", "show", "late@corp.io", "--json").json()["properties"]
    assert props == {"Budget": 5000, "Tracking": "1234567890123456789"}


def test_a_merged_address_keeps_finding_the_survivor(capsys, db_url, tmp_path):
    leads = write_csv(
        tmp_path / "l.csv", ["email", "first_name"], [["ana@acme.io", "Ana"], ["bob@beta.io", "Bob"]]
    )
    run(capsys, db_url, "import", "leads", str(leads))
    assert run(capsys, db_url, "leads", "merge", "ana@acme.io", "bob@beta.io").code == 0
    ana = run(capsys, db_url, "leads", "show", "ana@acme.io", "--json").json()
    assert run(capsys, db_url, "leads", "show", "bob@beta.io", "--json").json()["id"] == ana["id"]
    again = run(capsys, db_url, "import", "leads", str(leads), "--json").json()
    assert again["created"] == 0
    acts = write_csv(
        tmp_path / "a.csv",
        ["email", "type", "occurred_at"],
        [["bob@beta.io", "page_view", "2026-01-05T10:00:00Z"]],
    )
    assert run(capsys, db_url, "import", "activities", str(acts), "--json").json()["created"] == 1
    assert run(capsys, db_url, "leads", "show", "ana@acme.io", "--json").json()["activity_count"] == 1
    assert run(capsys, db_url, "leads", "list", "--json").json()["total"] == 1
