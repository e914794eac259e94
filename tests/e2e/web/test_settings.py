"""The settings pages, rendered in-process on SQLite and PostgreSQL: which role may open and change each,
and each change going through the services (validated, stored, audited) exactly as from the CLI."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from leadstage.services import audit
from leadstage.services import segments as segment_service
from leadstage.services.leads import BUILTIN_ADMIN
from tests.cli_runner import run
from tests.e2e.web.data import seed
from tests.e2e.web.pages import Site
from tests.integration.test_predictive import write_leads

DEFAULT_MODEL = (files("leadstage.adapters.models") / "default_scoring.yaml").read_text()
ROUTING = """teams:
  emea:
    manager: max
    timezone: Europe/Berlin
    hours: {mon-fri: "09:00-17:00"}
    first_response: 4h
    daily_capacity: 40
    members:
      rob: {weight: 2}
      rita: {}
rules:
  - {name: everyone, team: emea}
"""
#: page -> the people who may open it (site's people: ada admin, mia marketing, max sales manager,
#: rob sales rep, vic viewer)
ALLOWED = {
    "/settings": {"ada", "mia", "max"},
    "/settings/scoring": {"ada", "mia"},
    "/settings/segments": {"ada", "mia", "max"},
    "/settings/routing": {"ada", "mia", "max"},
    "/settings/predictive": {"ada", "mia"},
    "/settings/users": {"ada"},
    "/settings/webhooks": {"ada"},
    "/settings/audit": {"ada"},
}


def _audited(site: Site, action: str) -> list[Any]:
    with site.container.uow() as uow:
        return audit.entries(uow, actor=BUILTIN_ADMIN, who=None, action=action, since=None, limit=10)


def _problem(page: str) -> str:
    found = re.search(r'data-testid="problem">(.*?)</div>', page, re.S)
    assert found, page[:3000]
    return found.group(1)


def _wait_for_job(site: Site, who: str, page: str) -> str:
    """Follow the job a page started until it is done; its box."""
    job_id = re.search(r'hx-get="/jobs/([0-9a-f]+)"', page)
    assert job_id, page[:3000]
    for _ in range(300):
        box = site(who).get(f"/jobs/{job_id.group(1)}", headers={"HX-Request": "true"}).text
        status = re.search(r'data-status="(\w+)"', box)
        assert status, box
        if status.group(1) in ("done", "failed"):
            assert status.group(1) == "done", box
            return str(box)
        time.sleep(0.1)
    raise AssertionError("the job did not finish")


def test_each_settings_page_opens_for_the_roles_that_use_it_and_refuses_the_others(site: Site) -> None:
    for path, allowed in ALLOWED.items():
        for who in ("ada", "mia", "max", "rob", "vic"):
            answer = site(who).get(path)
            assert answer.status_code == (200 if who in allowed else 403), (path, who, answer.text[:500])
            if who not in allowed:
                assert "Not allowed" in answer.text
    index = site("max").get("/settings").text
    assert 'href="/settings/segments"' in index
    assert 'href="/settings/routing"' in index
    assert 'href="/settings/scoring"' not in index
    assert 'href="/settings/users"' not in index
    # changes are refused on the server, whatever the page showed
    assert (
        site.post("max", "/settings/scoring", {"source": DEFAULT_MODEL, "action": "check"}).status_code == 403
    )
    assert site.post("mia", "/settings/routing", {"source": ROUTING}).status_code == 403
    assert site.post("mia", "/settings/users", {"username": "x", "role": "viewer"}).status_code == 403
    assert site.post("max", "/settings/tokens", {"user": "max"}).status_code == 403
    assert (
        site.post("rob", "/settings/segments", {"name": "Mine", "filter": "stage = mql"}).status_code == 403
    )
    assert site.post("mia", "/settings/webhooks", {"url": "https://x.example/h", "events": ["lead.created"]}).status_code == 403  # fmt: skip
    assert site.post("max", "/settings/predictive/1/activate").status_code == 403
    assert site.post("max", "/settings/predictive/1/preview").status_code == 403
    # and without the session's CSRF token
    assert (
        site("ada").post("/settings/segments", data={"name": "X", "filter": "stage = mql"}).status_code == 403
    )


def test_an_invalid_scoring_model_names_the_line_and_key_and_leaves_the_active_model(site: Site) -> None:
    seed(site.container, [{"email": f"s{i}@firm{i}.example", "Seniority": "VP"} for i in range(5)])
    with site.container.uow() as uow:
        active = uow.scoring.active_model()
    assert active is not None
    bad = DEFAULT_MODEL.replace("points: 30}", "points: lots}", 1)
    for action in ("check", "backtest", "activate"):
        answer = site.post("mia", "/settings/scoring", {"source": bad, "action": action})
        assert answer.status_code == 422
        problem = _problem(answer.text)
        assert "line 13: fit.rules[0].points: expected a number, got &#39;lots&#39;" in problem
        assert "▶     - {name: executive" in problem  # the line it names, marked
        assert "points: lots" in answer.text  # the text stays in the editor
    assert "Not activated: the active model stays as it was." in answer.text
    with site.container.uow() as uow:
        assert uow.scoring.active_model() == active
        assert len(uow.scoring.models()) == 1


def test_a_scoring_model_is_checked_backtested_then_activated_and_every_lead_rescored(site: Site) -> None:
    seed(site.container, [{"email": f"s{i}@firm{i}.example", "Seniority": "VP"} for i in range(5)])
    candidate = DEFAULT_MODEL.replace("name: Default B2B model", "name: Stricter model", 1)
    checked = site.post("mia", "/settings/scoring", {"source": candidate, "action": "check"})
    assert checked.status_code == 200
    assert "Stricter model is valid." in checked.text
    started = site.post(
        "mia", "/settings/scoring", {"source": candidate, "action": "backtest", "capacity": "2"}
    )
    assert started.status_code == 200
    result = _wait_for_job(site, "mia", started.text)
    assert "Backtest: Stricter model beside the active version 1" in result
    assert "5 leads replayed" in result
    assert (
        site("max").get(started.text.split('hx-get="', 1)[1].split('"', 1)[0]).status_code == 404
    )  # not his
    with site.container.uow() as uow:
        assert len(uow.scoring.models()) == 1  # a backtest stores nothing
    previewed = site.post("mia", "/settings/scoring", {"source": candidate, "action": "preview"})
    assert previewed.status_code == 200
    shown = _wait_for_job(site, "mia", previewed.text)
    assert "Stricter model:</strong> activating it promotes" in shown
    assert "Nothing is stored yet." in shown
    assert 'form="scoring-form" name="action" value="activate"' in shown  # the confirmation button
    with site.container.uow() as uow:
        assert len(uow.scoring.models()) == 1  # a preview stores nothing
    activated = site.post("mia", "/settings/scoring", {"source": candidate, "action": "activate"})
    assert activated.status_code == 200
    assert "Version 2 (Stricter model) is active" in activated.text
    done = _wait_for_job(site, "mia", activated.text)
    assert "Every lead rescored with version 2" in done
    assert "5 leads" in done
    with site.container.uow() as uow:
        active = uow.scoring.active_model()
        assert active is not None
        assert active.version == 2
        assert active.created_by == "mia"
    assert _audited(site, "scoring_model.activate")[0]["actor"] == "mia"
    old = site("mia").get("/settings/scoring", params={"version": 1}).text
    assert "Version 1 (not active)" in old


def test_segments_are_saved_with_their_filter_checked_and_become_views_of_the_lead_list(site: Site) -> None:
    seed(site.container, [{"email": f"g{i}@firm{i}.example", "Seniority": "C-level"} for i in range(3)])
    broken = site.post(
        "max", "/settings/segments", {"name": "Broken", "filter": "stage = mql and fit_grade >= E"}
    )
    assert broken.status_code == 422
    problem = _problem(broken.text)
    assert "position 30: fit_grade is a grade A (best), B, C or D; got E" in problem
    assert "stage = mql and fit_grade &gt;= E\n" + " " * 29 + "^" in problem
    saved = site.post(
        "max",
        "/settings/segments",
        {"name": "Top people", "filter": 'stage = lead and email contains "firm"', "description": "x"},
    )
    assert saved.status_code == 200
    assert "Segment Top people saved." in saved.text
    with site.container.uow() as uow:
        assert uow.segments.get("Broken") is None
        assert uow.segments.get("Top people") is not None
    assert '<option value="Top people"' in site("rob").get("/leads").text  # a view in the lead list
    listed = site("max").get("/settings/segments").text
    assert 'hx-get="/settings/segments/count?name=Top%20people"' in listed  # counted by its own request
    with site.container.uow() as uow:
        expected = segment_service.count_segment(uow, "Top people", as_of=site.container.clock.now())
    counted = site("max").get("/settings/segments/count", params={"name": "Top people"})
    assert counted.text == f'<td class="num" data-testid="count">{expected:,}</td>'
    assert expected > 0
    taken = site.post("mia", "/settings/segments", {"name": "Top people", "filter": "stage = lead"})
    assert taken.status_code == 422
    assert "already exists" in taken.text
    gone = site.post("mia", "/settings/segments/delete", {"name": "Top people"})
    assert "Segment Top people deleted." in gone.text
    with site.container.uow() as uow:
        assert uow.segments.get("Top people") is None


def test_routing_is_validated_set_by_managers_and_shown_with_team_capacity(site: Site) -> None:
    empty = site("mia").get("/settings/routing").text
    assert "No routing document yet" in empty
    assert 'name="source"' not in empty  # marketing looks, managers and administrators change
    wrong = ROUTING.replace("rita: {}", "nobody: {}")
    refused = site.post("max", "/settings/routing", {"source": wrong})
    assert refused.status_code == 422
    assert "nobody" in _problem(refused.text)
    with site.container.uow() as uow:
        assert uow.routing.active() is None
    done = site.post("max", "/settings/routing", {"source": ROUTING})
    assert done.status_code == 200
    assert "Routing version 1 is active." in done.text
    page = site("mia").get("/settings/routing").text
    assert "of 40 a day" in page
    assert 'data-testid="team-emea"' in page
    assert _audited(site, "routing.set")[0]["actor"] == "max"


def test_users_and_tokens_are_managed_by_administrators_and_a_token_is_shown_once(site: Site) -> None:
    short = site.post(
        "ada", "/settings/users", {"username": "nora", "role": "marketing", "password": "short"}
    )
    assert short.status_code == 422
    assert "at least 8 characters" in short.text
    added = site.post("ada", "/settings/users",
                      {"username": "nora", "role": "marketing", "team": "", "email": "nora@acme.example",
                       "password": "long enough"})  # fmt: skip
    assert added.status_code == 200
    assert "User nora added (marketing)." in added.text
    assert site.post("ada", "/settings/users", {"username": "nora", "role": "viewer"}).status_code == 422
    made = site.post("ada", "/settings/tokens", {"user": "nora", "scope": "read", "name": "reporting"})
    token = re.search(r'data-testid="token-value">([^<]+)<', made.text)
    assert token, made.text[:2000]
    me = site("anonymous").get("/api/v1/me", headers={"Authorization": f"Bearer {token.group(1)}"})
    assert me.json() == {"username": "nora", "role": "marketing", "team": None, "scope": "read"}
    listed = site("ada").get("/settings/users").text
    assert token.group(1) not in listed  # shown once
    assert token.group(1)[:10] in listed  # its prefix identifies it
    token_id = re.search(r'action="/settings/tokens/(\d+)/revoke"', listed)
    assert token_id
    site.post("ada", f"/settings/tokens/{token_id.group(1)}/revoke")
    assert site("anonymous").get("/api/v1/me", headers={"Authorization": f"Bearer {token.group(1)}"}).status_code == 401  # fmt: skip
    gone = site.post("ada", "/settings/users/deactivate", {"username": "nora"})
    assert "nora deactivated" in gone.text
    with site.container.uow() as uow:
        nora = uow.users.get_by_username("nora")
        assert nora is not None
        assert not nora.active
    latest = _audited(site, "user.add")[0]
    assert (latest["actor"], latest["target"]) == ("ada", "nora")
    assert _audited(site, "token.revoke")[0]["actor"] == "ada"


def test_webhooks_are_added_with_a_secret_shown_once_logged_and_stopped(site: Site) -> None:
    bad = site.post("ada", "/settings/webhooks", {"url": "ftp://x", "events": ["lead.created"]})
    assert bad.status_code == 422
    assert "url must be an http(s) URL" in _problem(bad.text)
    added = site.post("ada", "/settings/webhooks", {"url": "https://crm.example/hook", "events": ["lead.created", "sla.breached"]})  # fmt: skip
    assert added.status_code == 200
    secret = re.search(r'<p class="secret">(whsec_[^<]+)<', added.text)
    assert secret
    assert secret.group(1) not in site("ada").get("/settings/webhooks").text
    with site.container.uow() as uow:
        (sub,) = uow.webhooks.subscriptions()
    assert sub.events == ["lead.created", "sla.breached"]
    log = site("ada").get(f"/settings/webhooks/{sub.id}")
    assert log.status_code == 200
    assert 'data-testid="deliveries"' in log.text
    stopped = site.post("ada", f"/settings/webhooks/{sub.id}/remove")
    assert "stopped" in stopped.text
    assert [e["action"] for e in _audited(site, "webhook.remove")] == ["webhook.remove"]
    assert site("ada").get("/settings/webhooks/999").status_code == 404


def test_a_trained_predictive_model_shows_its_card_and_is_activated(
    site: Site, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "No predictive model yet" in site("mia").get("/settings/predictive").text
    path = write_leads(tmp_path / "leads.csv", 400)
    assert run(capsys, db_url, "import", "leads", str(path), "--id-column", "CRM Key").code == 0
    trained = run(capsys, db_url, "model", "train", "--label", "Deal won", "--positive", "yes", "--json")
    assert trained.code == 0, trained.err
    model_id = trained.json()["model_id"]
    page = site("mia").get("/settings/predictive").text
    assert f'data-testid="card-auc">{trained.json()["auc"]}<' in page
    assert "Lead Status" in page  # excluded by the leakage guard, with why
    previewed = site.post("mia", f"/settings/predictive/{model_id}/preview")
    assert previewed.status_code == 200
    shown = _wait_for_job(site, "mia", previewed.text)
    assert "MQL criteria do not read the predictive score" in shown
    assert f'action="/settings/predictive/{model_id}/activate"' in shown  # the confirmation form
    with site.container.uow() as uow:
        assert uow.predictive.active_model() is None  # a preview activates nothing
    started = site.post("mia", f"/settings/predictive/{model_id}/activate")
    assert started.status_code == 200
    done = _wait_for_job(site, "mia", started.text)
    assert f"Predictive model {model_id}" in done
    assert "400 leads scored, 0 promoted to MQL" in done
    with site.container.uow() as uow:
        active = uow.predictive.active_model()
        assert active is not None
        assert active.id == model_id
    assert _audited(site, "predictive_model.activate")[0]["actor"] == "mia"


def test_the_audit_log_page_shows_who_did_what_filtered_and_only_to_administrators(site: Site) -> None:
    made = site.post("ada", "/settings/tokens", {"user": "mia", "scope": "read", "name": "reporting"})
    assert made.status_code == 200
    seed(site.container, [{"email": "a1@firm.example"}])
    with site.container.uow(write=True) as uow:
        audit.record(uow, "mia", "lead.export", at=datetime.now(UTC), target="leads.csv", rows=1)
        uow.commit()
    page = site("ada").get("/settings/audit")
    assert page.status_code == 200
    rows = re.findall(r"<tr><td class=\"small\">[^<]*</td><th scope=\"row\">([^<]+)</th><td><code>([^<]+)</code>",
                      page.text)  # fmt: skip
    assert ("ada", "token.create") in rows
    assert ("mia", "lead.export") in rows
    assert rows[0] == ("mia", "lead.export")  # newest first
    only = site("ada").get("/settings/audit", params={"action": "token.create"}).text
    found = re.findall(r"<code>([a-z_.]+)</code></td>", only)
    assert found
    assert set(found) == {"token.create"}
    by_mia = site("ada").get("/settings/audit", params={"actor": "mia"}).text
    assert set(re.findall(r"<code>([a-z_.]+)</code></td>", by_mia)) == {"lead.export"}
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert (
        "No entry matches these filters."
        in site("ada").get("/settings/audit", params={"since": tomorrow}).text
    )
    wrong = site("ada").get("/settings/audit", params={"since": "last week"})
    assert wrong.status_code == 422
    assert "since: a date as YYYY-MM-DD, got &#39;last week&#39;" in _problem(wrong.text)
    for who in ("mia", "max", "rob", "vic"):
        assert site(who).get("/settings/audit").status_code == 403
