"""`leadstage serve` for real on a loopback port: schemathesis against the live OpenAPI schema, and a
journey over HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli_runner import leadstage_bin, run_process


@dataclass
class Server:
    base: str
    token: str
    db_url: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    db_url = f"sqlite:///{tmp_path / 'live.db'}"
    assert run_process(db_url, "init").code == 0
    assert run_process(db_url, "demo", "--leads", "200", "--seed", "3").code == 0
    assert (
        run_process(db_url, "users", "add", "ops", "--role", "admin", "--password", "ops-password-1").code
        == 0
    )
    made = run_process(db_url, "tokens", "create", "ops", "--scope", "write", "--json")
    token = json.loads(made.out)["token"]
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [leadstage_bin(), "--db", db_url, "serve", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"{base}/api/v1/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(f"the server did not start: {(tmp_path / 'serve.log').read_text()}")
        yield Server(base, token, db_url)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_schemathesis_finds_no_server_errors_and_no_schema_violations(server: Server, tmp_path: Path) -> None:
    """`st run` with its default phases (examples, coverage, fuzzing, stateful) and checks, except
    positive_data_acceptance: the domain refuses some schema-valid input on purpose (an unknown reason
    code, a user name that is taken) with 422/409 and a problem naming the field. Revoking tokens is left
    out so that the run cannot revoke the token it runs with."""
    st = str(Path(sys.executable).with_name("st"))
    proc = subprocess.run(
        [
            st,
            "run",
            f"{server.base}/api/openapi.json",
            "--wait-for-schema",
            "30",
            "--header",
            f"Authorization: Bearer {server.token}",
            "--exclude-checks",
            "positive_data_acceptance",
            "--exclude-operation-id",
            "revoke_token_api_v1_tokens__token_id__delete",
            "--seed",
            "20261122",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "Authentication failed" not in proc.stdout


def _call(
    server: Server, method: str, path: str, body: object | None = None
) -> tuple[int, dict[str, object]]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        server.base + path,
        data=data,
        method=method,
        headers={
            "Authorization": f"Bearer {server.token}",
            **({"Content-Type": "application/json"} if data else {}),
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_a_lead_from_capture_to_customer_over_http(server: Server) -> None:
    """JOURNEYS.md 2 over HTTP, the parts that exist: an integration pushes a lead and its activities,
    sales accept, qualify with BANT, open and win the opportunity; the stages come back out."""
    email = "vera@northwind.example"
    status, created = _call(
        server,
        "POST",
        "/api/v1/leads",
        {"email": email, "first_name": "Vera", "job_title": "COO", "company": "Northwind"},
    )
    assert status == 201, created
    batch = {
        "activities": [
            {
                "email": email,
                "type": "webinar_attended",
                "occurred_at": "2026-11-01T10:00:00Z",
                "idempotency_key": "v-1",
            },
            {"email": email, "type": "demo", "occurred_at": "2026-11-02T10:00:00Z", "idempotency_key": "v-2"},
        ]
    }
    assert _call(server, "POST", "/api/v1/activities/batch", batch)[1]["created"] == 2
    assert _call(server, "POST", "/api/v1/activities/batch", batch)[1]["created"] == 0
    ref = f"/api/v1/leads/{email}"
    _status, lead = _call(server, "GET", ref)
    if lead["stage"] == "lead":  # not promoted by the scores: marketing promotes by hand
        _call(
            server,
            "POST",
            f"{ref}/transitions",
            {"action": "promote_mql", "reason": "manual", "note": "asked for a demo"},
        )
    steps = [
        ("transitions", {"action": "accept"}),
        (
            "qualification",
            {
                "criteria": {
                    "budget": "confirmed amount=20000 currency=EUR",
                    "authority": "decision_maker",
                    "need": "confirmed",
                    "timeline": "Q1 2027",
                }
            },
        ),
        ("transitions", {"action": "qualify_sql"}),
        (
            "transitions",
            {"action": "open_opportunity", "amount": "20000", "currency": "EUR", "close_date": "2027-02-01"},
        ),
        ("transitions", {"action": "win", "amount": "19000", "currency": "EUR", "close_date": "2027-01-25"}),
    ]
    for path, body in steps:
        code, doc = _call(server, "POST", f"{ref}/{path}", body)
        assert code == 200, (path, body, doc)
    _status, lead = _call(server, "GET", ref)
    assert (lead["stage"], lead["furthest_stage"]) == ("customer", "customer")
    actions = [h["action"] for h in lead["history"]]
    assert actions[-4:] == ["accept", "qualify_sql", "open_opportunity", "win"]
