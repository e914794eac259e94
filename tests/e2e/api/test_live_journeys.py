"""JOURNEYS.md 4 over HTTP against a live server: disqualified, remembered, and back; forgotten, yet
recognised.

The journey spans four months, so the server runs in this process (uvicorn on a loopback port, the
app of ``leadstage serve`` with its background tick loop) on a clock the test moves; every step goes
over HTTP: the form posts, the batches, the transitions, the reads, the report. SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import uvicorn

from leadstage.adapters.clock import FixedClock
from leadstage.api.app import create_app
from leadstage.config import Settings
from tests.cli_runner import run

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
VP = "vp@retail-shop.com"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@dataclass
class Live:
    base: str
    clock: FixedClock
    tokens: dict[str, str]

    def call(self, method: str, path: str, body: object | None = None, who: str = "ops") -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def ok(self, method: str, path: str, body: object | None = None, who: str = "ops") -> Any:
        status, doc = self.call(method, path, body, who)
        assert status in (200, 201, 202), (method, path, status, doc)
        return doc

    def form(self, key: str, fields: dict[str, str]) -> int:
        """A browser posting the capture form (no token): the answer is the redirect to the thank-you page."""
        req = urllib.request.Request(
            f"{self.base}/api/v1/capture/{key}",
            data=urllib.parse.urlencode(fields).encode(),
            method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.build_opener(_NoRedirect).open(req, timeout=60) as r:
                return int(r.status)
        except urllib.error.HTTPError as exc:
            return exc.code


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _live(db_url: str, clock: FixedClock) -> Iterator[str]:
    app = create_app(Settings(database_url=db_url, tick_seconds=0.2), clock=clock)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"{base}/api/v1/health", timeout=1) as r:
                    if json.loads(r.read())["background_loop"] == "ok":
                        break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError("the server did not start")
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=60)


def _setup(capsys: pytest.CaptureFixture[str], db_url: str) -> tuple[dict[str, str], str]:
    """The database and the people (the command line, as an administrator would set up a deployment)."""
    assert run(capsys, db_url, "init").code == 0  # the default scoring model and the built-in segments
    tokens = {}
    for name, role in (("ops", "admin"), ("rita", "sales_rep"), ("mia", "marketing")):
        assert run(capsys, db_url, "users", "add", name, "--role", role).code == 0
        tokens[name] = run(capsys, db_url, "tokens", "create", name, "--scope", "write", "--json").json()[
            "token"
        ]
    form = run(capsys, db_url, "forms", "create", "Retail pricing guide", "--redirect", "/thanks", "--json")
    return tokens, form.json()["key"]


def _ticked(live: Live, predicate: Any, what: str) -> Any:
    """Wait for the server's background loops (tick, activity follow-up) to bring something about."""
    for _ in range(300):
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"the tick loop did not {what}")


