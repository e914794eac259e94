"""The marketing dashboard, rendered in-process on SQLite and PostgreSQL: who may see it, the same numbers
as ``leadstage report``, cached documents with their age, refreshing, and bad choices refused."""

from __future__ import annotations

import re
from typing import Any

import pytest

from leadstage.domain.analytics import parse_request
from leadstage.domain.stages import TransitionRequest
from leadstage.services import leads as lead_service
from leadstage.services.reports import run_report
from tests.e2e.web.data import lead_id, seed
from tests.e2e.web.pages import Site

SECTIONS = ("funnel", "campaign", "content", "assets", "feedback", "velocity", "calibration")


def _leads(n: int) -> list[dict[str, Any]]:
    sources = ("event", "paid_search", "referral")
    return [
        {
            "email": f"d{i}@firm{i}.example",
            "first_name": f"Dana{i}",
            "company": f"Firm {i}",
            "source": sources[i % 3],
            "Seniority": "C-level" if i % 2 else "Manager",
            "Industry": "Logistics & Transportation",
            "Employees": 300,
        }
        for i in range(n)
    ]


def _webinars(n: int) -> list[dict[str, Any]]:
    return [
        {
            "email": f"d{i}@firm{i}.example",
            "type": "webinar_attended" if i % 2 else "content_download",
            "occurred_at": "2026-10-01T10:00:00Z",
            "source": "email",
            "campaign": "Autumn webinars",
            "content": "Webinar: Freight" if i % 2 else "eBook: Costs",
        }
        for i in range(n)
    ]


def _journeys(site: Site, n: int) -> None:
    """Leads with outcomes: every lead an MQL, two of three reviewed (accepted, or rejected for a reason)."""
    c = site.container
    with c.uow(write=True) as uow:
        for i in range(n):
            ref = lead_id(c, f"d{i}@firm{i}.example")
            lead = uow.leads.get(ref)
            assert lead is not None
            if lead.stage.value == "lead":
                lead_service.transition_lead(
                    uow, ref, TransitionRequest("promote_mql", reason="manual", note="fair"),
                    actor=lead_service.BUILTIN_ADMIN, at=c.clock.now(),
                )  # fmt: skip
            if i % 3 == 1:
                req = TransitionRequest("accept")
            elif i % 3 == 2:
                req = TransitionRequest("reject", reason="no_budget" if i % 2 else "bad_timing")
            else:
                continue
            lead_service.transition_lead(uow, ref, req, actor=lead_service.BUILTIN_ADMIN, at=c.clock.now())
        uow.commit()


@pytest.fixture
def data(site: Site) -> Site:
    seed(site.container, _leads(12), _webinars(12))
    _journeys(site, 12)
    return site


def _section(site: Site, who: str, key: str, **params: str) -> str:
    answer = site(who).get(f"/dashboard/sections/{key}", params=params, headers={"HX-Request": "true"})
    assert answer.status_code == 200, answer.text[:1000]
    return str(answer.text)


def _cells(page: str, testid: str) -> dict[str, list[str]]:
    """A table's rows by their header cell: the text of the other cells."""
    table = page.split(f'data-testid="{testid}"', 1)[1].split("</table>", 1)[0]
    rows: dict[str, list[str]] = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S):
        head = re.search(r'<th scope="row">(.*?)</th>', row, re.S)
        if head:
            rows[re.sub(r"<[^>]+>", "", head.group(1)).strip()] = [
                re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
            ]
    return rows


def test_marketing_managers_viewers_and_admins_see_the_dashboard_and_reps_are_refused(data: Site) -> None:
    for who in ("ada", "mia", "max", "vic"):
        page = data(who).get("/dashboard")
        assert page.status_code == 200, who
        assert "Marketing dashboard" in page.text
        for key in SECTIONS:
            assert f'data-testid="section-{key}"' in page.text
    for path in ("/dashboard", "/dashboard/sections/funnel"):
        refused = data("rob").get(path)
        assert refused.status_code == 403
        assert "may not see the marketing dashboard" in refused.text
    assert data.post("rob", "/dashboard/refresh").status_code == 403


