"""Webhooks: events from the durable outbox, signed, retried with backoff, never lost or doubled; signed
inbound hooks with replay protection."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from leadstage.adapters.clock import FixedClock
from leadstage.adapters.http import UrllibSender
from leadstage.bootstrap import build
from leadstage.config import Settings
from leadstage.domain import webhooks as wh
from leadstage.domain.errors import Unauthenticated
from leadstage.domain.stages import Actor, Role, TransitionRequest
from leadstage.services import leads as lead_service
from leadstage.services import webhooks
from tests.conftest import NOW
from tests.e2e.api.conftest import Api

ADMIN = Actor("admin", Role.ADMIN)


class Receiver:
    """A local HTTP endpoint that records deliveries and fails the first ``fail`` of them."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.fail = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.fail > 0:
                    receiver.fail -= 1
                    self.send_response(503)
                else:
                    receiver.received.append((dict(self.headers), body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def test_events_are_delivered_signed_once_each_and_retried_after_failures(container, receiver) -> None:
    clock = container.clock
    sender = UrllibSender(timeout=5)
    with container.uow() as uow:
        _sub, secret = webhooks.add_subscription(
            uow, receiver.url, ["lead.created", "lead.stage_changed"], actor=ADMIN, at=NOW
        )
        uow.commit()
    with container.uow() as uow:
        _lead, _o, _w = lead_service.upsert_lead(
            uow, lead_service.LeadInput(email="ana@acme.example"), normalizer=container.identity, at=NOW
        )
        uow.commit()
    with container.uow() as uow:
        request = TransitionRequest("promote_mql", reason="manual", note="fair")
        lead_service.transition_lead(uow, "ana@acme.example", request, actor=ADMIN, at=NOW)
        uow.commit()
    receiver.fail = 1  # the first delivery meets an outage
    with container.uow() as uow:
        first = webhooks.run(uow, sender, NOW)
        uow.commit()
    assert first == {"queued": 2, "delivered": 1, "retrying": 1, "failed": 0}
    with container.uow() as uow:  # nothing new, nothing due yet: the retry waits its backoff
        assert webhooks.run(uow, sender, NOW) == {"queued": 0, "delivered": 0, "retrying": 0, "failed": 0}
    later = NOW + timedelta(seconds=wh.backoff_seconds(1))
    with container.uow() as uow:
        assert webhooks.run(uow, sender, later)["delivered"] == 1
        uow.commit()
    types = sorted(json.loads(body)["type"] for _h, body in receiver.received)
    assert types == ["lead.created", "lead.stage_changed"]
    for headers, body in receiver.received:
        stamp = int(headers[wh.SIGNATURE_HEADER].split(",")[0][2:])
        wh.verify(secret, headers[wh.SIGNATURE_HEADER], body, now=stamp)  # raises when the HMAC is wrong
    with container.uow() as uow:
        log = uow.webhooks.log(1)
    assert {i.status for i in log} == {"delivered"}
    assert max(i.attempts for i in log) == 2
    assert isinstance(clock, FixedClock)


def test_a_delivery_that_keeps_failing_is_given_up_after_the_last_attempt(container, receiver) -> None:
    with container.uow() as uow:
        webhooks.add_subscription(uow, receiver.url, ["lead.created"], actor=ADMIN, at=NOW)
        lead_service.upsert_lead(
            uow, lead_service.LeadInput(email="bo@acme.example"), normalizer=container.identity, at=NOW
        )
        uow.commit()
    receiver.fail = 1_000
    at = NOW
    for _ in range(wh.MAX_ATTEMPTS):
        with container.uow() as uow:
            webhooks.run(uow, UrllibSender(timeout=5), at)
            uow.commit()
        at += timedelta(hours=7)
    with container.uow() as uow:
        (item,) = uow.webhooks.log(1)
    assert (item.status, item.attempts, item.last_status) == ("failed", wh.MAX_ATTEMPTS, 503)


def test_a_subscription_starts_now_and_bad_subscriptions_are_refused(container) -> None:
    with container.uow() as uow:
        lead_service.upsert_lead(
            uow, lead_service.LeadInput(email="old@acme.example"), normalizer=container.identity, at=NOW
        )
        uow.commit()
    with container.uow() as uow:
        webhooks.add_subscription(uow, "http://127.0.0.1:9/x", ["lead.created"], actor=ADMIN, at=NOW)
        uow.commit()
        assert webhooks.collect(uow, now=NOW) == 0  # what happened before subscribing is not replayed
        from leadstage.domain.errors import PermissionDenied, ValidationError

        with pytest.raises(ValidationError, match=r"unknown lead\.exploded"):
            webhooks.add_subscription(uow, "http://x.example/h", ["lead.exploded"], actor=ADMIN, at=NOW)
        with pytest.raises(ValidationError, match="url"):
            webhooks.add_subscription(uow, "ftp://x.example/h", ["lead.created"], actor=ADMIN, at=NOW)
        with pytest.raises(PermissionDenied):
            webhooks.add_subscription(
                uow, "http://x.example/h", ["lead.created"], actor=Actor("m", Role.MARKETING), at=NOW
            )


def test_signed_inbound_hooks_accept_fresh_signatures_and_refuse_bad_stale_and_replayed_ones(
    api: Api,
) -> None:
    c = build(Settings(database_url=api.db_url))
    with c.uow(write=True) as uow:
        secret = webhooks.add_inbound(uow, "mailer", source="mailchimp", actor=ADMIN, at=NOW)
        uow.commit()
    c.close()
    api.client.post("/api/v1/leads", json={"email": "eve@retail.example"}, headers=api.headers())
    body = json.dumps(
        {
            "activities": [
                {"email": "eve@retail.example", "type": "email_click", "occurred_at": "2026-11-01T10:00:00Z"}
            ]
        }
    ).encode()
    now = int(time.time())
    good = {"X-Leadstage-Signature": wh.sign(secret, now, body), "Content-Type": "application/json"}
    r = api.client.post("/api/v1/hooks/mailer", content=body, headers=good)
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 1
    replay = api.client.post("/api/v1/hooks/mailer", content=body, headers=good)
    assert replay.status_code == 409
    wrong = {**good, "X-Leadstage-Signature": wh.sign("whsec_wrong", now, body)}
    assert api.client.post("/api/v1/hooks/mailer", content=body, headers=wrong).status_code == 401
    stale = {**good, "X-Leadstage-Signature": wh.sign(secret, now - 3600, body)}
    assert api.client.post("/api/v1/hooks/mailer", content=body, headers=stale).status_code == 401
    unsigned = api.client.post(
        "/api/v1/hooks/mailer", content=body, headers={"Content-Type": "application/json"}
    )
    assert unsigned.status_code == 401
    assert unsigned.headers["content-type"] == "application/problem+json"
    eve = api.client.get("/api/v1/leads/eve@retail.example/activities", headers=api.headers()).json()
    assert [(a["type"], a["source"]) for a in eve["items"]] == [("email_click", "mailchimp")]
    with pytest.raises(Unauthenticated):
        wh.verify(secret, "t=abc,v1=00", body, now=now)
