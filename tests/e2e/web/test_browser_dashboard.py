"""The marketing dashboard in a real browser: each role that may see it logs in and watches the sections
fill in (each computed by its own request the first time), opens the numbers behind a chart, and asks for
the figures to be computed again; a sales rep gets the 403 page. No page may log a console error."""

from __future__ import annotations

import re

import pytest

from tests.e2e.web.conftest import Browsing
from tests.e2e.web.expect import expect_refused

pytestmark = pytest.mark.xdist_group("browser")  # one live server and one Chromium for all of them

SECTIONS = 7


def _all_loaded(web: Browsing) -> None:
    web.page.locator('section[data-loaded="true"]').nth(SECTIONS - 1).wait_for()
    assert web.page.locator("section.dash-section").count() == SECTIONS


def test_the_dashboard_fills_in_for_the_roles_that_see_it_and_refuses_sales_reps(web: Browsing) -> None:
    for role in ("marketing", "sales_manager", "admin"):
        web.login(role, "/dashboard")
        web.page.wait_for_url(re.compile(r".*/dashboard$"))
        _all_loaded(web)
        assert web.page.locator("svg.bars").count() >= SECTIONS
        titles = web.page.locator("section#section-funnel svg.bars g title").all_text_contents()
        assert any(t.startswith("mql: leads ") for t in titles), titles  # the number on hover
        web.screenshot(f"dashboard-{role}")
        web.logout()
    web.login("marketing", "/dashboard")
    funnel = web.page.locator("section#section-funnel")
    funnel.get_by_text("The numbers", exact=True).click()
    assert funnel.get_by_role("rowheader", name="customer").is_visible()
    web.page.get_by_role("button", name="Compute again now").click()
    web.page.wait_for_url(re.compile(r".*/dashboard$"))
    _all_loaded(web)
    web.page.reload()
    assert web.page.locator('section[data-loaded="true"]').count() == SECTIONS  # all cached now
    assert "the oldest shown is 0 min old" in web.page.get_by_test_id("dashboard-age").inner_text()
    web.page.get_by_role("link", name="Last 90 days").click()
    web.page.wait_for_url(re.compile(r".*/dashboard\?from=.*"))
    _all_loaded(web)
    web.screenshot("dashboard-last-90-days")
    web.logout()
    web.login("sales_rep", "/leads")
    expect_refused(web, "/dashboard", "dashboard-refused-sales-rep")
    assert "may not see the marketing dashboard" in web.page.content()
