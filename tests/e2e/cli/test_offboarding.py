"""`leadstage users deactivate`: history kept, login and tokens blocked, open work handed on by the rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leadstage.bootstrap import build
from leadstage.config import Settings
from leadstage.domain.errors import Unauthenticated
from leadstage.services import access
from tests.cli_runner import run
from tests.e2e.cli.test_routing_cli import _setup


def test_a_deactivated_rep_s_mqls_are_routed_again_and_worked_leads_go_to_the_manager(
    capsys, db_url, tmp_path: Path
) -> None:
    routing_file = _setup(capsys, db_url, tmp_path)
    assert run(capsys, db_url, "routing", "set", str(routing_file)).code == 0
    token = json.loads(run(capsys, db_url, "tokens", "create", "ana", "--json").out)["token"]
    for email in ("anna@firma.de", "bo@corp.us"):
        run(capsys, db_url, "leads", "transition", email, "promote_mql", "--reason", "manual", "--note", "x")
        run(capsys, db_url, "leads", "assign", email, "ana")
    run(capsys, db_url, "leads", "transition", "bo@corp.us", "accept", "--as", "ana")
    before = run(capsys, db_url, "leads", "show", "anna@firma.de", "--json").json()["history"]

    refused = run(capsys, db_url, "users", "deactivate", "ana", "--as", "max")
    assert refused.code == 3
    done = run(capsys, db_url, "users", "deactivate", "ana", "--json")
    assert done.code == 0, done.err
    report = done.json()
    assert (report["rerouted"], report["to_manager"], report["manager"]) == (1, 1, "max")

    anna = run(capsys, db_url, "leads", "show", "anna@firma.de", "--json").json()
    assert anna["owner"] == "ben"  # the only active member left
    assert anna["history"][: len(before)] == before  # nothing rewritten
    assert [h["action"] for h in anna["history"]][len(before)] == "reassign"
    bo = run(capsys, db_url, "leads", "show", "bo@corp.us", "--json").json()
    assert (bo["owner"], bo["status"]) == ("max", "working")
    users = {u["username"]: u for u in run(capsys, db_url, "users", "list", "--json").json()["items"]}
    assert users["ana"]["active"] is False
    c = build(Settings(database_url=db_url))
    try:
        with c.uow() as uow, pytest.raises(Unauthenticated):
            access.authenticate_token(uow, token)
    finally:
        c.close()
    acting = run(capsys, db_url, "leads", "transition", "bo@corp.us", "qualify_sql", "--as", "ana")
    assert acting.code == 2
    assert "deactivated" in acting.err
    assert run(capsys, db_url, "users", "deactivate", "ana").code == 2  # already
