"""Scoring models over HTTP, and long operations as jobs (202, then poll)."""

from __future__ import annotations

import time
from typing import Any

from leadstage.adapters.scoring_yaml import default_model_source
from tests.e2e.api.conftest import Api


def _wait(api: Api, url: str, who: str = "admin") -> dict[str, Any]:
    for _ in range(300):
        job = api.client.get(url, headers=api.headers(who)).json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {url} did not finish")


def test_activating_a_model_is_checked_at_once_and_rescoring_runs_as_a_job(api: Api) -> None:
    api.client.post(
        "/api/v1/leads/batch",
        json={"leads": [{"email": f"p{i}@acme.example", "job_title": "CFO"} for i in range(5)]},
        headers=api.headers(),
    )
    bad = api.client.post(
        "/api/v1/scoring/models/validate", json={"source": "name: x\nfit: [oops"}, headers=api.headers()
    )
    assert bad.status_code == 422
    assert "line" in bad.json()["detail"]
    source = default_model_source()
    ok = api.client.post(
        "/api/v1/scoring/models/validate", json={"source": source}, headers=api.headers("viewer:read")
    )
    assert ok.status_code == 200
    assert ok.json()["fit_rules"]
    assert (
        api.client.post(
            "/api/v1/scoring/models", json={"source": source}, headers=api.headers("sales_rep")
        ).status_code
        == 403
    )
    before = api.client.get("/api/v1/scoring/models", headers=api.headers()).json()["total"]
    eager = source.replace(
        "    - {fit: B, engagement: 2}", "    - {fit: B, engagement: 2}\n    - {fit: D}", 1
    )
    assert eager != source
    previewed = api.client.post(
        "/api/v1/scoring/models?preview=true", json={"source": eager, "name": "eager"}, headers=api.headers()
    )
    assert previewed.status_code == 202
    shown = _wait(api, previewed.headers["location"], "admin")
    assert shown["status"] == "done", shown
    assert shown["result"]["activated"] is False
    assert shown["result"]["preview"]["would_promote"] == 5  # every lead meets {fit: D} or better
    assert "promotes 5 leads to MQL now" in shown["result"]["summary"]
    assert api.client.get("/api/v1/scoring/models", headers=api.headers()).json()["total"] == before
    assert (
        api.client.post(
            "/api/v1/scoring/models?preview=true",
            json={"source": "name: x\nfit: [oops"},
            headers=api.headers(),
        ).status_code
        == 422
    )
    started = api.client.post(
        "/api/v1/scoring/models", json={"source": source, "name": "v2"}, headers=api.headers("marketing")
    )
    assert started.status_code == 202
    job = _wait(api, started.headers["location"], "marketing")
    assert job["status"] == "done", job
    assert job["result"]["scored"] == 5
    assert (
        api.client.get(started.headers["location"], headers=api.headers("viewer")).status_code == 404
    )  # not theirs
    models = api.client.get("/api/v1/scoring/models", headers=api.headers()).json()["items"]
    assert [m["active"] for m in models][-1] is True


def test_a_backtest_is_a_job_whose_result_stays_available(api: Api) -> None:
    started = api.client.post(
        "/api/v1/scoring/backtest",
        json={"source": default_model_source(), "capacity": 10},
        headers=api.headers("marketing"),
    )
    assert started.status_code == 202
    job = _wait(api, started.json()["url"], "marketing")
    assert job["status"] in ("done", "failed")
    assert job["kind"] == "backtest"
    again = api.client.get(started.json()["url"], headers=api.headers("marketing")).json()
    assert again["status"] == job["status"]
    assert (
        api.client.post(
            "/api/v1/scoring/backtest", json={"source": "::"}, headers=api.headers("marketing")
        ).status_code
        == 422
    )
