"""The workspace in a real browser (Chromium through Playwright) against ``leadstage serve`` with the demo
company: each role logs in through the form and works through its pages; JOURNEYS.md 2 from a captured
web form to customer and evangelist; a disqualified lead that comes back shows its banner; a card dragged
on the pipeline board. Every page is screenshotted and no page may log a console error (conftest.py)."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from tests.e2e.web.conftest import Browsing, Live

pytestmark = pytest.mark.xdist_group("browser")  # one live server and one Chromium for all of them

MENU = ["Work queue", "Leads", "Pipeline", "Dashboard", "Settings"]
#: What each role's menu offers at most and never (pages another helper adds appear when they exist).
ROLE_MENU = {
    "marketing": ({"Leads", "Pipeline", "Dashboard", "Settings"}, {"Work queue"}),
    "sales_rep": ({"Work queue", "Leads", "Pipeline"}, {"Dashboard", "Settings"}),
    "sales_manager": ({"Work queue", "Leads", "Pipeline", "Dashboard", "Settings"}, set()),
}


def _menu(web: Browsing) -> list[str]:
    return [
        label.strip()
        for label in web.page.get_by_role("navigation", name="Main").get_by_role("link").all_inner_texts()
    ]


def _status(web: Browsing, method: str, path: str, form: dict[str, Any] | None = None) -> int:
    """A request with the page's session and CSRF token, outside the page (no console noise)."""
    token = json.loads(web.page.locator("body").get_attribute("hx-headers") or "{}")["X-CSRF-Token"]
    headers = {"X-CSRF-Token": token}
    answer = web.page.request.fetch(web.url(path), method=method, form=form, headers=headers, max_redirects=0)
    return int(answer.status)


@pytest.mark.parametrize("role", ["marketing", "sales_rep", "sales_manager"])
def test_each_role_sees_and_can_do_exactly_what_it_should(web: Browsing, role: str) -> None:
    web.goto("/login", "login")
    assert web.page.get_by_role("button", name="Log in").count() == 1
    web.login(role)
    menu = _menu(web)
    allowed, never = ROLE_MENU[role]
    assert set(menu) <= allowed
    assert not set(menu) & never
    assert {"Leads", "Pipeline"} <= set(menu)
    home = {"marketing": "/dashboard" if "Dashboard" in menu else "/leads"}.get(role, "/queue")
    assert web.path() == home
    web.screenshot("home")
    for label in menu:  # every page of the menu, reached from the menu
        web.page.get_by_role("navigation", name="Main").get_by_role("link", name=label).click()
        web.page.wait_for_load_state("load")
        current = web.page.get_by_role("navigation", name="Main").get_by_role("link", name=label, exact=True)
        assert current.get_attribute("aria-current") == "page"
        web.screenshot(label.lower().replace(" ", "-"))

    web.goto("/leads")
    web.page.get_by_label("Fit grade at least").select_option("A")
    web.page.get_by_role("button", name="Apply filters").click()
    web.page.get_by_test_id("view-filter").wait_for()
    assert web.page.get_by_test_id("view-filter").inner_text() == "fit_grade >= A"
    assert "fit=A" in web.page.url  # the address is the view ...
    assert "stage=" not in web.page.url  # ... without its empty fields
    web.screenshot("leads-fit-a")
    bulk = web.page.get_by_role("group", name="With the selected leads")
    assert bulk.get_by_role("button", name="Assign").count() == (1 if role == "sales_manager" else 0)
    assert bulk.get_by_role("button", name="Add to segment").count() == (0 if role == "sales_rep" else 1)
    assert bulk.get_by_role("button", name="Disqualify").count() == 1
    may_export = role != "sales_rep"
    assert web.page.get_by_role("link", name="Export this view (CSV)").count() == int(may_export)
    assert _status(web, "GET", "/leads/export.csv?fit=A") == (200 if may_export else 403)
    assert _status(web, "GET", "/queue") == (403 if role == "marketing" else 200)
    assign = {"action": "assign", "ids": "1", "assignee": "ben.carter.na-east"}
    assert _status(web, "POST", "/leads/bulk", assign) == (200 if role == "sales_manager" else 403)

    web.page.get_by_role("table").get_by_role("link").first.click()  # the best lead of the view
    web.page.get_by_role("heading", name="Stage history").wait_for()
    web.screenshot("lead")
    web.goto("/leads/new", "new-lead")
    assert web.page.get_by_label("Email").count() == 1


def _capture(web: Browsing, fields: dict[str, str]) -> None:
    """The company's website: its form posts to the capture endpoint; the browser follows the thank-you."""
    inputs = "".join(f'<input name="{k}" value="{v}">' for k, v in fields.items())
    web.page.set_content(
        f'<form method="post" action="{web.live.base}/api/v1/capture/{web.live.form_key}">{inputs}'
        '<input name="_hp" value="" type="hidden"><button type="submit">Send me the eBook</button></form>'
    )
    web.page.get_by_role("button", name="Send me the eBook").click()
    web.page.wait_for_url(re.compile(r".*/login.*"))


