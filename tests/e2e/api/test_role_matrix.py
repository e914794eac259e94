"""Every route of the app against every role (DOMAIN.md: admin, marketing, sales_rep, sales_manager,
viewer), with write and read tokens, and without credentials.

The routes are enumerated from the app itself: a route without an entry in ``MATRIX`` (or an entry for a
route that no longer exists) fails the test, so a new route cannot ship without its role rule written
down here. Each case builds what its request needs (a fresh lead to transition, a segment to delete ...)
so that an allowed role gets the route's success status, not merely "not 403"; a role that may not act
gets 403 (the case says when the answer is another status, e.g. someone else's job is 404), a read token
gets 403 on every route that changes something, and no credentials get 401 except on the public routes.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts

from tests.cli_runner import run
from tests.e2e.api.conftest import ROLES, Api
from tests.e2e.api.test_resources import ROUTING, wait_for_job
from tests.integration.test_predictive import write_leads

EVERYONE = frozenset(ROLES)
WRITERS = EVERYONE - {"viewer"}
ADMIN = frozenset({"admin"})
MODEL_EDITORS = frozenset({"admin", "marketing"})
BULK = frozenset({"admin", "marketing", "sales_manager"})  # imports, accounts, merges, forgetting
SALES = frozenset({"admin", "sales_rep", "sales_manager"})
MANAGERS = frozenset({"admin", "sales_manager"})
USERNAME = {role: f"{role.replace('_', '-')}-user" for role in ROLES}


@dataclass
class Request:
    method: str
    url: str
    json: Any = None
    data: dict[str, str] | None = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class World:
    """What the cases need, made once per database through the API (and the CLI for files)."""

    api: Api
    lead: str = "world@acme.example"
    segment: str = "Matrix segment"
    form_key: str = ""
    hook_secret: str = ""
    webhook_id: int = 0
    account_id: int = 0
    model_id: int = 0
    numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def n(self) -> int:
        return next(self.numbers)

    def admin(self, method: str, url: str, body: Any = None) -> Any:
        r = self.api.client.request(method, url, json=body, headers=self.api.headers())
        assert r.status_code < 300, (method, url, r.status_code, r.text)
        return r.json() if r.content else None

    def fresh_lead(self) -> str:
        email = f"m{self.n()}@matrix.example"
        self.admin("POST", "/api/v1/leads", {"email": email, "first_name": "Mat"})
        return email

    def fresh_mql(self) -> str:
        email = self.fresh_lead()
        body = {"action": "promote_mql", "reason": "manual", "note": "matrix"}
        self.admin("POST", f"/api/v1/leads/{email}/transitions", body)
        return email


Build = Callable[[World, str], Request]


@dataclass(frozen=True)
class Case:
    allowed: frozenset[str] | None  # None: public, no credentials needed
    build: Build
    ok: tuple[int, ...] = (200,)
    reads: bool = False  # a read token may call it (it changes nothing); GET routes always
    denied: int = 403  # what a role that is not allowed gets


def get(url: str | Callable[[World], str]) -> Build:
    return lambda w, _who: Request("GET", url(w) if callable(url) else url)


def post(url: str | Callable[[World], str], body: Any = None) -> Build:
    return lambda w, _who: Request("POST", url(w) if callable(url) else url, json=body)


def _own_report_job(w: World, who: str) -> Request:
    started = w.api.client.post("/api/v1/reports/jobs", json={"report": "funnel"}, headers=w.api.headers(who))
    assert started.status_code == 202, started.text
    return Request("GET", started.json()["url"])


def _admins_job(w: World, _who: str) -> Request:
    started = w.admin("POST", "/api/v1/reports/jobs", {"report": "velocity"})
    return Request("GET", started["url"])


def _close_task(w: World, _who: str) -> Request:
    email = w.fresh_lead()
    w.admin(
        "POST",
        f"/api/v1/leads/{email}/transitions",
        {"action": "disqualify", "reason": "not_icp", "note": "m"},
    )
    lead_id = w.admin("GET", f"/api/v1/leads/{email}")["id"]
    tasks = w.admin("GET", "/api/v1/tasks?limit=1000")["items"]
    task = next(t for t in tasks if t["lead_id"] == lead_id and t["status"] == "open")
    return Request("POST", f"/api/v1/tasks/{task['id']}/done")


def _delete_segment(w: World, _who: str) -> Request:
    name = f"gone-{w.n()}"
    w.admin("POST", "/api/v1/segments", {"name": name, "filter": "stage = lead"})
    return Request("DELETE", f"/api/v1/segments/{name}")


def _revoke_own_token(w: World, who: str) -> Request:
    made = w.admin("POST", "/api/v1/tokens", {"user": USERNAME[who], "scope": "read"})
    return Request("DELETE", f"/api/v1/tokens/{made['id']}")


def _revoke_admins_token(w: World, _who: str) -> Request:
    made = w.admin("POST", "/api/v1/tokens", {"user": "admin-user", "scope": "read"})
    return Request("DELETE", f"/api/v1/tokens/{made['id']}")


def _signed_hook(w: World, _who: str) -> Request:
    body = (
        json.dumps(
            {"activities": [{"email": w.lead, "type": "email_open", "occurred_at": "2026-11-01T09:00:00Z"}]}
        ).encode()
        + b" " * w.n()
    )  # a new body each time: a repeated signature would be a replay
    stamp = int(time.time())
    mac = hmac.new(w.hook_secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Leadstage-Signature": f"t={stamp},v1={mac}"}
    return Request("POST", "/api/v1/hooks/matrix", content=body, headers=headers)


def _login(w: World, _who: str) -> Request:
    page = w.api.client.get("/login")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    form = {"username": "web-user", "password": "web-password-1", "csrf": found.group(1)}
    return Request("POST", "/login", data=form)


def _owned_lead(w: World, _who: str) -> str:
    email = w.fresh_lead()
    w.admin("POST", f"/api/v1/leads/{email}/assign", {"user": "admin-user"})
    return email


def _batch_activities(w: World, _who: str) -> Request:
    key = f"k-{w.n()}"
    body = {
        "activities": [
            {
                "email": w.lead,
                "type": "page_view",
                "occurred_at": "2026-11-01T10:00:00Z",
                "idempotency_key": key,
            }
        ]
    }
    return Request("POST", "/api/v1/activities/batch", json=body)


BANT = {"criteria": {"budget": "confirmed amount=1000 currency=EUR", "need": "confirmed"}}

MATRIX: dict[tuple[str, str], list[Case]] = {
    # public: the schema and docs, health, the web login, the capture endpoints
    ("GET", "/api/openapi.json"): [Case(None, get("/api/openapi.json"))],
    ("GET", "/api/docs"): [Case(None, get("/api/docs"))],
    ("GET", "/docs/oauth2-redirect"): [Case(None, get("/docs/oauth2-redirect"))],
    ("GET", "/api/v1/health"): [Case(None, get("/api/v1/health"))],
    ("GET", "/login"): [Case(None, get("/login"))],
    ("POST", "/login"): [Case(None, _login, ok=(303,))],
    ("POST", "/logout"): [Case(None, post("/logout"), ok=(303,))],
    ("POST", "/api/v1/capture/{key}"): [
        Case(
            None,
            lambda w, _: Request(
                "POST", f"/api/v1/capture/{w.form_key}", json={"email": f"c{w.n()}@form.example"}
            ),
            ok=(201,),
        )
    ],
    ("POST", "/api/v1/hooks/{name}"): [Case(None, _signed_hook)],
    # a web session's own route: a token is not a session
    ("GET", "/api/v1/session"): [Case(frozenset(), get("/api/v1/session"), denied=401)],
    ("GET", "/metrics"): [Case(ADMIN, get("/metrics"))],
    # leads
    ("GET", "/api/v1/leads"): [Case(EVERYONE, get("/api/v1/leads?limit=5"))],
    ("POST", "/api/v1/leads"): [
        Case(
            WRITERS,
            lambda w, _: Request("POST", "/api/v1/leads", json={"email": f"n{w.n()}@new.example"}),
            ok=(201,),
        )
    ],
    ("POST", "/api/v1/leads/batch"): [
        Case(
            BULK,
            lambda w, _: Request(
                "POST", "/api/v1/leads/batch", json={"leads": [{"email": f"b{w.n()}@new.example"}]}
            ),
        )
    ],
    ("GET", "/api/v1/leads/{ref}"): [Case(EVERYONE, get(lambda w: f"/api/v1/leads/{w.lead}"))],
    ("PATCH", "/api/v1/leads/{ref}"): [
        Case(
            WRITERS,
            lambda w, _: Request("PATCH", f"/api/v1/leads/{w.fresh_lead()}", json={"job_title": "CFO"}),
        ),
        # someone else's lead: not a rep's; their manager's (every user here is in team emea)
        Case(
            frozenset({"admin", "marketing", "sales_manager"}),
            lambda w, who: Request(
                "PATCH", f"/api/v1/leads/{_owned_lead(w, who)}", json={"job_title": "CFO"}
            ),
        ),
    ],
    ("POST", "/api/v1/leads/{ref}/transitions"): [
        Case(
            MODEL_EDITORS,
            lambda w, _: Request(
                "POST",
                f"/api/v1/leads/{w.fresh_lead()}/transitions",
                json={"action": "promote_mql", "reason": "manual", "note": "m"},
            ),
        ),
        Case(
            SALES,
            lambda w, _: Request(
                "POST", f"/api/v1/leads/{w.fresh_mql()}/transitions", json={"action": "accept"}
            ),
        ),
    ],
    ("POST", "/api/v1/leads/{ref}/qualification"): [
        Case(SALES, lambda w, _: Request("POST", f"/api/v1/leads/{w.fresh_mql()}/qualification", json=BANT))
    ],
    ("POST", "/api/v1/leads/{ref}/merge"): [
        Case(
            BULK,
            lambda w, _: Request(
                "POST", f"/api/v1/leads/{w.fresh_lead()}/merge", json={"other": w.fresh_lead()}
            ),
        )
    ],
    ("POST", "/api/v1/leads/{ref}/forget"): [
        Case(BULK, lambda w, _: Request("POST", f"/api/v1/leads/{w.fresh_lead()}/forget"))
    ],
    ("GET", "/api/v1/leads/{ref}/activities"): [
        Case(EVERYONE, get(lambda w: f"/api/v1/leads/{w.lead}/activities"))
    ],
    ("GET", "/api/v1/leads/{ref}/duplicates"): [
        Case(EVERYONE, get(lambda w: f"/api/v1/leads/{w.lead}/duplicates"))
    ],
    ("GET", "/api/v1/leads/{ref}/score"): [Case(EVERYONE, get(lambda w: f"/api/v1/leads/{w.lead}/score"))],
    ("GET", "/api/v1/leads/{ref}/predictive"): [
        Case(EVERYONE, get(lambda w: f"/api/v1/leads/{w.lead}/predictive"))
    ],
    ("GET", "/api/v1/leads/{ref}/routing"): [
        Case(EVERYONE, get(lambda w: f"/api/v1/leads/{w.lead}/routing"))
    ],
    ("POST", "/api/v1/leads/{ref}/assign"): [
        Case(
            MANAGERS,
            lambda w, _: Request(
                "POST", f"/api/v1/leads/{w.fresh_lead()}/assign", json={"user": "sales-rep-user"}
            ),
        )
    ],
    ("POST", "/api/v1/activities/batch"): [Case(BULK, _batch_activities)],
    # tasks, segments, users, tokens, webhooks, audit
    ("GET", "/api/v1/tasks"): [Case(EVERYONE, get("/api/v1/tasks"))],
    ("POST", "/api/v1/tasks/{task_id}/done"): [Case(WRITERS, _close_task)],
    ("GET", "/api/v1/segments"): [Case(EVERYONE, get("/api/v1/segments"))],
    ("POST", "/api/v1/segments"): [
        Case(
            BULK,
            lambda w, _: Request(
                "POST", "/api/v1/segments", json={"name": f"s-{w.n()}", "filter": "stage = mql"}
            ),
            ok=(201,),
        )
    ],
    ("GET", "/api/v1/segments/{name}"): [Case(EVERYONE, get(lambda w: f"/api/v1/segments/{w.segment}"))],
    ("DELETE", "/api/v1/segments/{name}"): [Case(BULK, _delete_segment, ok=(204,))],
    ("GET", "/api/v1/me"): [Case(EVERYONE, get("/api/v1/me"))],
    ("GET", "/api/v1/users"): [Case(EVERYONE, get("/api/v1/users"))],
    ("POST", "/api/v1/users"): [
        Case(
            ADMIN,
            lambda w, _: Request("POST", "/api/v1/users", json={"username": f"u{w.n()}", "role": "viewer"}),
            ok=(201,),
        )
    ],
    ("POST", "/api/v1/tokens"): [
        Case(
            WRITERS, lambda w, who: Request("POST", "/api/v1/tokens", json={"user": USERNAME[who]}), ok=(201,)
        ),
        Case(ADMIN, lambda w, _: Request("POST", "/api/v1/tokens", json={"user": "viewer-user"}), ok=(201,)),
    ],
    ("DELETE", "/api/v1/tokens/{token_id}"): [
        Case(WRITERS, _revoke_own_token),
        Case(ADMIN, _revoke_admins_token),
    ],
    ("GET", "/api/v1/webhooks"): [Case(ADMIN, get("/api/v1/webhooks"))],
    ("POST", "/api/v1/webhooks"): [
        Case(
            ADMIN,
            post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/in", "events": ["lead.created"]}),
            ok=(201,),
        )
    ],
    ("GET", "/api/v1/webhooks/{subscription_id}/deliveries"): [
        Case(ADMIN, get(lambda w: f"/api/v1/webhooks/{w.webhook_id}/deliveries"))
    ],
    ("GET", "/api/v1/audit"): [Case(ADMIN, get("/api/v1/audit?limit=5"))],
    # jobs: visible to whoever started them and administrators (others: 404, as if there were none)
    ("GET", "/api/v1/jobs/{job_id}"): [Case(EVERYONE, _own_report_job), Case(ADMIN, _admins_job, denied=404)],
    # scoring models
    ("GET", "/api/v1/scoring/models"): [Case(EVERYONE, get("/api/v1/scoring/models"))],
    ("POST", "/api/v1/scoring/models/validate"): [
        Case(EVERYONE, lambda w, _: _validate_scoring(w), reads=True)
    ],
    ("POST", "/api/v1/scoring/models"): [Case(MODEL_EDITORS, lambda w, _: _scoring_model(w), ok=(202,))],
    ("POST", "/api/v1/scoring/backtest"): [
        Case(MODEL_EDITORS, lambda w, _: _backtest(w), ok=(202,), reads=True)
    ],
    # accounts
    ("GET", "/api/v1/accounts"): [Case(EVERYONE, get("/api/v1/accounts"))],
    ("POST", "/api/v1/accounts"): [
        Case(
            BULK,
            lambda w, _: Request("POST", "/api/v1/accounts", json={"name": f"Company {w.n()}"}),
            ok=(201,),
        )
    ],
    ("GET", "/api/v1/accounts/{account_id}"): [
        Case(EVERYONE, get(lambda w: f"/api/v1/accounts/{w.account_id}"))
    ],
    ("PATCH", "/api/v1/accounts/{account_id}"): [
        Case(
            BULK,
            lambda w, _: Request("PATCH", f"/api/v1/accounts/{w.account_id}", json={"industry": f"I{w.n()}"}),
        ),
        Case(MANAGERS, lambda w, _: _give_account(w)),
    ],
    # predictive models
    ("POST", "/api/v1/predictive/models"): [
        Case(MODEL_EDITORS, post("/api/v1/predictive/models", {}), ok=(202,))
    ],
    ("GET", "/api/v1/predictive/models"): [Case(EVERYONE, get("/api/v1/predictive/models"))],
    ("GET", "/api/v1/predictive/models/{model_id}"): [
        Case(EVERYONE, get(lambda w: f"/api/v1/predictive/models/{w.model_id}"))
    ],
    ("GET", "/api/v1/predictive/report"): [Case(EVERYONE, get("/api/v1/predictive/report"))],
    ("POST", "/api/v1/predictive/models/{model_id}/activate"): [
        Case(MODEL_EDITORS, post(lambda w: f"/api/v1/predictive/models/{w.model_id}/activate"), ok=(202,))
    ],
    # routing
    ("GET", "/api/v1/routing"): [Case(EVERYONE, get("/api/v1/routing"))],
    ("POST", "/api/v1/routing/validate"): [
        Case(EVERYONE, post("/api/v1/routing/validate", {"source": ROUTING}), reads=True)
    ],
    ("PUT", "/api/v1/routing"): [
        Case(MANAGERS, lambda w, _: Request("PUT", "/api/v1/routing", json={"source": ROUTING}))
    ],
    ("GET", "/api/v1/teams"): [Case(EVERYONE, get("/api/v1/teams"))],
    ("GET", "/api/v1/routing/queue"): [Case(EVERYONE, get("/api/v1/routing/queue"))],
    ("GET", "/api/v1/routing/sla"): [Case(EVERYONE, get("/api/v1/routing/sla"))],
    # reports
    ("GET", "/api/v1/reports/funnel"): [Case(EVERYONE, get("/api/v1/reports/funnel?by=source"))],
    ("GET", "/api/v1/reports/velocity"): [Case(EVERYONE, get("/api/v1/reports/velocity"))],
    ("GET", "/api/v1/reports/attribution"): [Case(EVERYONE, get("/api/v1/reports/attribution"))],
    ("GET", "/api/v1/reports/feedback"): [Case(EVERYONE, get("/api/v1/reports/feedback"))],
    ("GET", "/api/v1/reports/calibration"): [Case(EVERYONE, get("/api/v1/reports/calibration"))],
    ("POST", "/api/v1/reports/jobs"): [
        Case(EVERYONE, post("/api/v1/reports/jobs", {"report": "attribution"}), ok=(202,), reads=True)
    ],
}


def _give_account(w: World) -> Request:
    """Giving an account an owner (from none): administrators and sales managers."""
    w.admin("PATCH", f"/api/v1/accounts/{w.account_id}", {"owner": None})
    return Request("PATCH", f"/api/v1/accounts/{w.account_id}", json={"owner": "sales-rep-user"})


def _validate_scoring(w: World) -> Request:
    from leadstage.adapters.scoring_yaml import default_model_source

    return Request("POST", "/api/v1/scoring/models/validate", json={"source": default_model_source()})


def _scoring_model(w: World) -> Request:
    from leadstage.adapters.scoring_yaml import default_model_source

    return Request(
        "POST", "/api/v1/scoring/models", json={"source": default_model_source(), "name": f"m{w.n()}"}
    )


def _backtest(w: World) -> Request:
    from leadstage.adapters.scoring_yaml import default_model_source

    return Request("POST", "/api/v1/scoring/backtest", json={"source": default_model_source(), "capacity": 5})


def _routes(api: Api, *, web: bool = False) -> set[tuple[str, str]]:
    """The API's routes, or (``web``) the web workspace's pages, which the session rules guard instead."""
    app = api.client.app
    found = set()
    for route in iter_route_contexts(app.router.routes):  # type: ignore[attr-defined]
        module = getattr(getattr(route, "endpoint", None), "__module__", "")
        if module.startswith("leadstage.web") is not web:
            continue
        for method in route.methods or ():
            if method != "HEAD":
                found.add((method, route.path))
    return found


def test_every_page_of_the_web_workspace_needs_a_session(api: Api) -> None:
    """The pages are not in the matrix (tests/e2e/web checks roles through a browser); none answers a
    stranger: each sends them to the login form, whatever the method, and never runs the change."""
    pages = _routes(api, web=True)
    assert ("GET", "/leads") in pages
    api.client.cookies.clear()
    for method, path in sorted(pages):
        url = re.sub(r"\{[^}]+\}", "1", path)
        if url.startswith("/static"):
            continue
        r = api.client.request(method, url, follow_redirects=False)
        assert r.status_code in (303, 307), (method, url, r.status_code)
        assert r.headers["location"].startswith("/login"), (method, url, r.headers["location"])


def test_every_route_of_the_app_has_a_role_rule_in_the_matrix(api: Api) -> None:
    routes = _routes(api)
    missing = sorted(routes - set(MATRIX))
    stale = sorted(set(MATRIX) - routes)
    assert not missing, f"routes without a role rule in MATRIX: {missing}"
    assert not stale, f"MATRIX entries for routes that do not exist: {stale}"


def _world(api: Api, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> World:
    w = World(api)
    assert run(capsys, api.db_url, "init").code == 0  # the default scoring model
    imported = run(
        capsys,
        api.db_url,
        "import",
        "leads",
        str(write_leads(tmp_path / "p.csv", 300)),
        "--id-column",
        "CRM Key",
    )
    assert imported.code == 0, imported.err
    started = w.admin("POST", "/api/v1/predictive/models", {"label": "Deal won", "positive": "yes", "cv": 2})
    job = wait_for_job(api, started["url"])
    assert job["status"] == "done", job.get("error") or job
    w.model_id = job["result"]["model_id"]
    job = wait_for_job(api, w.admin("POST", f"/api/v1/predictive/models/{w.model_id}/activate")["url"])
    assert job["status"] == "done", job.get("error") or job
    w.admin("PUT", "/api/v1/routing", {"source": ROUTING})
    w.admin("POST", "/api/v1/leads", {"email": w.lead, "first_name": "World"})
    w.admin("POST", "/api/v1/segments", {"name": w.segment, "filter": "stage = lead"})
    w.webhook_id = w.admin(
        "POST", "/api/v1/webhooks", {"url": "http://127.0.0.1:9/in", "events": ["lead.created"]}
    )["id"]
    w.account_id = w.admin("POST", "/api/v1/accounts", {"name": "Matrix Co", "domain": "matrix.example"})[
        "id"
    ]
    w.admin(
        "POST", "/api/v1/users", {"username": "web-user", "role": "marketing", "password": "web-password-1"}
    )
    form = run(capsys, api.db_url, "forms", "create", "Matrix form", "--json")
    w.form_key = json.loads(form.out)["key"]
    hook = run(capsys, api.db_url, "hooks", "add", "matrix", "--source", "mailer", "--json")
    w.hook_secret = json.loads(hook.out)["secret"]
    return w


def _send(w: World, req: Request, token: str | None) -> Any:
    headers = {**req.headers, **({"Authorization": f"Bearer {token}"} if token else {})}
    try:
        return w.api.client.request(
            req.method,
            req.url,
            json=req.json,
            data=req.data,
            content=req.content,
            headers=headers,
            follow_redirects=False,
        )
    finally:
        w.api.client.cookies.clear()  # no web session (from the login case) stays for the next request


def test_every_role_against_every_route_allowed_or_refused_and_credentials_required(
    api: Api, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    w = _world(api, capsys, tmp_path)
    wrong: list[str] = []

    def check(
        route: tuple[str, str], who: str, req: Request, token: str | None, expected: tuple[int, ...]
    ) -> None:
        r = _send(w, req, token)
        if r.status_code not in expected:
            wrong.append(
                f"{route} as {who}: {req.method} {req.url} -> {r.status_code}, expected {expected}: {r.text[:300]}"
            )
        elif r.status_code >= 400 and r.headers.get("content-type") != "application/problem+json":
            wrong.append(f"{route} as {who}: {r.status_code} is not a problem document")

    for route, cases in MATRIX.items():
        for case in cases:
            if case.allowed is None:
                check(route, "anonymous", case.build(w, "admin"), None, case.ok)
                continue
            check(route, "anonymous", case.build(w, "admin"), None, (401,))
            for role in ROLES:
                allowed = role in case.allowed
                check(
                    route, role, case.build(w, role), api.tokens[role], case.ok if allowed else (case.denied,)
                )
                reads = case.reads or route[0] == "GET"
                expected = case.ok if allowed and reads else ((case.denied,) if reads else (403,))
                check(route, f"{role}:read", case.build(w, role), api.tokens[f"{role}:read"], expected)
    assert not wrong, "\n".join(wrong)
