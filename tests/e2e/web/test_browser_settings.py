"""The settings pages in a real browser, against a copy of the demo company behind a server of its own
(these tests change settings; the other browser tests keep theirs): each page renders for the roles that
use it and refuses the others with the 403 page, and one real change is made on each. Every page is
screenshotted; no page may log a console error (the 403 status of a refused page is the one expected)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing

import pytest

from tests.cli_runner import run_process
from tests.e2e.api.test_live_server import _serving
from tests.e2e.web.conftest import Browsing, Live
from tests.e2e.web.expect import expect_refused, expect_status

pytestmark = pytest.mark.xdist_group("browser")  # one Chromium for all of them

PAGES = {
    "/settings/scoring": {"admin", "marketing"},
    "/settings/segments": {"admin", "marketing", "sales_manager"},
    "/settings/routing": {"admin", "marketing", "sales_manager"},
    "/settings/predictive": {"admin", "marketing"},
    "/settings/users": {"admin"},
    "/settings/webhooks": {"admin"},
    "/settings/audit": {"admin"},
}


@pytest.fixture(scope="session")
def live(live: Live, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The shared demo company copied (SQLite's online backup) and served on a port of its own."""
    tmp = tmp_path_factory.mktemp("web-settings")
    copy = tmp / "settings.db"
    with (
        closing(sqlite3.connect(live.db_url.removeprefix("sqlite:///"))) as source,
        closing(sqlite3.connect(copy)) as target,
    ):
        source.backup(target)
    db_url = f"sqlite:///{copy}"
    with _serving(db_url, tmp, {"LEADSTAGE_TICK_SECONDS": "0"}) as base:
        yield Live(base, db_url, tmp, live.form_key, live.token)  # the copy holds the same form and token


def test_each_settings_page_renders_for_its_roles_and_refuses_the_others(web: Browsing) -> None:
    for role in ("marketing", "sales_manager", "admin"):
        web.login(role, "/settings")
        web.page.wait_for_url(re.compile(r".*/settings$"))
        web.screenshot(f"settings-{role}")
        for path, roles in PAGES.items():
            name = path.rsplit("/", 1)[1]
            if role in roles:
                assert web.goto(path, shot=f"{name}-{role}").status == 200
                assert web.page.get_by_role("navigation", name="Settings").is_visible()
            else:
                expect_refused(web, path, f"{name}-refused-{role}")
        web.logout()
    web.login("sales_rep", "/leads")
    expect_refused(web, "/settings", "settings-refused-sales_rep")
    expect_refused(web, "/settings/segments", "segments-refused-sales_rep")


def test_an_invalid_scoring_model_shows_the_line_and_key_and_a_backtest_previews_a_valid_one(
    web: Browsing,
) -> None:
    web.login("marketing", "/settings/scoring")
    active = web.page.get_by_test_id("active-model").inner_text()
    editor = web.page.get_by_label("Scoring model (YAML)", exact=False)
    good = editor.input_value()
    editor.fill(good.replace("points: 30}", "points: lots}", 1))
    web.page.get_by_role("button", name="Activate…").click()
    problem = web.page.get_by_test_id("problem")
    problem.wait_for()
    assert "line 13: fit.rules[0].points: expected a number, got 'lots'" in problem.inner_text()
    assert "Not activated: the active model stays as it was." in problem.inner_text()
    web.screenshot("scoring-invalid")
    expect_status(web, 422, "/settings/scoring")  # the form comes back with 422 and the problem
    assert web.page.get_by_test_id("active-model").inner_text() == active  # unchanged
    web.page.get_by_label("Scoring model (YAML)", exact=False).fill(good)
    web.page.get_by_label("Leads a week sales can work").fill("5")
    web.page.get_by_role("button", name="Backtest beside the active model").click()
    result = web.page.locator('[data-testid="job"][data-status="done"]')
    result.wait_for(timeout=60_000)  # the box asks the server every second until the job is done
    assert "Backtest: Default B2B model beside the active version" in result.inner_text()
    assert web.page.get_by_test_id("backtest-totals").is_visible()
    web.screenshot("scoring-backtest")
    web.page.get_by_role("button", name="Activate…").click()  # first: what it would promote now
    shown = web.page.get_by_test_id("activation-preview")
    shown.wait_for(timeout=60_000)
    assert "Default B2B model:" in shown.inner_text()
    assert web.page.get_by_role("button", name="Activate now and rescore every lead").is_visible()
    assert web.page.get_by_test_id("active-model").inner_text() == active  # nothing stored yet
    web.screenshot("scoring-activation-preview")


