"""The lead list: filters as one segment filter, best first, keyset pages, saved views, bulk actions by role,
the CSV export of the view, and adding a lead by hand."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest

from leadstage.services import audit
from tests.e2e.web.data import lead_id, seed
from tests.e2e.web.pages import Site

ROLES_OF_FIT = [
    ("C-level", "Logistics & Transportation", 400),  # A
    ("Director", "Retail & E-commerce", 300),  # B
    ("Manager", "Consulting", 20),  # D
]


def _leads(n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        seniority, industry, employees = ROLES_OF_FIT[i % 3]
        out.append(
            {
                "email": f"p{i}@firm{i}.example",
                "first_name": f"Person{i}",
                "last_name": f"Number{i}",
                "company": f"Firm {i}",
                "source": "event" if i % 2 else "paid_search",
                "Seniority": seniority,
                "Industry": industry,
                "Employees": employees,
            }
        )
    return out


def _ids_on(page: str) -> list[int]:
    return [int(x) for x in re.findall(r'name="ids" value="(\d+)"', page)]


def _count(page: str) -> str:
    return re.search(r'data-testid="lead-count">([^<]+)<', page).group(1)  # type: ignore[union-attr]


def test_filters_become_one_segment_filter_and_narrow_the_list(site: Site) -> None:
    seed(
        site.container,
        _leads(9),
        [
            {
                "email": "p1@firm1.example",
                "type": "webinar_attended",
                "occurred_at": "2026-10-01T10:00:00Z",
                "campaign": "Autumn webinars",
                "content": "Webinar: Freight",
            },
        ],
    )
    page = site("mia").get("/leads", params={"fit": "B", "source": "event"}).text
    assert "fit_grade &gt;= B and first_source = &#34;event&#34;" in page or "fit_grade &gt;= B" in page
    shown = _ids_on(page)
    with site.container.uow() as uow:
        expected = {
            lead.id
            for lead in uow.workspace.lead_page(None, as_of=site.container.clock.now(), sort="oldest", after=None,
                                                limit=100)
            if lead.fit_grade in ("A", "B") and lead.first_source == "event"
        }  # fmt: skip
    assert set(shown) == expected
    assert expected
    by_campaign = site("mia").get("/leads", params={"campaign": "Autumn webinars"}).text
    assert _ids_on(by_campaign) == [lead_id(site.container, "p1@firm1.example")]
    searched = site("mia").get("/leads", params={"q": "number4"}).text
    assert _ids_on(searched) == [lead_id(site.container, "p4@firm4.example")]
    bad = site("mia").get("/leads", params={"fit": "E"})
    assert bad.status_code == 422
    assert "fit grade must be A, B, C or D" in bad.text


@pytest.mark.parametrize("search", ["", "number"])
def test_best_first_in_keyset_pages_that_visit_every_lead_once(site: Site, search: str) -> None:
    """Also with a text search, whose pages are read by another plan (scan the matches, then order)."""
    seed(site.container, _leads(60))
    seen: list[int] = []
    priorities: list[str] = []
    url, params = "/leads", {"size": "25", **({"q": search} if search else {})}
    for _ in range(5):
        page = site("max").get(url, params=params).text
        seen += _ids_on(page)
        priorities += re.findall(r'class="badge prio-[A-D]"[^>]*>([A-D][1-4])<', page)
        after = re.search(r'href="/leads\?([^"]*after=[^"]*)" rel="next"', page)
        if after is None:
            break
        params = dict(re.findall(r"([^=&]+)=([^&]*)", after.group(1).replace("&amp;", "&")))
    assert len(seen) == 60
    assert len(set(seen)) == 60
    assert priorities == sorted(priorities)  # A1 first
    assert priorities[0].startswith("A")


def test_a_view_saved_as_a_segment_lists_the_same_leads(site: Site) -> None:
    seed(site.container, _leads(9))
    before = _ids_on(site("mia").get("/leads", params={"fit": "A"}).text)
    saved = site.post("mia", "/leads/views", {"name": "Top fit", "view": "fit=A"})
    assert saved.status_code == 303
    assert saved.headers["location"] == "/leads?segment=Top+fit"
    assert sorted(_ids_on(site("mia").get("/leads", params={"segment": "Top fit"}).text)) == sorted(before)
    refused = site.post("rob", "/leads/views", {"name": "Mine", "view": "fit=A"})
    assert refused.status_code == 403


def test_bulk_actions_change_each_lead_by_its_own_rules(site: Site) -> None:
    seed(site.container, _leads(6))
    ids = [lead_id(site.container, f"p{i}@firm{i}.example") for i in range(3)]
    # assigning is for sales managers and administrators
    refused = site.htmx("mia", "/leads/bulk", {"action": "assign", "ids": ids, "assignee": "rob"})
    assert refused.status_code == 403
    assigned = site.htmx("max", "/leads/bulk", {"action": "assign", "ids": ids[:2], "assignee": "rob"})
    assert assigned.status_code == 200
    assert "2 leads assigned to rob" in assigned.text
    # marketing disqualifies: a note is needed, each lead is judged on its own state
    missing_note = site.htmx("mia", "/leads/bulk", {"action": "disqualify", "ids": ids, "reason": "not_icp"})
    assert missing_note.status_code == 422
    with site.container.uow() as uow:
        assert {uow.leads.get(i).status.value for i in ids} == {"open"}  # type: ignore[union-attr]
    done = site.htmx(
        "mia",
        "/leads/bulk",
        {"action": "disqualify", "ids": ids, "reason": "not_icp", "note": "wrong market"},
    )
    assert "3 leads disqualified" in done.text
    again = site.htmx(
        "mia", "/leads/bulk", {"action": "disqualify", "ids": ids[:1], "reason": "not_icp", "note": "again"}
    )
    assert "0 leads disqualified" in again.text
    assert "1 not changed" in again.text
    assert "disqualify needs stage" in again.text
    # adding to a segment by hand: a list segment of the chosen leads
    listed = site.htmx("mia", "/leads/bulk", {"action": "segment", "ids": ids[1:], "segment": "Picked"})
    assert "2 leads added to segment Picked" in listed.text
    assert sorted(_ids_on(site("mia").get("/leads", params={"segment": "Picked"}).text)) == sorted(ids[1:])
    # a viewer changes nothing
    assert (
        site.htmx("vic", "/leads/bulk", {"action": "segment", "ids": ids, "segment": "X"}).status_code == 403
    )


def test_the_csv_export_is_the_current_view_for_roles_that_export(site: Site) -> None:
    seed(site.container, _leads(9))
    answer = site("mia").get("/leads/export.csv", params={"fit": "A"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    on_screen = _ids_on(site("mia").get("/leads", params={"fit": "A"}).text)
    assert [int(r["id"]) for r in rows] == on_screen
    assert {r["fit_grade"] for r in rows} == {"A"}
    assert site("rob").get("/leads/export.csv").status_code == 403
    with site.container.uow() as uow:
        entries = audit.entries(uow, actor=_admin(), who="mia", action="export", since=None, limit=5)
    assert entries[0]["details"]["rows"] == len(rows)


def _admin() -> Any:
    from leadstage.services.leads import BUILTIN_ADMIN

    return BUILTIN_ADMIN


def test_a_lead_added_by_hand_opens_and_the_same_person_is_recognised(site: Site) -> None:
    made = site.post(
        "rob", "/leads/new", {"email": "New.Person@Acme.example", "first_name": "New", "source": "event"}
    )
    assert made.status_code == 303
    new_id = lead_id(site.container, "new.person@acme.example")
    assert made.headers["location"] == f"/leads/{new_id}"
    assert "Lead created." in site("rob").get(made.headers["location"]).text  # said once
    assert "Lead created." not in site("rob").get(made.headers["location"]).text
    again = site.post("rob", "/leads/new", {"email": "new.person@acme.example", "job_title": "CFO"})
    assert again.headers["location"] == f"/leads/{new_id}"
    nothing = site.post("rob", "/leads/new", {"first_name": "Anonymous"})
    assert nothing.status_code == 422
    assert "give an email or a phone" in nothing.text
    assert site.post("vic", "/leads/new", {"email": "v@acme.example"}).status_code == 403
