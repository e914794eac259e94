"""`leadstage serve` for real on a loopback port: schemathesis against the live OpenAPI schema, and a
journey over HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


def _prepared(tmp_path: Path, demo_leads: int = 200) -> tuple[str, str]:
    db_url = f"sqlite:///{tmp_path / 'live.db'}"
    assert run_process(db_url, "init").code == 0
    if demo_leads:
        assert run_process(db_url, "demo", "--leads", str(demo_leads), "--seed", "3").code == 0
    added = run_process(db_url, "users", "add", "ops", "--role", "admin", "--password", "ops-password-1")
    assert added.code == 0
    made = run_process(db_url, "tokens", "create", "ops", "--scope", "write", "--json")
    return db_url, json.loads(made.out)["token"]


@contextmanager
def _serving(db_url: str, tmp_path: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    port = _free_port()
    log_path = tmp_path / f"serve-{port}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [leadstage_bin(), "--db", db_url, "serve", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180  # imports take long on a loaded machine
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/api/v1/health", timeout=1) as r:
                        if r.status == 200:
                            break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        pytest.fail(f"the server did not start: {log_path.read_text()}")
                    time.sleep(0.1)
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    db_url, token = _prepared(tmp_path)
    with _serving(db_url, tmp_path) as base:
        yield Server(base, token, db_url)


def test_schemathesis_finds_no_server_errors_and_no_schema_violations(server: Server, tmp_path: Path) -> None:
    """`st run` with its default phases (examples, coverage, fuzzing, stateful) and checks, except
    positive_data_acceptance: the domain refuses some schema-valid input on purpose (an unknown reason
    code, a user name that is taken) with 422/409 and a problem naming the field. Revoking tokens is left
    out so that the run cannot revoke the token it runs with. With some sixty operations, 50 examples
    per operation and phase (instead of 100) keep the run near ten minutes on a shared two-core machine:
    the time goes to generating the data, not to the server."""
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
            "--max-examples",
            "50",
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "Authentication failed" not in proc.stdout


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


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


def test_integrating_forms_signed_hooks_batches_and_webhooks_that_survive_a_restart(tmp_path: Path) -> None:
    """JOURNEYS.md 7: forms post to capture, the email tool to a signed hook, the ad platform sends batches
    with idempotency keys (a retry adds nothing), and a stage change reaches the chat tool through a
    signed, retried webhook, also when the chat tool was down and the server restarted meanwhile."""
    received: list[tuple[dict[str, str], bytes]] = []
    state = {"up": False}

    class Chat(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if state["up"]:
                received.append((dict(self.headers), body))
            self.send_response(200 if state["up"] else 503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    chat = ThreadingHTTPServer(("127.0.0.1", 0), Chat)
    threading.Thread(target=chat.serve_forever, daemon=True).start()
    db_url, token = _prepared(tmp_path, demo_leads=0)
    sub = json.loads(
        run_process(
            db_url,
            "webhooks",
            "add",
            f"http://127.0.0.1:{chat.server_address[1]}/in",
            "--event",
            "lead.stage_changed",
            "--json",
        ).out
    )
    hook = json.loads(run_process(db_url, "hooks", "add", "mailer", "--source", "mailer", "--json").out)
    form = json.loads(
        run_process(db_url, "forms", "create", "Contact us", "--redirect", "/thanks", "--json").out
    )
    env = {"LEADSTAGE_TICK_SECONDS": "1"}
    server = Server("", token, db_url)
    with _serving(db_url, tmp_path, env) as base:
        server.base = base
        page = urllib.request.Request(
            f"{base}/api/v1/capture/{form['key']}",
            data=b"email=dana%40northwind.example&first_name=Dana&company=Northwind",
            method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        opener = urllib.request.build_opener(_NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as redirected:
            opener.open(page, timeout=30)
        assert redirected.value.code == 303
        assert redirected.value.headers["Location"] == "/thanks"
        events = json.dumps(
            {
                "activities": [
                    {
                        "email": "dana@northwind.example",
                        "type": "email_click",
                        "occurred_at": "2026-11-02T09:00:00Z",
                    }
                ]
            }
        ).encode()
        stamp = int(time.time())
        mac = hmac.new(hook["secret"].encode(), f"{stamp}.".encode() + events, hashlib.sha256).hexdigest()
        signed = urllib.request.Request(
            f"{base}/api/v1/hooks/mailer",
            data=events,
            method="POST",
            headers={"Content-Type": "application/json", "X-Leadstage-Signature": f"t={stamp},v1={mac}"},
        )
        with urllib.request.urlopen(signed, timeout=30) as r:
            assert json.loads(r.read())["created"] == 1
        batch = {"leads": [{"email": f"ad{i}@retail.example", "source": "paid_social"} for i in range(3)]}
        assert _call(server, "POST", "/api/v1/leads/batch", batch)[1]["created"] == 3
        assert _call(server, "POST", "/api/v1/leads/batch", batch)[1]["created"] == 0  # the retry
        code, moved = _call(
            server,
            "POST",
            "/api/v1/leads/dana@northwind.example/transitions",
            {"action": "promote_mql", "reason": "manual", "note": "asked for a call"},
        )
        assert code == 200, moved
        time.sleep(3)  # the chat tool is down: the delivery fails and waits for its retry
    assert received == []
    pending = json.loads(run_process(db_url, "webhooks", "log", str(sub["id"]), "--json").out)["items"]
    assert [(i["type"], i["status"]) for i in pending] == [("lead.stage_changed", "pending")]
    assert pending[0]["attempts"] >= 1
    state["up"] = True  # the chat tool is back; the server is not running: nothing was lost meanwhile
    assert run_process(db_url, "webhooks", "retry", str(sub["id"])).code == 0  # don't wait for the backoff
    assert run_process(db_url, "tick").code == 0
    chat.shutdown()
    assert len(received) == 1
    headers, body = received[0]
    assert json.loads(body)["data"]["to_stage"] == "mql"
    stamp, mac = (p.split("=", 1)[1] for p in headers["X-Leadstage-Signature"].split(","))
    expected = hmac.new(sub["secret"].encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(mac, expected)
    log = json.loads(run_process(db_url, "webhooks", "log", str(sub["id"]), "--json").out)["items"]
    assert [i["status"] for i in log] == ["delivered"]


def test_serve_logs_json_lines_with_the_request_id(tmp_path: Path) -> None:
    db_url, _token = _prepared(tmp_path, demo_leads=0)
    with _serving(db_url, tmp_path, {"LEADSTAGE_LOG_FORMAT": "json", "LEADSTAGE_TICK_SECONDS": "0"}) as base:
        req = urllib.request.Request(f"{base}/api/v1/health", headers={"X-Request-ID": "probe-7"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.headers["X-Request-ID"] == "probe-7"
            assert json.loads(r.read())["background_loop"] == "off"
    lines = [
        json.loads(line)
        for p in tmp_path.glob("serve-*.log")
        for line in p.read_text().splitlines()
        if line.startswith("{")
    ]
    assert any(line["request_id"] == "probe-7" and "/api/v1/health" in line["message"] for line in lines), (
        lines
    )


def _demo_request(email: str) -> dict[str, object]:
    return {
        "activities": [
            {"email": email, "type": "demo", "occurred_at": "2026-11-02T10:00:00Z", "idempotency_key": "d-1"}
        ]
    }


def test_activities_of_a_batch_are_scored_by_the_server_soon_after_and_none_are_left_at_shutdown(
    tmp_path: Path,
) -> None:
    """ADR 21: the batch is stored when the answer comes; the server's follow-up loop scores it (a demo
    request qualifies: promoted by the system) within about LEADSTAGE_FOLLOW_UP_SECONDS; a server stopped
    before its next run follows up what it answered before it goes."""
    db_url, token = _prepared(tmp_path, demo_leads=0)
    with _serving(db_url, tmp_path, {"LEADSTAGE_FOLLOW_UP_SECONDS": "0.2"}) as base:
        server = Server(base, token, db_url)
        email = "vera@northwind.example"
        assert _call(server, "POST", "/api/v1/leads", {"email": email, "job_title": "COO"})[0] == 201
        assert _call(server, "POST", "/api/v1/activities/batch", _demo_request(email))[1]["created"] == 1
        deadline = time.monotonic() + 20
        while (lead := _call(server, "GET", f"/api/v1/leads/{email}")[1])["stage"] != "mql":
            assert time.monotonic() < deadline, lead
            time.sleep(0.1)
        assert lead["history"][-1]["actor"] == "system"  # type: ignore[index]

    with _serving(db_url, tmp_path, {"LEADSTAGE_FOLLOW_UP_SECONDS": "60"}) as base:
        server = Server(base, token, db_url)
        email = "otto@northwind.example"
        assert _call(server, "POST", "/api/v1/leads", {"email": email, "job_title": "CFO"})[0] == 201
        assert _call(server, "POST", "/api/v1/activities/batch", _demo_request(email))[1]["created"] == 1
        assert _call(server, "GET", f"/api/v1/leads/{email}")[1]["stage"] == "lead"  # not yet: a minute
    shown = run_process(db_url, "leads", "show", email, "--json")
    assert json.loads(shown.out)["stage"] == "mql"  # followed up as the server stopped