def _activities(live: Live, email: str, items: list[tuple[str, str, dict[str, Any]]]) -> None:
    batch = {
        "activities": [
            {
                "email": email,
                "type": kind,
                "occurred_at": at,
                "idempotency_key": f"{email}-{kind}-{at}",
                **extra,
            }
            for kind, at, extra in items
        ]
    }
    stored = _lead(live, email)["activity_count"]
    status, body = live.api("POST", "/api/v1/activities/batch", batch)
    assert status == 200, body
    assert body["rejected"] == 0, body
    # the server's follow-up stores them within about a second (ADR 24), with what they tell (advocacy)
    deadline = time.monotonic() + 30
    while _lead(live, email)["activity_count"] < stored + body["created"]:
        assert time.monotonic() < deadline, "the server's follow-up did not store the activities"
        time.sleep(0.1)


def _lead(live: Live, email: str) -> dict[str, Any]:
    status, lead = live.api("GET", f"/api/v1/leads/{email}")
    assert status == 200, lead
    return lead


def test_journey_2_a_hot_lead_from_a_web_form_to_customer_and_evangelist(web: Browsing) -> None:
    """JOURNEYS.md 2 through the workspace: the form, automatic promotion and routing, the rep's call,
    acceptance, BANT, SQL (marketing could not), opportunity and win; later advocacy; all on one page."""
    email = f"cfo.{int(time.time())}@heavyhaul-logistics.example"
    _capture(
        web,
        {"email": email, "first_name": "Clara", "last_name": "Fenwick", "job_title": "CFO", "company": "HeavyHaul Logistics",
         "Seniority": "C-level", "Department": "Finance", "Industry": "Logistics & Transportation", "Employees": "400",
         "Country": "United States"},
    )  # fmt: skip
    lead = _lead(web.live, email)
    assert lead["stage"] == "lead"
    _activities(
        web.live,
        email,
        [
            (
                "content_download",
                "2026-11-02T09:00:00Z",
                {"source": "paid_search", "content": "eBook: Freight Costs"},
            ),
            (
                "webinar_attended",
                "2026-11-09T16:00:00Z",
                {"source": "email", "content": "Webinar: Forecasting"},
            ),
            ("page_view", "2026-11-10T10:00:00Z", {"source": "direct", "properties": {"page": "/pricing"}}),
            ("page_view", "2026-11-11T10:00:00Z", {"source": "direct", "properties": {"page": "/pricing"}}),
        ],
    )
    web.live.tick()  # the background loop routes new MQLs
    lead = _lead(web.live, email)
    assert (lead["stage"], lead["status"]) == ("mql", "open")
    promotion = next(h for h in lead["history"] if h["action"] == "promote_mql")
    assert promotion["actor"] == "system"
    owner = lead["owner"]
    assert owner in ("ben.carter.na-east", "sofia.reyes.na-west")  # routed by territory (North America)

    # marketing sees the MQL but may not accept or qualify it
    web.login("marketing", f"/leads/{lead['id']}")
    assert web.page.get_by_role("button", name="Accept the MQL").count() == 0
    web.screenshot("marketing-sees-the-mql")
    web.logout()

    # the rep: the MQL is in their queue with its response deadline; they call, then accept
    web.login(owner)
    assert web.path() == "/queue"
    row = web.page.get_by_role("row").filter(has_text="Clara Fenwick")
    row.get_by_role("link", name="Clara Fenwick").wait_for()
    assert row.locator(".countdown").count() == 1
    web.screenshot("queue-with-the-mql")
    row.get_by_role("link", name="Clara Fenwick").click()
    web.page.get_by_role("heading", name="Stage history").wait_for()
    web.page.get_by_label("What", exact=True).select_option("call")
    web.page.get_by_label("Outcome", exact=True).fill("reached her")
    web.page.get_by_label("Note", exact=True).fill("Discovery call booked for Thursday")
    web.page.get_by_role("button", name="Log it").click()
    web.page.get_by_text("Call logged.").wait_for()
    web.goto("/queue")
    web.page.get_by_role("button", name="Accept Clara Fenwick").click()
    web.page.get_by_text(f"Accept the MQL: lead {lead['id']} is now mql/working.").wait_for()

    # discovery call: BANT on the lead's page, then SQL, opportunity, win
    web.goto(f"/leads/{lead['id']}")
    web.page.get_by_role("button", name="Qualify as SQL").click()
    web.page.get_by_text("Still missing: budget, authority, need, timeline").wait_for()  # not yet: explained
    form = web.page.locator("form[action$='/qualification']")
    form.get_by_label("Status").first.select_option("confirmed")
    form.get_by_label("Amount").fill("40000")
    form.get_by_label("Currency").fill("USD")
    form.get_by_label("Level").select_option("decision_maker")
    form.get_by_role("group", name="Need").get_by_label("Status").select_option("confirmed")
    form.get_by_label("Target").fill("Q1 2027")
    form.get_by_role("group", name="Budget").get_by_label("Evidence").fill(
        "Budget of 40k confirmed by the CFO"
    )
    web.screenshot("bant-form")
    form.get_by_role("button", name="Record qualification").click()
    web.page.get_by_text("BANT recorded: the policy is met").wait_for()
    web.goto("/pipeline")  # the rep moves her on the board: mql/working to SQL is qualify_sql
    card = web.page.locator(".lead-card").filter(has_text="Clara Fenwick")
    card.drag_to(web.page.locator(".column[data-stage='sql']"))
    web.page.get_by_text(f"Lead {lead['id']}: qualify sql, now at sql.").wait_for()
    assert (
        web.page.locator(".column[data-stage='sql']").get_by_role("link", name="Clara Fenwick").count() == 1
    )
    web.screenshot("moved-to-sql")
    web.goto(f"/leads/{lead['id']}")
    web.page.get_by_text("Open an opportunity…").click()
    opp = web.page.locator("details.action[open]").filter(has_text="Open an opportunity…").locator("form")
    opp.get_by_label("Amount").fill("40000")
    opp.get_by_label("Currency").fill("USD")
    opp.get_by_label("Expected close date").fill("2027-01-31")
    opp.get_by_role("button", name="Open an opportunity").click()
    web.page.get_by_text("is now opportunity/working").wait_for()
    web.page.get_by_text("Mark won…").click()
    won = web.page.locator("details.action[open]").filter(has_text="Mark won…").locator("form")
    won.get_by_label("Closed amount").fill("38000")
    won.get_by_label("Currency").fill("USD")
    won.get_by_label("Closed on").fill("2027-01-20")
    won.get_by_role("button", name="Mark won").click()
    web.page.get_by_text("is now customer/open").wait_for()
    web.screenshot("customer")

    # six months later: a referral and a review make her an evangelist (by the system)
    _activities(
        web.live,
        email,
        [
            ("referral_made", "2027-07-01T10:00:00Z", {}),
            ("review", "2027-07-03T10:00:00Z", {"source": "referral"}),
        ],
    )
    web.page.reload()
    history = web.page.get_by_test_id("history").inner_text()
    for step in ("create", "promote mql", "accept", "qualify sql", "open opportunity", "win", "advocate"):
        assert step in history, (step, history)
    assert "38,000 USD" in history
    assert "Evangelist" in web.page.locator(".page-head").inner_text()
    activities = web.page.get_by_test_id("activities").inner_text()
    assert "Discovery call booked for Thursday" in activities
    assert "eBook: Freight Costs" in activities
    web.screenshot("evangelist-whole-story")


