"""The lead page: actions offered by role and state (domain/stages.py), transitions with their inputs and
refusals, qualification, opportunity and win, logged activities, merges, and the disqualification banner."""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

import pytest

from tests.e2e.web.data import lead_id, seed
from tests.e2e.web.pages import Site

ANA = {"email": "ana@northwind.example", "first_name": "Ana", "last_name": "Lopez", "company": "Northwind"}


def _buttons(page: str) -> list[str]:
    """The actions a lead page offers: buttons and the summaries of forms that open."""
    section = page.split('id="actions-heading"')[1].split("</section>")[0]
    return re.findall(r'name="action" value="([a-z_]+)"', section)


def _mql(site: Site) -> int:
    seed(site.container, [ANA])
    ref = lead_id(site.container, ANA["email"])
    moved = site.htmx(
        "mia",
        f"/leads/{ref}/transition",
        {"action": "promote_mql", "reason": "manual", "note": "asked for a call"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.headers["HX-Redirect"] == f"/leads/{ref}"
    return ref


def test_each_role_is_offered_only_what_it_may_do_from_the_leads_state(site: Site) -> None:
    ref = _mql(site)
    assert _buttons(site("rob").get(f"/leads/{ref}").text) == ["accept", "reject", "disqualify"]
    assert _buttons(site("mia").get(f"/leads/{ref}").text) == ["disqualify"]
    assert _buttons(site("vic").get(f"/leads/{ref}").text) == []
    assert "No stage change is open to you" in site("vic").get(f"/leads/{ref}").text
    accepted = site.htmx("rob", f"/leads/{ref}/transition", {"action": "accept"})
    assert accepted.status_code == 200
    # now rob's: rita (another rep) may not act on it, the manager of the team may
    assert _buttons(site("rita").get(f"/leads/{ref}").text) == []
    assert "qualify_sql" in _buttons(site("max").get(f"/leads/{ref}").text)
    refused = site.htmx("rita", f"/leads/{ref}/transition", {"action": "reject", "reason": "no_need"})
    assert refused.status_code == 403
    assert refused.headers["HX-Retarget"] == "#flash"


def test_a_refused_step_says_why_and_the_qualification_form_unlocks_it(site: Site) -> None:
    ref = _mql(site)
    site.htmx("rob", f"/leads/{ref}/transition", {"action": "accept"})
    early = site.htmx("rob", f"/leads/{ref}/transition", {"action": "qualify_sql"})
    assert early.status_code == 409
    assert "Still missing: budget, authority, need, timeline" in early.text
    marketing = site.htmx("mia", f"/leads/{ref}/qualification", {"budget.status": "confirmed"})
    assert marketing.status_code == 403
    recorded = site.htmx(
        "rob",
        f"/leads/{ref}/qualification",
        {
            "budget.status": "confirmed",
            "budget.amount": "40000",
            "budget.currency": "eur",
            "budget.evidence": "CFO said so on the discovery call",
            "authority.level": "decision_maker",
            "authority.role": "CFO",
            "need.status": "confirmed",
            "need.pain": "slow hand-off",
            "timeline.target": "Q1 2027",
        },
    )
    assert recorded.status_code == 200, recorded.text
    page = site("rob").get(f"/leads/{ref}").text
    assert "BANT recorded: the policy is met" in page
    steps = [
        {"action": "qualify_sql"},
        {"action": "open_opportunity", "amount": "40000", "currency": "EUR", "close_date": "2027-01-31"},
        {"action": "win", "amount": "38500", "currency": "EUR", "close_date": "2027-01-20"},
    ]
    for step in steps:
        answer = site.htmx("rob", f"/leads/{ref}/transition", step)
        assert answer.status_code == 200, answer.text
    page = site("rob").get(f"/leads/{ref}").text
    assert 'class="badge stage-customer"' in page
    assert "won 38,500 EUR on 2027-01-20" in page
    assert "40,000 EUR, expected close 2027-01-31" in page


def test_a_stale_page_cannot_overwrite_a_newer_change(site: Site) -> None:
    ref = _mql(site)
    version = re.search(r'name="version" value="(\d+)"', site("rob").get(f"/leads/{ref}").text).group(1)  # type: ignore[union-attr]
    site.htmx("max", f"/leads/{ref}/transition", {"action": "accept"})
    stale = site.htmx(
        "rob", f"/leads/{ref}/transition", {"action": "reject", "reason": "no_need", "version": version}
    )
    assert stale.status_code == 409
    assert "Someone else changed this first" in stale.text


def test_a_logged_call_shows_on_the_timeline_once(site: Site) -> None:
    ref = _mql(site)
    form = {"type": "call", "note": "left a voicemail", "outcome": "voicemail", "key": "k1"}
    assert site.htmx("rob", f"/leads/{ref}/activities", form).status_code == 200
    assert site.htmx("rob", f"/leads/{ref}/activities", form).status_code == 200  # sent twice
    page = site("rob").get(f"/leads/{ref}").text
    assert page.count("left a voicemail") == 1
    assert site.htmx("rob", f"/leads/{ref}/activities", {"type": "page_view"}).status_code == 422
    assert site.htmx("vic", f"/leads/{ref}/activities", form).status_code == 403


def test_possible_duplicates_merge_into_the_lead(site: Site) -> None:
    seed(
        site.container,
        [
            ANA,
            {
                "email": "a.lopez@gmail.example",
                "first_name": "Ana",
                "last_name": "Lopez",
                "company": "Northwind",
            },
        ],
    )
    keep = lead_id(site.container, ANA["email"])
    other = lead_id(site.container, "a.lopez@gmail.example")
    page = site("mia").get(f"/leads/{keep}").text
    assert "Possible duplicates" in page
    assert f'name="other" value="{other}"' in page
    assert f'name="other" value="{other}"' not in site("rob").get(f"/leads/{keep}").text  # reps do not merge
    merged = site.htmx("mia", f"/leads/{keep}/merge", {"other": str(other)})
    assert merged.status_code == 200
    old = site("mia").get(f"/leads/{other}", follow_redirects=False)
    assert old.headers["location"] == f"/leads/{keep}"


def test_a_disqualified_lead_that_comes_back_shows_when_and_why_it_was_disqualified(site: Site) -> None:
    ref = _mql(site)
    out = site.htmx(
        "mia",
        f"/leads/{ref}/transition",
        {"action": "disqualify", "reason": "bad_timing", "note": "budget frozen"},
    )
    assert out.status_code == 200
    seed(site.container, [{**ANA, "source": "event"}])  # she fills in a form again
    page = site("rob").get(f"/leads/{ref}").text
    banner = page.split('data-testid="disqualified-banner"')[1].split("</div>")[0]
    today = site.container.clock.now().date().isoformat()
    assert f"Previously disqualified on {today} for bad_timing by mia" in banner
    assert "budget frozen" in banner
    assert "Re-check from" in banner


def test_the_predictive_score_shows_with_its_top_factors_when_a_model_is_active(
    capsys: pytest.CaptureFixture[str], sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.cli_runner import run
    from tests.integration.test_predictive import load, write_leads

    load(capsys, sqlite_url, write_leads(tmp_path / "leads.csv", 400))
    site = _site(sqlite_url, monkeypatch)
    with site.clients["anonymous"]:
        ref = lead_id(site.container, "K-7-000001")
        assert 'data-testid="predictive"' not in site("rob").get(f"/leads/{ref}").text  # no active model
        trained = run(
            capsys, sqlite_url, "model", "train", "--label", "Deal won", "--positive", "yes", "--json"
        )
        assert trained.code == 0, trained.err
        assert run(capsys, sqlite_url, "model", "activate", str(trained.json()["model_id"])).code == 0
        page = site("rob").get(f"/leads/{ref}").text
        why = run(capsys, sqlite_url, "model", "explain", "K-7-000001", "--json").json()
    shown = page.split('data-testid="predictive"')[1].split("</ul>")[0]
    assert f"{why['probability'] * 100:.1f}%" in shown
    assert f"decile {why['decile']} of 10" in shown
    for factor in why["positive"] + why["negative"]:
        assert escape(factor["text"]) in shown
    site.container.close()


def _site(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Site:
    from fastapi.testclient import TestClient

    from leadstage.api.app import create_app
    from leadstage.bootstrap import build
    from leadstage.config import Settings
    from tests.e2e.web.pages import add_people

    monkeypatch.setenv("LEADSTAGE_TICK_SECONDS", "0")
    container = build(Settings(database_url=db_url))
    add_people(container)
    app = create_app(Settings(database_url=db_url))
    return Site(app, container, {"anonymous": TestClient(app, base_url="http://testserver")})
