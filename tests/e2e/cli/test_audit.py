"""The audit log: append-only, filled by the changes that matter, readable by administrators."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from leadstage.adapters.db.engine import normalize_url
from tests.cli_runner import run
from tests.e2e.cli.test_cli import write_csv


def test_changes_are_audited_with_who_and_where_and_rows_cannot_be_changed(capsys, db_url, tmp_path) -> None:
    assert run(capsys, db_url, "init").code == 0
    assert (
        run(capsys, db_url, "users", "add", "ops", "--role", "admin", "--password", "long-enough").code == 0
    )
    assert run(capsys, db_url, "users", "add", "mo", "--role", "marketing", "--as", "ops").code == 0
    assert run(capsys, db_url, "users", "add", "eve", "--role", "admin", "--as", "mo").code == 3
    run(capsys, db_url, "tokens", "create", "mo", "--as", "ops")
    run(
        capsys,
        db_url,
        "import",
        "leads",
        str(write_csv(tmp_path / "l.csv", ["email"], [["a@b.example"], ["c@d.example"]])),
    )
    run(capsys, db_url, "leads", "merge", "a@b.example", "c@d.example")
    run(capsys, db_url, "leads", "forget", "a@b.example")
    run(capsys, db_url, "export", "leads", str(tmp_path / "out.csv"))
    log = run(capsys, db_url, "audit", "list", "--json").json()["items"]
    actions = [e["action"] for e in reversed(log)]
    assert actions == ["user.add", "user.add", "token.create", "lead.merge", "lead.forget", "export"]
    assert {e["client"] for e in log} == {"cli"}
    assert "a@b.example" not in str([e for e in log if e["action"] == "lead.forget"])  # no personal data
    by_ops = run(capsys, db_url, "audit", "list", "--actor", "ops", "--json").json()["items"]
    assert [e["action"] for e in by_ops] == ["token.create", "user.add"]
    assert run(capsys, db_url, "audit", "list", "--as", "mo").code == 3
    assert run(capsys, db_url, "audit", "list", "--since", "yesterday-ish").code == 2
    engine = create_engine(normalize_url(db_url))
    for statement in ("UPDATE audit_log SET actor = 'nobody'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    engine.dispose()
    assert len(run(capsys, db_url, "audit", "list", "--json").json()["items"]) == len(log)


def test_only_bulk_roles_import_and_export_and_they_are_refused_before_the_file_is_read(
    capsys, db_url, tmp_path
) -> None:
    assert run(capsys, db_url, "init").code == 0
    run(capsys, db_url, "users", "add", "rita", "--role", "sales_rep")
    run(capsys, db_url, "users", "add", "mo", "--role", "marketing")
    missing = str(tmp_path / "nowhere.csv")
    assert run(capsys, db_url, "import", "leads", missing, "--as", "rita").code == 3
    assert run(capsys, db_url, "export", "leads", str(tmp_path / "o.csv"), "--as", "rita").code == 3
    leads = write_csv(tmp_path / "l.csv", ["email"], [["x@y.example"]])
    assert run(capsys, db_url, "import", "leads", str(leads), "--as", "mo").code == 0
    shown = run(capsys, db_url, "leads", "show", "x@y.example", "--json").json()
    assert shown["history"][0]["actor"] == "mo"
    assert run(capsys, db_url, "export", "leads", str(tmp_path / "o.csv"), "--as", "mo").code == 0
    log = run(capsys, db_url, "audit", "list", "--action", "export", "--json").json()["items"]
    assert log[0]["actor"] == "mo"
