"""What browser tests expect of pages that answer with an error status on purpose."""

from __future__ import annotations

from tests.e2e.web.conftest import Browsing


def expect_status(web: Browsing, status: int, path: str) -> None:
    """Chromium reports a page answered with an error status (a 403 page, a form sent back with 422) on
    its console. Where a test expects that status, its one line is taken off the list of console errors;
    any other line stays and fails the test."""
    expected = [e for e in web.errors if f"status of {status} " in e and path.split("?")[0] in e]
    assert len(expected) <= 1, web.errors
    for line in expected:
        web.errors.remove(line)


def expect_refused(web: Browsing, path: str, shot: str) -> None:
    """The 403 page: its heading and screenshot."""
    response = web.goto(path)
    assert response.status == 403, path
    assert web.page.get_by_role("heading", name="Not allowed").is_visible()
    web.screenshot(shot)
    expect_status(web, 403, path)
