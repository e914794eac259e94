"""Routing over HTTP: the rules document (read, validate, replace), teams with today's capacity, the
hand-off queue, response SLAs, and one lead's routing (why it has its owner; re-route it by hand).
The documents are those of ``leadstage routing ... --json`` and ``teams list --json``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import Field, model_validator

from leadstage.adapters.scoring_yaml import load_yaml
from leadstage.api.routes import PROBLEM_RESPONSES, Ref, Strict, _etag, _expected
from leadstage.api.security import Reader, Uow, Writer, container
from leadstage.services import routing as routing_service

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES, tags=["routing"])
#: How a routing document sent in a body is named in error messages ("source: line 3: ...").
SOURCE = "source"


def _load(text: str, name: str) -> tuple[Any, Any]:
    return load_yaml(text, source=name)


class RoutingIn(Strict):
    source: str = Field(
        min_length=1,
        max_length=200_000,
        description="The routing document as YAML (or JSON): territories, teams and ordered rules",
    )


@router.get("/routing")
def show_routing(uow: Uow, who: Reader) -> dict[str, Any]:
    """The active routing: version, teams (members, hours, capacity, queue sizes), territories, ordered
    rules, the unassigned queue's size, and the document's ``source`` as it was set; 404 before any."""
    doc = routing_service.show_routing(uow)
    return {**doc, "source": routing_service.active_document(uow).source}


@router.post("/routing/validate")
def validate_routing(body: RoutingIn, uow: Uow, who: Reader) -> dict[str, Any]:
    """Check a routing document against this database (users, segments, filters) without storing it:
    422 naming the line and key, else its outline."""
    document = routing_service.validate_document(uow, body.source, source=SOURCE, load=_load)
    return {"valid": True, "name": document.name, "teams": list(document.teams), "rules": len(document.rules)}


@router.put("/routing")
def set_routing(request: Request, body: RoutingIn, uow: Uow, who: Writer) -> dict[str, Any]:
    """Validate and activate a routing document (administrators and sales managers; an invalid one
    stores nothing: 422), then route the open MQLs without an owner (``routing set --json``)."""
    c = container(request)
    stored = routing_service.set_routing(
        uow, body.source, source=SOURCE, load=_load, actor=who.actor, at=c.clock.now()
    )
    uow.commit()
    with c.uow(write=True) as w:
        report = routing_service.route_pending(w, at=c.clock.now())
        w.commit()
    return {
        "version": stored.version,
        "name": stored.name,
        "teams": list(stored.document.teams),
        "rules": len(stored.document.rules),
        "routed": report.as_dict(),
    }


@router.get("/teams")
def list_teams(request: Request, uow: Uow, who: Reader) -> dict[str, Any]:
    """Each team: manager, hours, today's hand-offs against its daily capacity, the queue, and each
    member's load against their limits (``teams list --json``)."""
    teams = routing_service.team_overview(uow, at=container(request).clock.now())
    return {"total": len(teams), "items": teams}


@router.get("/routing/queue")
def routing_queue(
    uow: Uow,
    who: Reader,
    team: Annotated[
        str | None, Query(max_length=120, description="One team's queue; 'none' for the unassigned queue")
    ] = None,
    limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
) -> dict[str, Any]:
    """Leads waiting for hand-off, per team, in the order they will be handed over."""
    items = [routing_service.queued_json(q) for q in routing_service.queued(uow, team, limit=limit)]
    return {"total": len(items), "items": items}


@router.get("/routing/sla")
def routing_sla(
    request: Request,
    uow: Uow,
    who: Reader,
    team: Annotated[str | None, Query(max_length=120)] = None,
    state: Literal["pending", "met", "breached", "closed"] | None = None,
    limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
) -> dict[str, Any]:
    """Current owners with their first-response deadline and whether it was met, soonest due first."""
    items = routing_service.sla_overview(
        uow, team=team, state=state, limit=limit, now=container(request).clock.now()
    )
    return {"total": len(items), "items": items}


@router.get("/leads/{ref}/routing", tags=["leads"])
def explain_routing(ref: Ref, uow: Uow, who: Reader) -> dict[str, Any]:
    """Why a lead has its owner: every assignment with its rule and the candidates considered (and why
    each was or was not chosen), and its place in a queue (``routing explain --json``)."""
    return routing_service.explain_lead(uow, ref)


class AssignIn(Strict):
    user: str | None = Field(default=None, min_length=1, max_length=120, description="The new owner")
    team: str | None = Field(
        default=None, min_length=1, max_length=120, description="Or: the next free member of this team"
    )
    note: str | None = Field(default=None, max_length=2000, description="Why (kept with the assignment)")

    @model_validator(mode="after")
    def _one_target(self) -> AssignIn:
        if (self.user is None) == (self.team is None):
            raise ValueError("name exactly one target: user or team")
        return self


@router.post("/leads/{ref}/assign", tags=["leads"])
def assign_lead(
    request: Request,
    ref: Ref,
    body: AssignIn,
    uow: Uow,
    who: Writer,
    response: Response,
    if_match: Annotated[str | None, Header(max_length=40)] = None,
) -> dict[str, Any]:
    """Route a lead by hand to a user or a team (an administrator, or a sales manager for their team's
    leads and the unassigned ones, to their team); with If-Match, only from that version (else 412)."""
    c = container(request)
    record = routing_service.assign_lead(
        uow,
        ref,
        user=body.user,
        team=body.team,
        actor=who.actor,
        at=c.clock.now(),
        note=body.note,
        expected_version=_expected(if_match),
    )
    lead = uow.leads.get(record.lead_id)
    uow.commit()
    if lead is not None:
        response.headers["ETag"] = _etag(lead.version)
    return routing_service.assignment_json(record)