def test_a_segment_saved_in_settings_is_a_view_of_the_lead_list(web: Browsing) -> None:
    web.login("sales_manager", "/settings/segments")
    web.page.get_by_label("Name", exact=True).fill("Browser picks")
    web.page.get_by_label("Filter", exact=True).fill("fit_grade >= B and stage = mql")
    web.page.get_by_role("button", name="Save segment").click()
    web.page.get_by_text("Segment Browser picks saved.").wait_for()
    web.screenshot("segments-saved")
    web.goto("/leads")
    views = web.page.locator("#f-segment option").evaluate_all("options => options.map(o => o.value)")
    assert "Browser picks" in views  # a saved view of the lead list
    web.page.get_by_text("More filters", exact=False).click()
    web.page.locator("#f-segment").select_option("Browser picks")
    web.page.get_by_role("button", name="Apply filters").click()
    web.page.wait_for_url(re.compile(r".*segment=Browser.*"))
    web.page.get_by_test_id("lead-count").wait_for()
    assert "segment Browser picks" in web.page.locator("#results").inner_text()
    web.screenshot("leads-segment-view")


def test_a_manager_changes_a_teams_daily_capacity(web: Browsing) -> None:
    web.login("sales_manager", "/settings/routing")
    version = int(web.page.get_by_test_id("routing-version").inner_text())
    editor = web.page.get_by_label("Routing document (YAML)", exact=False)
    text = editor.input_value()
    assert "daily_capacity: 40" in text
    editor.fill(text.replace("daily_capacity: 40", "daily_capacity: 35", 1))
    web.page.get_by_role("button", name="Check and activate").click()
    web.page.get_by_text(f"Routing version {version + 1} is active.").wait_for()
    assert "of 35 a day" in web.page.content()
    web.screenshot("routing-changed")


def test_a_token_created_is_shown_once_and_works_against_the_api(web: Browsing) -> None:
    web.login("admin", "/settings/users")
    web.page.get_by_label("User name", exact=True).fill("browser.viewer")
    web.page.get_by_label("Role", exact=True).select_option("viewer")
    web.page.get_by_label("Password (to log in here", exact=False).fill("long enough pass")
    web.page.get_by_role("button", name="Add user").click()
    web.page.get_by_text("User browser.viewer added (viewer).").wait_for()
    web.page.get_by_label("For user").select_option("browser.viewer")
    web.page.get_by_label("Name (what it is for)").fill("browser test")
    web.page.get_by_role("button", name="Create token").click()
    token = web.page.get_by_test_id("token-value").inner_text().strip()
    web.screenshot("token-created")
    me = web.page.request.get(web.url("/api/v1/me"), headers={"Authorization": f"Bearer {token}"})
    assert me.status == 200
    assert me.json()["username"] == "browser.viewer"
    web.goto("/settings/users")
    assert token not in web.page.content()  # shown once


def test_a_webhook_is_added_with_its_secret_and_its_delivery_log_opens(web: Browsing) -> None:
    web.login("admin", "/settings/webhooks")
    web.page.get_by_label("Endpoint URL").fill("https://crm.example.com/hooks/leadstage")
    web.page.get_by_label("lead.stage_changed").check()
    web.page.get_by_label("sla.breached").check()
    web.page.get_by_role("button", name="Add webhook").click()
    web.page.get_by_test_id("new-secret").wait_for()
    assert "whsec_" in web.page.get_by_test_id("new-secret").inner_text()
    web.screenshot("webhook-added")
    web.page.get_by_role("link", name="https://crm.example.com/hooks/leadstage").click()
    web.page.get_by_test_id("deliveries").wait_for()
    web.screenshot("webhook-deliveries")


def test_a_trained_predictive_model_is_activated_from_its_card(web: Browsing) -> None:
    trained = run_process(
        web.live.db_url, "model", "train", "--stage", "sql", "--min-leads", "100", "--min-positives", "20",
        "--json",
    )  # fmt: skip
    assert trained.code == 0, trained.err
    model_id = trained.json()["model_id"]
    web.login("marketing", "/settings/predictive")
    assert web.page.get_by_test_id("card-auc").inner_text() == str(trained.json()["auc"])
    web.screenshot("predictive-card")
    web.page.get_by_role("button", name=f"Preview activating model {model_id}").click()
    shown = web.page.get_by_test_id("activation-preview")
    shown.wait_for(timeout=120_000)  # first: what activating it would promote now
    assert "activating it promotes" in shown.inner_text()
    assert "Nothing is stored yet." in shown.inner_text()
    web.screenshot("predictive-activation-preview")
    web.page.get_by_role("button", name=f"Activate model {model_id} now").click()
    done = web.page.locator('[data-testid="job"][data-status="done"]', has_text="is active")
    done.wait_for(timeout=120_000)
    assert f"Predictive model {model_id}" in done.inner_text()
    web.screenshot("predictive-activated")
