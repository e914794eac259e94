"""Accounts, predictive models, routing and reports over HTTP (in-process ASGI client, SQLite and
PostgreSQL): the documents are the CLI's, the role rules are the CLI's, errors are problems."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import run
from tests.e2e.api.conftest import Api
from tests.integration.test_predictive import write_leads

PROBLEM = "application/problem+json"
ROUTING = """\
name: api routing
territories:
  DACH: [Germany, Austria]
teams:
  emea:
    manager: sales-manager-user
    timezone: Europe/Berlin
    hours:
      mon-fri: "09:00-17:00"
    first_response: 4h
    daily_capacity: 10
    members:
      sales-rep-user: {territories: [DACH]}
      sales-manager-user: {weight: 2}
rules:
  - name: everyone
    team: emea
"""


def wait_for_job(api: Api, url: str, who: str = "admin") -> dict[str, Any]:
    for _ in range(1200):
        job = api.client.get(url, headers=api.headers(who)).json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {url} did not finish")


# ---- accounts ------------------------------------------------------------------------------------------


def test_accounts_are_one_per_domain_read_with_an_etag_updated_with_if_match_and_listed_in_pages(
    api: Api,
) -> None:
    made = api.client.post(
        "/api/v1/accounts",
        json={"name": "Acme Logistics", "domain": "https://www.Acme-Logistics.com/about", "employees": 400},
        headers=api.headers("marketing"),
    )
    assert made.status_code == 201, made.text
    account = made.json()
    assert (account["domain"], account["employees"], account["owner"], account["leads"]) == (
        "acme-logistics.com",
        400,
        None,
        0,
    )
    assert made.headers["location"] == f"/api/v1/accounts/{account['id']}"
    taken = api.client.post(
        "/api/v1/accounts", json={"name": "Other", "domain": "acme-logistics.com"}, headers=api.headers()
    )
    assert taken.status_code == 409
    assert f"account {account['id']}" in taken.json()["detail"]
    bad = api.client.post("/api/v1/accounts", json={"domain": "not a domain"}, headers=api.headers())
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "domain"
    nothing = api.client.post("/api/v1/accounts", json={"industry": "Retail"}, headers=api.headers())
    assert nothing.status_code == 422
    assert nothing.headers["content-type"] == PROBLEM
    for who in ("sales_rep", "viewer", "marketing:read"):
        assert (
            api.client.post("/api/v1/accounts", json={"name": "X"}, headers=api.headers(who)).status_code
            == 403
        )

    # a lead with an address at that domain belongs to the account
    api.client.post("/api/v1/leads", json={"email": "ana@acme-logistics.com"}, headers=api.headers())
    got = api.client.get(f"/api/v1/accounts/{account['id']}", headers=api.headers("viewer"))
    assert got.json()["leads"] == 1
    etag = got.headers["etag"]
    url = f"/api/v1/accounts/{account['id']}"
    changed = api.client.patch(
        url,
        json={"industry": "Logistics", "properties": {"Tier": "gold"}},
        headers={**api.headers("marketing"), "If-Match": etag},
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["industry"], changed.json()["properties"]) == ("Logistics", {"Tier": "gold"})
    assert changed.headers["etag"] != etag
    stale = api.client.patch(url, json={"industry": "Retail"}, headers={**api.headers(), "If-Match": etag})
    assert stale.status_code == 412
    assert api.client.get(url, headers=api.headers()).json()["industry"] == "Logistics"

    # an owner decides where the account's leads are routed: sales managers and admins only
    denied = api.client.patch(url, json={"owner": "sales-rep-user"}, headers=api.headers("marketing"))
    assert denied.status_code == 403
    owned = api.client.patch(
        url,
        json={"owner": "sales-rep-user", "properties": {"Tier": None}},
        headers=api.headers("sales_manager"),
    )
    assert owned.status_code == 200, owned.text
    assert (owned.json()["owner"], owned.json()["properties"]) == ("sales-rep-user", {})
    unknown = api.client.patch(url, json={"owner": "nobody"}, headers=api.headers())
    assert unknown.status_code == 422
    assert api.client.patch(url, json={"employees": -1}, headers=api.headers()).status_code == 422
    assert api.client.patch(url, json={"colour": "red"}, headers=api.headers()).status_code == 422
    assert api.client.get("/api/v1/accounts/999999", headers=api.headers()).status_code == 404

    for i in range(4):
        api.client.post("/api/v1/accounts", json={"name": f"Shop {i}"}, headers=api.headers())
    first = api.client.get("/api/v1/accounts?limit=3", headers=api.headers()).json()
    assert (first["total"], len(first["items"])) == (5, 3)
    rest = api.client.get(f"/api/v1/accounts?limit=3&cursor={first['next_cursor']}", headers=api.headers())
    assert [a["name"] for a in rest.json()["items"]] == ["Shop 2", "Shop 3"]
    assert rest.json()["next_cursor"] is None
    found = api.client.get("/api/v1/accounts?q=acme", headers=api.headers()).json()
    assert [a["id"] for a in found["items"]] == [account["id"]]
    same_name = api.client.post("/api/v1/accounts", json={"name": "  shop 1 "}, headers=api.headers())
    assert same_name.status_code == 409


# ---- a lead's timeline and duplicates ------------------------------------------------------------------


def test_a_lead_is_read_without_its_timeline_which_comes_in_pages_or_embedded_on_request(api: Api) -> None:
    api.client.post(
        "/api/v1/leads/batch",
        json={
            "leads": [
                {"email": "jo.park@acme.example", "first_name": "Jo", "last_name": "Park", "company": "Acme"},
                {"email": "jo.park@gmail.com", "first_name": "Jo", "last_name": "Park", "company": "Acme"},
            ]
        },
        headers=api.headers(),
    )
    days = [f"2026-10-{d:02d}T10:00:00Z" for d in range(1, 8)]
    batch = [
        {"email": "jo.park@acme.example", "type": "page_view", "occurred_at": at, "idempotency_key": f"j{i}"}
        for i, at in enumerate(days)
    ]
    batch.append({**batch[-1], "idempotency_key": "same-time"})  # two at one time: ordered by id too
    api.client.post("/api/v1/activities/batch", json={"activities": batch}, headers=api.headers())
    api.settle()
    lead = api.client.get("/api/v1/leads/jo.park@acme.example", headers=api.headers("viewer")).json()
    assert lead["activity_count"] == 8
    assert "activities" not in lead
    assert "possible_duplicates" not in lead
    assert [h["action"] for h in lead["history"]] == ["create"]
    full = api.client.get(
        "/api/v1/leads/jo.park@acme.example?include=activities&include=duplicates",
        headers=api.headers("viewer"),
    ).json()
    assert [a["occurred_at"][:10] for a in full["activities"]][:2] == ["2026-10-07", "2026-10-07"]
    assert [d["email"] for d in full["possible_duplicates"]] == ["jo.park@gmail.com"]
    assert {k: v for k, v in full.items() if k not in ("activities", "possible_duplicates")} == lead

    seen: list[str] = []
    url = "/api/v1/leads/jo.park@acme.example/activities?limit=3"
    while url:
        page = api.client.get(url, headers=api.headers("viewer")).json()
        seen += [a["occurred_at"][:10] for a in page["items"]]
        cursor = page["next_cursor"]
        url = f"/api/v1/leads/jo.park@acme.example/activities?limit=3&cursor={cursor}" if cursor else ""
    assert seen == ["2026-10-07", "2026-10-07", *[d[:10] for d in reversed(days[:-1])]]
    assert [a["occurred_at"][:10] for a in full["activities"]] == seen
    bad = api.client.get("/api/v1/leads/jo.park@acme.example/activities?cursor=zzz", headers=api.headers())
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "cursor"
    dups = api.client.get("/api/v1/leads/jo.park@acme.example/duplicates", headers=api.headers()).json()
    assert dups["items"] == full["possible_duplicates"]
    assert (
        api.client.get("/api/v1/leads/nobody@x.example/duplicates", headers=api.headers()).status_code == 404
    )


# ---- routing -------------------------------------------------------------------------------------------


def test_routing_document_is_validated_set_by_managers_shown_and_routes_and_reroutes_leads(api: Api) -> None:
    assert api.client.get("/api/v1/routing", headers=api.headers()).status_code == 404
    broken = ROUTING.replace("team: emea", "team: apac")
    checked = api.client.post(
        "/api/v1/routing/validate", json={"source": broken}, headers=api.headers("viewer")
    )
    assert checked.status_code == 422
    assert "source: line 17, rules.0.team" in checked.json()["detail"]
    assert "no team 'apac'" in checked.json()["detail"]
    refused = api.client.put("/api/v1/routing", json={"source": broken}, headers=api.headers())
    assert refused.status_code == 422
    assert api.client.get("/api/v1/routing", headers=api.headers()).status_code == 404  # nothing stored
    ok = api.client.post("/api/v1/routing/validate", json={"source": ROUTING}, headers=api.headers("viewer"))
    assert ok.json() == {"valid": True, "name": "api routing", "teams": ["emea"], "rules": 1}
    for who in ("marketing", "sales_rep"):
        assert (
            api.client.put("/api/v1/routing", json={"source": ROUTING}, headers=api.headers(who)).status_code
            == 403
        )

    api.client.post(
        "/api/v1/leads/batch",
        json={
            "leads": [
                {"email": "anna@firma.de", "properties": {"Country": "Germany"}},
                {"email": "bo@corp.us"},
            ]
        },
        headers=api.headers(),
    )
    for email in ("anna@firma.de", "bo@corp.us"):
        moved = api.client.post(
            f"/api/v1/leads/{email}/transitions",
            json={"action": "promote_mql", "reason": "manual", "note": "fair"},
            headers=api.headers("marketing"),
        )
        assert moved.status_code == 200, moved.text
    put = api.client.put("/api/v1/routing", json={"source": ROUTING}, headers=api.headers("sales_manager"))
    assert put.status_code == 200, put.text
    assert put.json()["routed"]["routed"] == 2
    shown = api.client.get("/api/v1/routing", headers=api.headers("viewer")).json()
    assert (shown["version"], shown["name"], shown["source"]) == (1, "api routing", ROUTING)
    assert [m["username"] for m in shown["teams"]["emea"]["members"]] == [
        "sales-rep-user",
        "sales-manager-user",
    ]
    teams = api.client.get("/api/v1/teams", headers=api.headers("sales_rep")).json()
    assert teams["items"][0]["name"] == "emea"
    assert teams["items"][0]["handed_today"] == 2
    assert api.client.get("/api/v1/routing/queue", headers=api.headers()).json()["total"] == 0
    assert api.client.get("/api/v1/routing/queue?team=nowhere", headers=api.headers()).status_code == 422
    sla = api.client.get("/api/v1/routing/sla?state=pending", headers=api.headers()).json()
    assert sla["total"] == 2
    assert api.client.get("/api/v1/routing/sla?state=late", headers=api.headers()).status_code == 422
    why = api.client.get("/api/v1/leads/bo@corp.us/routing", headers=api.headers()).json()
    assert why["owner"] == "sales-manager-user"  # the rep covers DACH only
    assert why["assignments"][0]["rule"] == "everyone"
    assert {c["user"] for c in why["assignments"][0]["candidates"]} == {
        "sales-rep-user",
        "sales-manager-user",
    }

    etag = api.client.get("/api/v1/leads/bo@corp.us", headers=api.headers()).headers["etag"]
    body = {"user": "sales-manager-user", "note": "knows the account"}
    assert (
        api.client.post(
            "/api/v1/leads/bo@corp.us/assign", json=body, headers=api.headers("sales_rep")
        ).status_code
        == 403
    )
    stale = api.client.post(
        "/api/v1/leads/bo@corp.us/assign", json=body, headers={**api.headers(), "If-Match": '"v999"'}
    )
    assert stale.status_code == 412
    both = api.client.post(
        "/api/v1/leads/bo@corp.us/assign", json={"user": "admin-user", "team": "emea"}, headers=api.headers()
    )
    assert both.status_code == 422
    moved = api.client.post(
        "/api/v1/leads/bo@corp.us/assign",
        json=body,
        headers={**api.headers("sales_manager"), "If-Match": etag},
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["user"], moved.json()["kind"]) == ("sales-manager-user", "manual")
    assert moved.headers["etag"] != etag
    lead = api.client.get("/api/v1/leads/bo@corp.us", headers=api.headers()).json()
    assert lead["owner"] == "sales-manager-user"


# ---- reports -------------------------------------------------------------------------------------------


def _company(api: Api) -> None:
    api.client.post(
        "/api/v1/leads/batch",
        json={
            "leads": [{"email": f"p{i}@acme.example", "source": ["webinar", "ads"][i % 2]} for i in range(6)]
        },
        headers=api.headers(),
    )
    api.client.post(
        "/api/v1/activities/batch",
        json={
            "activities": [
                {
                    "email": f"p{i}@acme.example",
                    "type": "webinar_attended",
                    "occurred_at": "2026-10-01T10:00:00Z",
                    "content": "Freight webinar",
                }
                for i in range(6)
            ]
        },
        headers=api.headers(),
    )
    for i in range(3):
        ref = f"/api/v1/leads/p{i}@acme.example/transitions"
        api.client.post(
            ref, json={"action": "promote_mql", "reason": "manual", "note": "x"}, headers=api.headers()
        )
        api.client.post(ref, json={"action": "accept"}, headers=api.headers("sales_rep"))
    api.client.post(
        "/api/v1/leads/p0@acme.example/transitions",
        json={"action": "reject", "reason": "student_or_job_seeker"},
        headers=api.headers("sales_rep"),
    )


@pytest.mark.parametrize(
    ("path", "cli"),
    [
        ("funnel?by=source", ["funnel", "--by", "source"]),
        ("funnel?per_cycle=true", ["funnel", "--per-cycle"]),
        (
            "velocity?mode=period&from=2020-01-01&to=2030-12-31",
            ["velocity", "--mode", "period", "--from", "2020-01-01", "--to", "2030-12-31"],
        ),
        ("attribution?by=content&half_life=14", ["attribution", "--by", "content", "--half-life", "14"]),
        ("feedback?by=source&limit=5", ["feedback", "--by", "source", "--limit", "5"]),
        ("calibration?by=priority", ["calibration", "--by", "priority"]),
    ],
)
def test_every_report_answers_the_document_the_cli_prints(
    api: Api, capsys: pytest.CaptureFixture[str], path: str, cli: list[str]
) -> None:
    _company(api)
    got = api.client.get(f"/api/v1/reports/{path}", headers=api.headers("viewer"))
    assert got.status_code == 200, got.text
    printed = run(capsys, api.db_url, "report", *cli, "--json")
    assert printed.code == 0, printed.err
    assert got.json() == printed.json()


def test_report_parameters_are_checked_and_named_and_a_report_can_run_as_a_job(api: Api) -> None:
    _company(api)
    for path, field in (
        ("funnel?from=2026-05-01&to=2026-04-01", "to"),
        ("funnel?from=2026-02-30", "from"),
        ("calibration?by=source", "by"),
        ("attribution?half_life=0", "half_life"),
        ("funnel?mode=period&per_cycle=true", "per_cycle"),
        ("velocity?mode=sometimes", "mode"),
    ):
        r = api.client.get(f"/api/v1/reports/{path}", headers=api.headers())
        assert r.status_code == 422, (path, r.text)
        assert r.headers["content-type"] == PROBLEM
        assert field in [e["field"].split(".")[-1] for e in r.json()["errors"]], (path, r.json())
        assert "--" not in r.json()["detail"]
    bad = api.client.post(
        "/api/v1/reports/jobs", json={"report": "attribution", "by": "owner"}, headers=api.headers()
    )
    assert bad.status_code == 422
    started = api.client.post(
        "/api/v1/reports/jobs",
        json={"report": "feedback", "by": "source", "from": "2020-01-01"},
        headers=api.headers("marketing"),
    )
    assert started.status_code == 202, started.text
    job = wait_for_job(api, started.headers["location"], "marketing")
    assert job["status"] == "done", job
    direct = api.client.get("/api/v1/reports/feedback?by=source&from=2020-01-01", headers=api.headers())
    assert job["result"] == direct.json()
    assert job["params"] == {"report": "feedback", "by": "source", "from": "2020-01-01", "per_cycle": False}


# ---- predictive models ---------------------------------------------------------------------------------


def test_predictive_models_train_as_jobs_report_their_card_activate_for_marketing_and_explain_a_lead(
    api: Api, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write_leads(tmp_path / "leads.csv", 400)
    imported = run(capsys, api.db_url, "import", "leads", str(path), "--id-column", "CRM Key")
    assert imported.code == 0, imported.err
    body = {"label": "Deal won", "positive": "yes", "cv": 2}
    assert (
        api.client.post("/api/v1/predictive/models", json=body, headers=api.headers("sales_rep")).status_code
        == 403
    )
    assert (
        api.client.post(
            "/api/v1/predictive/models", json={"positive": "yes"}, headers=api.headers()
        ).status_code
        == 422
    )
    assert api.client.get("/api/v1/predictive/report", headers=api.headers()).status_code == 404
    started = api.client.post("/api/v1/predictive/models", json=body, headers=api.headers("marketing"))
    assert started.status_code == 202, started.text
    job = wait_for_job(api, started.json()["url"], "marketing")
    assert job["status"] == "done", job
    trained = job["result"]
    assert {f["name"] for f in trained["features_excluded"]} >= {"Lead Status", "Row"}
    assert trained["auc"] > 0.7
    model_id = trained["model_id"]
    listed = api.client.get("/api/v1/predictive/models", headers=api.headers("viewer")).json()
    assert [(m["model_id"], m["active"]) for m in listed["items"]] == [(model_id, False)]
    card = api.client.get(f"/api/v1/predictive/models/{model_id}", headers=api.headers("viewer")).json()
    printed = run(capsys, api.db_url, "model", "report", "--model", str(model_id), "--json").json()
    assert card == printed
    assert api.client.get("/api/v1/predictive/models/999", headers=api.headers()).status_code == 404
    ref = "/api/v1/leads/K-7-000001/predictive"
    assert api.client.get(ref, headers=api.headers()).status_code == 404  # no active model yet

    activate = f"/api/v1/predictive/models/{model_id}/activate"
    for who in ("sales_manager", "viewer", "marketing:read"):
        assert api.client.post(activate, headers=api.headers(who)).status_code == 403
    assert api.client.post("/api/v1/predictive/models/999/activate", headers=api.headers()).status_code == 404
    for who in ("sales_manager", "viewer"):
        assert api.client.post(f"{activate}?preview=true", headers=api.headers(who)).status_code == 403
    previewed = api.client.post(f"{activate}?preview=true", headers=api.headers("marketing"))
    assert previewed.status_code == 202
    job = wait_for_job(api, previewed.json()["url"], "marketing")
    assert job["status"] == "done", job
    assert job["result"]["activated"] is False
    assert job["result"]["preview"]["reads_predictive"] is False  # the default scoring model ignores it
    assert "do not read the predictive score" in job["result"]["summary"]
    assert api.client.get(ref, headers=api.headers()).status_code == 404  # the preview activated nothing
    started = api.client.post(activate, headers=api.headers("marketing"))
    assert started.status_code == 202
    job = wait_for_job(api, started.json()["url"], "marketing")
    assert job["status"] == "done", job
    assert job["result"] == {
        "model_id": model_id, "version": 1, "active": True, "scored": 400, "promoted": 0, "routed": 0,
        "queued": 0,
    }  # fmt: skip
    report = api.client.get("/api/v1/predictive/report", headers=api.headers()).json()
    assert (report["model_id"], report["active"]) == (model_id, True)
    explained = api.client.get(f"{ref}?top=2", headers=api.headers("sales_rep"))
    assert explained.status_code == 200, explained.text
    doc = explained.json()
    assert doc["model_id"] == model_id
    assert 0 < doc["probability"] < 1
    assert len(doc["positive"]) <= 2
    cli = run(capsys, api.db_url, "model", "explain", "K-7-000001", "--top", "2", "--json").json()
    assert set(doc) == set(cli)
    assert (doc["model_id"], doc["decile"]) == (cli["model_id"], cli["decile"])
    audit = api.client.get("/api/v1/audit?action=predictive_model.activate", headers=api.headers()).json()
    assert [e["actor"] for e in audit["items"]] == ["marketing-user"]
