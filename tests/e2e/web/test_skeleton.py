"""The workspace's frame: login redirects, CSRF on every change, role-aware navigation, error pages."""

from __future__ import annotations

import pytest

from tests.e2e.web.pages import Site


def test_a_page_without_a_login_sends_to_the_login_form_and_back(site: Site) -> None:
    anonymous = site("anonymous")
    answer = anonymous.get("/leads?stage=mql", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/leads%3Fstage%3Dmql"
    htmx = anonymous.get("/leads", headers={"HX-Request": "true"}, follow_redirects=False)
    assert htmx.headers["HX-Redirect"].startswith("/login?next=")


@pytest.mark.parametrize(
    ("who", "home", "menu", "never"),
    [
        ("rob", "/queue", ["Work queue", "Leads", "Pipeline"], ["Dashboard", "Settings"]),
        ("max", "/queue", ["Work queue", "Leads", "Pipeline", "Dashboard", "Settings"], []),
        ("mia", "/dashboard", ["Leads", "Pipeline", "Dashboard", "Settings"], ["Work queue"]),
        ("vic", "/leads", ["Leads", "Pipeline", "Dashboard"], ["Work queue", "Settings"]),
        ("ada", "/leads", ["Work queue", "Leads", "Pipeline", "Dashboard", "Settings"], []),
    ],
)
def test_each_role_starts_where_its_work_is_and_sees_its_menu(
    site: Site, who: str, home: str, menu: list[str], never: list[str]
) -> None:
    """The menu lists the role's pages that this workspace serves (a page not built yet is not offered)."""
    serves = site.app.state.web_page_paths
    hrefs = {"Work queue": "/queue", "Leads": "/leads", "Pipeline": "/pipeline", "Dashboard": "/dashboard",
             "Settings": "/settings"}  # fmt: skip
    start = site(who).get("/", follow_redirects=False)
    assert start.headers["location"] == (home if home in serves else "/leads")
    page = site(who).get("/leads").text
    nav = page.split('<nav aria-label="Main">')[1].split("</nav>")[0]
    shown = [label for label in hrefs if f">{label}<" in nav]
    assert shown == [label for label in menu if hrefs[label] in serves]
    assert not set(shown) & set(never)
    assert {"Leads", "Pipeline"} <= set(shown)


def test_a_change_without_the_sessions_csrf_token_is_refused(site: Site) -> None:
    client = site("mia")
    refused = client.post("/leads/new", data={"email": "x@acme.example"}, follow_redirects=False)
    assert refused.status_code == 403
    assert "expired" in refused.text
    forged = client.post(
        "/leads/new", data={"email": "x@acme.example", "csrf": "forged"}, follow_redirects=False
    )
    assert forged.status_code == 403


def test_errors_are_pages_for_people_and_problem_documents_for_the_api(site: Site) -> None:
    missing = site("mia").get("/no/such/page")
    assert missing.status_code == 404
    assert "text/html" in missing.headers["content-type"]
    assert "There is no page at /no/such/page" in missing.text
    assert 'aria-label="Main"' in missing.text  # still inside the workspace's frame
    api = site("mia").get("/api/v1/no/such")
    assert api.headers["content-type"].startswith("application/problem+json")


def test_pages_forbid_scripts_from_anywhere_else(site: Site) -> None:
    page = site("mia").get("/leads")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/static/vendor/htmx.min.js"' in page.text
    assert site("anonymous").get("/static/vendor/htmx.min.js").status_code == 200
    assert "Zero-Clause BSD" in site("anonymous").get("/static/vendor/htmx.LICENSE.txt").text


@pytest.mark.parametrize("target", ["//evil.example/", "/\\evil.example", "https://evil.example/", "leads"])
def test_pages_send_people_back_only_to_this_site(target: str) -> None:
    from leadstage.web.base import local_path

    assert local_path(target, "/queue") == "/queue"
    assert local_path("/leads/7?x=1", "/queue") == "/leads/7?x=1"
