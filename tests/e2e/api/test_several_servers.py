"""Several servers on one database (issue 9 section 6): `serve --workers 2` and a second `serve` against
the same SQLite file or PostgreSQL database. Exactly one process runs the background loop (the lease);
each webhook event is delivered once; imports from two processes at once, and the same batch posted to both
servers at once, complete without duplicates; when the loop's holder is killed another process takes over."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from leadstage.adapters.db import tables as t
from leadstage.adapters.db.engine import make_engine
from tests.cli_runner import leadstage_bin, run_process
from tests.e2e.api.test_live_server import _free_port

LEASE_SECONDS = 3
ENV = {"LEADSTAGE_TICK_SECONDS": "0.5", "LEADSTAGE_LEASE_SECONDS": str(LEASE_SECONDS)}
TAKES_OVER = "runs the background loop now"


class Receiver:
    """A local webhook endpoint that keeps every delivery."""

    def __init__(self) -> None:
        self.deliveries: list[dict[str, Any]] = []
        received = self.deliveries

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@contextmanager
def serving(db_url: str, log: Path, *extra: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = _free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [leadstage_bin(), "--db", db_url, "serve", "--port", str(port), *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **ENV},
            start_new_session=True,  # its own process group: the workers stop with it
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _health(base) is not None, 120, f"the server did not start: {log.read_text()}")
        yield base, proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def _health(base: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{base}/api/v1/health", timeout=5) as r:
            return dict(json.loads(r.read()))
    except OSError:
        return None


def _wait(ready: Any, seconds: float, message: str) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            pytest.fail(message)
        time.sleep(0.2)


def _post(base: str, token: str, path: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{base}{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as r:
        return r.status, json.loads(r.read())


def _loop_holder(db_url: str) -> str | None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(select(t.leases.c.holder).where(t.leases.c.name == "background-loop")).first()
    finally:
        engine.dispose()
    return None if row is None else str(row.holder)


def _counts(db_url: str) -> tuple[int, int]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            leads = conn.execute(select(func.count()).select_from(t.leads)).scalar_one()
            emails = conn.execute(select(func.count(func.distinct(t.leads.c.email)))).scalar_one()
    finally:
        engine.dispose()
    return int(leads), int(emails)


def _takeovers(logs: list[Path]) -> list[int]:
    found = []
    for log in logs:
        found += [int(g) for g in re.findall(TAKES_OVER + r" \(lease generation (\d+)\)", log.read_text())]
    return sorted(found)


def test_two_servers_on_one_database_run_the_loop_once_deliver_once_and_import_without_duplicates(
    db_url: str, tmp_path: Path
) -> None:
    assert run_process(db_url, "init").code == 0
    assert (
        run_process(db_url, "users", "add", "ops", "--role", "admin", "--password", "ops-password-1").code
        == 0
    )
    token = json.loads(run_process(db_url, "tokens", "create", "ops", "--scope", "write", "--json").out)[
        "token"
    ]
    receiver = Receiver()
    added = run_process(db_url, "webhooks", "add", receiver.url, "--event", "lead.created", "--json")
    assert added.code == 0, added.err
    people = tmp_path / "people.csv"
    people.write_text(
        "email,first_name,company\n"
        + "".join(f"p{i}@firm{i % 7}.example,P{i},Firm {i % 7}\n" for i in range(300))
    )
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    with ExitStack() as stack:
        a, _proc_a = stack.enter_context(serving(db_url, logs[0], "--workers", "2"))
        b, _proc_b = stack.enter_context(serving(db_url, logs[1]))
        _wait(lambda: _takeovers(logs) == [1], 60, "no process took the background loop")
        holder = _loop_holder(db_url)
        assert holder is not None
        states = Counter(str((_health(base) or {}).get("background_loop")) for base in (a, b, a, b, a, b))
        assert set(states) <= {"ok", "standby"}, states

        # the same batch to both servers at once, and two imports of one file at once
        batch = {"leads": [{"email": f"b{i}@shop.example", "source": "ads"} for i in range(150)]}
        results: list[Any] = []
        posts = [
            threading.Thread(target=lambda u=u: results.append(_post(u, token, "/api/v1/leads/batch", batch)))
            for u in (a, b)
        ]
        imports = [
            subprocess.Popen(
                [leadstage_bin(), "--db", db_url, "import", "leads", str(people), "--json"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={**os.environ, **ENV},
            )
            for _ in range(2)
        ]
        for p in posts:
            p.start()
        outcomes = [proc.communicate(timeout=300) for proc in imports]
        for p in posts:
            p.join(timeout=300)
        assert [proc.returncode for proc in imports] == [0, 0], [e.decode()[-2000:] for _o, e in outcomes]
        assert sorted(code for code, _body in results) == [200, 200]
        assert sum(body["created"] for _code, body in results) == 150
        assert sum(json.loads(out)["created"] for out, _e in outcomes) == 300
        assert _counts(db_url) == (450, 450)

        # every lead.created event reaches the endpoint exactly once
        _wait(
            lambda: len({d["id"] for d in receiver.deliveries}) >= 450, 180, "the events were not delivered"
        )
        time.sleep(3 * LEASE_SECONDS)  # several more ticks on every server: nothing is sent again
        per_event = Counter(d["id"] for d in receiver.deliveries)
        assert len(per_event) == 450
        assert set(per_event.values()) == {1}

        # the loop's holder dies without a word: another process takes the loop over
        assert _takeovers(logs) == [1]
        pid = int(holder.split(":")[1])
        os.kill(pid, signal.SIGKILL)
        _wait(lambda: 2 in _takeovers(logs), 10 * LEASE_SECONDS, "nobody took over the background loop")
        successor = _loop_holder(db_url)
        assert successor is not None
        assert successor != holder
        more = {"leads": [{"email": "after@shop.example"}]}
        assert _post(b, token, "/api/v1/leads/batch", more)[1]["created"] == 1
        _wait(
            lambda: len({d["id"] for d in receiver.deliveries}) == 451, 60, "the new holder delivers nothing"
        )
    receiver.server.shutdown()
    assert set(Counter(d["id"] for d in receiver.deliveries).values()) == {1}