def test_journey_4_disqualified_remembered_and_back_over_http(
    capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    tokens, key = _setup(capsys, db_url)
    clock = FixedClock(START)
    with _live(db_url, clock) as base:
        live = Live(base, clock, tokens)
        # a VP from a retail company comes in through the website's form
        fields = {
            "email": VP,
            "first_name": "Vic",
            "last_name": "Park",
            "job_title": "VP Operations",
            "company": "Retail Shop",
        }
        assert live.form(key, fields) == 303
        ref = f"/api/v1/leads/{VP}"
        live.ok(
            "POST",
            f"{ref}/transitions",
            {"action": "promote_mql", "reason": "manual", "note": "pricing"},
            "mia",
        )
        live.ok("POST", f"{ref}/transitions", {"action": "accept"}, "rita")
        status, _refused = live.call(
            "POST", f"{ref}/transitions", {"action": "disqualify", "reason": "bad_timing"}, "rita"
        )
        assert status == 422  # a disqualification needs its note; nothing changed
        assert live.ok("GET", ref)["status"] == "working"
        live.ok(
            "POST",
            f"{ref}/transitions",
            {"action": "disqualify", "reason": "bad_timing", "note": "budget frozen until next fiscal year"},
            "rita",
        )
        lead = live.ok("GET", ref)
        dq = lead["disqualification"]
        assert dq["summary"] == "previously disqualified on 2026-03-02 for bad_timing by rita"
        assert dq["active"]
        assert set(dq["remedies"]) == {"remove", "nurture", "follow_up"}
        assert dq["recheck_at"].startswith("2026-05-31")  # 90 days
        nurtured = live.ok("GET", "/api/v1/leads?segment=disqualified-nurture")
        assert [i["email"] for i in nurtured["items"]] == [VP]

        # three weeks later he fills in the form again: recognised at once, kept disqualified
        clock.at = START + timedelta(weeks=3)
        assert live.form(key, fields) == 303
        lead = live.ok("GET", ref)
        assert (lead["stage"], lead["status"], lead["cycle"]) == ("mql", "disqualified", 1)
        resurfaced = [h for h in lead["history"] if h["action"] == "resurfaced"]
        assert len(resurfaced) == 1
        assert "previously disqualified on 2026-03-02 for bad_timing by rita" in resurfaced[0]["note"]
        assert "kept disqualified until 2026-05-31" in resurfaced[0]["note"]
        early = {
            "email": VP,
            "type": "webinar_attended",
            "occurred_at": clock.at.isoformat(),
            "idempotency_key": "w1",
        }
        seen = live.ok("GET", ref)["activity_count"]
        assert live.ok("POST", "/api/v1/activities/batch", {"activities": [early]})["created"] == 1
        # stored and judged by the server's follow-up within a second (ADR 24): still before the re-check
        stored = _ticked(
            live,
            lambda: (found := live.ok("GET", ref))["activity_count"] == seen + 1 and found,
            "store the webinar (the activity follow-up)",
        )
        assert stored["status"] == "disqualified"

        # the re-check comes due: the server's tick loop gives rita one follow-up task
        clock.at = START + timedelta(days=91)
        tasks = _ticked(
            live,
            lambda: live.ok("GET", "/api/v1/tasks?owner=rita", who="rita")["items"],
            "create the follow-up task",
        )
        assert [(t["kind"], t["lead_id"]) for t in tasks] == [("follow_up", lead["id"])]

        # four months after the disqualification he attends a webinar: reopened, a second cycle
        clock.at = START + timedelta(days=120)
        late = {
            "email": VP,
            "type": "webinar_attended",
            "occurred_at": clock.at.isoformat(),
            "idempotency_key": "w2",
        }
        live.ok("POST", "/api/v1/activities/batch", {"activities": [late]})
        lead = _ticked(
            live,
            lambda: (found := live.ok("GET", ref))["cycle"] == 2 and found,
            "reopen the lead (the activity follow-up)",
        )
        assert (lead["stage"], lead["status"], lead["cycle"]) == ("lead", "open", 2)
        reopen = lead["history"][-1]
        assert (reopen["action"], reopen["reason"], reopen["actor"]) == ("reopen", "recheck_due", "system")
        assert "resurfaced via webinar_attended" in reopen["note"]
        assert "re-check date 2026-05-31 has passed" in reopen["note"]
        assert lead["disqualification"]["ended_reason"] == "reopened"
        assert live.ok("GET", "/api/v1/leads?segment=disqualified-nurture")["total"] == 0
        assert (
            live.ok("GET", "/api/v1/tasks?owner=rita", who="rita")["total"] == 0
        )  # the follow-up went with it
        # the funnel counts his second attempt when cycles count as attempts
        once = live.ok("GET", "/api/v1/reports/funnel", who="mia")
        attempts = live.ok("GET", "/api/v1/reports/funnel?per_cycle=true", who="mia")
        assert once["stages"][0]["count"] == 1
        assert attempts["stages"][0]["count"] == 2


def test_journey_4_a_forgotten_person_is_erased_over_http_and_still_recognised_at_the_form(
    capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    tokens, key = _setup(capsys, db_url)
    clock = FixedClock(START)
    with _live(db_url, clock) as base:
        live = Live(base, clock, tokens)
        fields = {"email": VP, "first_name": "Vic", "last_name": "Park", "company": "Retail Shop"}
        assert live.form(key, fields) == 303
        ref = f"/api/v1/leads/{VP}"
        live.ok(
            "POST",
            f"{ref}/transitions",
            {"action": "disqualify", "reason": "competitor", "note": "works at Rival"},
            "mia",
        )
        lead_id = live.ok("GET", ref)["id"]
        status, _denied = live.call("POST", f"/api/v1/leads/{lead_id}/forget", who="rita")
        assert status == 403
        assert live.ok("POST", f"/api/v1/leads/{lead_id}/forget", who="mia") == {
            "id": lead_id,
            "forgotten": True,
        }
        gone = live.ok("GET", f"/api/v1/leads/{lead_id}")
        assert (gone["email"], gone["first_name"], gone["last_name"], gone["company"]) == (
            None,
            None,
            None,
            None,
        )
        assert gone["status"] == "disqualified"
        assert gone["disqualification"]["reason"] == "competitor"
        assert gone["disqualification"]["note"] is None
        assert {e["system"] for e in gone["external_ids"]} == {"forgotten-email"}
        assert live.call("GET", ref)[0] == 404  # the address itself is not stored

        clock.at = START + timedelta(days=10)
        assert live.form(key, fields) == 303
        again = live.ok("GET", ref)
        assert again["id"] == lead_id
        assert again["status"] == "disqualified"
        assert again["disqualification"]["summary"].endswith("for competitor by mia")
        assert again["history"][-1]["action"] == "resurfaced"