def test_each_section_shows_the_numbers_of_the_report_it_comes_from(data: Site) -> None:
    with data.container.uow() as uow:
        now = data.container.clock.now()
        funnel = run_report(uow, parse_request("funnel", by="source"), as_of=now)
        feedback = run_report(uow, parse_request("feedback", by="source"), as_of=now)
        assets = run_report(uow, parse_request("attribution", by="content"), as_of=now)
        calibration = run_report(uow, parse_request("calibration"), as_of=now)
    by_source = _cells(_section(data, "mia", "funnel"), "table-source")
    for group in funnel["groups"]:
        counts = {s["stage"]: s["count"] for s in group["stages"]}
        row = by_source[group["group"].replace("_", " ")]
        assert row[:4] == [str(counts[s]) for s in ("lead", "mql", "sql", "customer")]
    assert {r.replace(" ", "_") for r in by_source} == {g["group"] for g in funnel["groups"]}
    accepted = _cells(_section(data, "mia", "feedback"), "table-feedback")
    for group in feedback["groups"]:
        row = accepted[group["group"].replace("_", " ")]
        assert row[:4] == [str(group[k]) for k in ("mqls", "reviewed", "accepted", "rejected")]
    page = _section(data, "max", "feedback")
    assert "No budget" in page or "no budget" in page  # a rejection reason, with its count
    webinars = _cells(_section(data, "mia", "assets"), "table-assets")
    for item in assets["models"]["w_shaped"]:
        assert webinars[item["value"]][0] == f"{item['mql']:,.1f}"
    linear = _cells(_section(data, "mia", "assets", model="linear"), "table-assets")
    assert set(linear) == {item["value"] for item in assets["models"]["linear"]}
    bands = _cells(_section(data, "vic", "calibration"), "table-calibration")
    for band in calibration["bands"]:
        assert bands[band["band"]][0] == str(band["leads"])
    chart = _section(data, "mia", "velocity")
    assert "<svg" in chart
    assert "<title>" in chart  # the numbers on hover


def test_sections_come_from_the_cache_with_their_age_until_computed_again(data: Site) -> None:
    first = data("mia").get("/dashboard").text
    assert 'hx-trigger="load"' in first  # nothing cached yet: each section loads by itself
    before = _cells(_section(data, "mia", "funnel"), "table-source")
    cached = data("max").get("/dashboard").text  # another user: the same cached document
    assert 'data-testid="age-funnel"' in cached
    assert re.search(r'data-testid="age-funnel"[^>]*>as of \d+ min ago<', cached)
    seed(data.container, [{"email": "late@firm.example", "source": "event"}])
    assert _cells(_section(data, "mia", "funnel"), "table-source") == before  # still the cached figures
    again = data.post("mia", "/dashboard/refresh", {"query": ""})
    assert again.status_code == 303
    after = _cells(_section(data, "mia", "funnel"), "table-source")
    assert int(after["event"][0]) == int(before["event"][0]) + 1


def test_bad_choices_are_refused_naming_them(data: Site) -> None:
    bad_day = data("mia").get("/dashboard", params={"from": "2026-13-01"})
    assert bad_day.status_code == 422
    assert "from: &#39;2026-13-01&#39; is not an ISO date" in bad_day.text
    assert "--from" not in bad_day.text
    reversed_range = data("mia").get("/dashboard", params={"from": "2026-10-02", "to": "2026-10-01"})
    assert reversed_range.status_code == 422
    assert "reversed" in reversed_range.text
    assert data("mia").get("/dashboard", params={"model": "magic"}).status_code == 422
    no_model = _section(data, "mia", "calibration", band="predictive_decile")
    assert "no predictive score yet" in no_model
    assert data("mia").get("/dashboard/sections/nothing").status_code == 422