def test_a_disqualified_lead_that_fills_in_a_form_again_shows_its_banner(web: Browsing) -> None:
    email = f"vp.{int(time.time())}@shopfront-retail.example"
    _capture(web, {"email": email, "first_name": "Victor", "last_name": "Hale", "job_title": "VP Operations",
                   "company": "Shopfront Retail"})  # fmt: skip
    ref = _lead(web.live, email)["id"]
    web.login("marketing", f"/leads/{ref}")
    web.page.get_by_text("Disqualify…").click()
    dq = web.page.locator("details.action[open]").filter(has_text="Disqualify…").locator("form")
    dq.get_by_label("Reason").select_option("bad_timing")
    dq.get_by_label("Note (required)").fill("Budget frozen until next fiscal year")
    dq.get_by_role("button", name="Disqualify").click()
    web.page.get_by_text("is now lead/disqualified").wait_for()
    web.logout()
    _capture(web, {"email": email, "first_name": "Victor"})  # three weeks later, the same person
    web.login("sales_manager", f"/leads/{ref}")
    banner = web.page.get_by_test_id("disqualified-banner")
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert re.search(
        rf"Previously disqualified on {today} for bad_timing by nina\.patel", banner.inner_text()
    )
    assert "Budget frozen until next fiscal year" in banner.inner_text()
    assert "disqualified" in web.page.locator(".page-head").inner_text()
    web.screenshot("resurfaced-banner")


def test_a_card_dragged_to_another_stage_moves_or_says_why_not(web: Browsing) -> None:
    web.login("sales_manager", "/pipeline")
    web.screenshot("board")
    card = web.page.locator(".column[data-stage='mql'] .lead-card").first
    name = card.locator(".name").inner_text()
    card.drag_to(web.page.locator(".column[data-stage='customer']"))
    alert = web.page.locator("#flash .flash.error")
    alert.wait_for()
    assert "no action you may take moves a lead from mql/" in alert.inner_text()
    assert "Allowed from here" in alert.inner_text()
    web.screenshot("refused-move")
    assert web.page.locator(".column[data-stage='mql']").get_by_text(name).count() >= 1  # it stayed
    assert card.locator("select[name=to]").input_value() == "mql"
