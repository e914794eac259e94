"""Sales' work queue (accept or reject in one step, deadlines, today's tasks; the manager's team view) and the
pipeline board (counts and values per stage; a move is a transition, refused with its reason)."""

from __future__ import annotations

import re

from leadstage.domain.stages import TransitionRequest
from leadstage.services import leads as lead_service
from leadstage.services import routing
from tests.e2e.web.data import lead_id, seed
from tests.e2e.web.pages import Site


def _people(n: int) -> list[dict[str, str]]:
    return [
        {"email": f"m{i}@corp{i}.example", "first_name": f"Mql{i}", "company": f"Corp {i}", "Seniority": "VP"}
        for i in range(n)
    ]


def _promote(site: Site, emails: list[str], owner: str | None = None) -> list[int]:
    c = site.container
    ids = [lead_id(c, e) for e in emails]
    with c.uow(write=True) as uow:
        for ref in ids:
            lead_service.transition_lead(
                uow,
                ref,
                TransitionRequest("promote_mql", reason="manual", note="from the fair"),
                actor=lead_service.BUILTIN_ADMIN,
                at=c.clock.now(),
            )
            if owner:
                routing.assign_lead(
                    uow, ref, user=owner, team=None, actor=lead_service.BUILTIN_ADMIN, at=c.clock.now()
                )
        uow.commit()
    return ids


def test_a_rep_accepts_or_rejects_their_mqls_in_one_step_from_the_queue(site: Site) -> None:
    seed(site.container, _people(4))
    mine = _promote(site, ["m0@corp0.example", "m1@corp1.example"], owner="rob")
    free = _promote(site, ["m2@corp2.example"])
    page = site("rob").get("/queue").text
    section = page.split('id="mine-heading"')[1].split("</section>")[0]
    assert sorted(int(x) for x in re.findall(r'href="/leads/(\d+)"', section)) == sorted(mine)
    assert f'href="/leads/{free[0]}"' in page.split('id="unassigned-heading"')[1]
    accepted = site.post("rob", f"/leads/{mine[0]}/transition", {"action": "accept", "back": "/queue"})
    assert accepted.headers["location"] == "/queue"
    rejected = site.post(
        "rob", f"/leads/{mine[1]}/transition", {"action": "reject", "reason": "no_need", "back": "/queue"}
    )
    assert rejected.headers["location"] == "/queue"
    after = site("rob").get("/queue").text
    assert "Reject the MQL: lead" in after  # the notice of the last change
    assert "Nothing to review." in after.split('id="mine-heading"')[1].split("</section>")[0]
    with site.container.uow() as uow:
        assert uow.leads.get(mine[1]).state.label == "lead/nurture"  # type: ignore[union-attr]
        assert uow.leads.get(mine[0]).state.label == "mql/working"  # type: ignore[union-attr]


def test_the_manager_sees_the_team_queue_and_marketing_has_no_sales_queue(site: Site) -> None:
    seed(site.container, _people(3))
    ids = _promote(site, ["m0@corp0.example"], owner="rita")
    page = site("max").get("/queue").text
    team = page.split('id="team-heading"')[1].split("</section>")[0]
    assert f'href="/leads/{ids[0]}"' in team
    assert "rita" in team
    assert "Waiting for hand-off" in page
    assert 'id="team-heading"' not in site("rob").get("/queue").text
    assert site("mia").get("/queue").status_code == 403


def test_the_board_counts_and_values_each_stage_and_a_move_is_a_transition(site: Site) -> None:
    seed(site.container, _people(3))
    a, b = _promote(site, ["m0@corp0.example", "m1@corp1.example"], owner="rob")
    c = site.container
    with c.uow(write=True) as uow:
        for step in (
            TransitionRequest("accept"),
            TransitionRequest("qualify_sql"),
            TransitionRequest("open_opportunity", amount="12000", currency="EUR", close_date="2027-01-31"),
        ):
            if step.action == "qualify_sql":
                lead_service.record_qualification(
                    uow,
                    a,
                    {
                        "budget": "confirmed",
                        "authority": "decision_maker",
                        "need": "confirmed",
                        "timeline": "Q1 2027",
                    },
                    actor=lead_service.BUILTIN_ADMIN,
                    at=c.clock.now(),
                )
            lead_service.transition_lead(uow, a, step, actor=lead_service.BUILTIN_ADMIN, at=c.clock.now())
        lead_service.transition_lead(
            uow, b, TransitionRequest("accept"), actor=lead_service.BUILTIN_ADMIN, at=c.clock.now()
        )
        uow.commit()
    board = site("max").get("/pipeline", params={"scope": "all"}).text
    assert re.search(r'data-testid="count-opportunity">1<', board)
    assert re.search(r'data-testid="count-mql">1<', board)
    assert re.search(r'data-testid="count-lead">1<', board)
    assert "12,000 EUR" in board
    mine = site("rob").get("/pipeline").text  # a rep's board: their own leads
    assert re.search(r'data-testid="count-lead">0<', mine)
    # mql/working to sql: qualify_sql, refused until the qualification policy is met
    refused = site.htmx("rob", "/pipeline/move", {"lead": b, "to": "sql"})
    assert refused.status_code == 409
    assert "Still missing: budget, authority, need, timeline" in refused.text
    # sql to opportunity needs an amount: the refusal says where to give it
    short = site.htmx("max", "/pipeline/move", {"lead": a, "to": "customer"})
    assert short.status_code == 422
    assert f"open lead {a} to give it" in short.text
    # no single action goes from opportunity back to mql
    nowhere = site.htmx("max", "/pipeline/move", {"lead": a, "to": "mql"})
    assert nowhere.status_code == 409
    assert "no action you may take moves a lead from opportunity/working to mql" in nowhere.text
    # somebody else's lead: the rep may not move it
    with c.uow(write=True) as uow:
        routing.assign_lead(
            uow, b, user="rita", team=None, actor=lead_service.BUILTIN_ADMIN, at=c.clock.now()
        )
        uow.commit()
    assert site.htmx("rob", "/pipeline/move", {"lead": b, "to": "sql"}).status_code == 409
