"""Sales' pages: the work queue (MQLs to accept or reject, response deadlines, today's tasks; for managers
the team's queue, missed deadlines and the hand-off queue) and the pipeline board (drag a card to move it)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from leadstage.domain.errors import DomainError
from leadstage.domain.leads import MAX_ID
from leadstage.domain.stages import SALES_REJECTION_REASONS, Role
from leadstage.services import routing, tasks, workspace
from leadstage.web.base import Viewer, container, done, query_with, render, require

router = APIRouter(include_in_schema=False)
SCOPES = {"mine": "My leads", "team": "My team", "all": "Everyone"}


def _scopes(role: Role) -> list[str]:
    if role is Role.SALES_REP:
        return ["mine", "all"]
    if role is Role.SALES_MANAGER:
        return ["team", "mine", "all"]
    return ["all", "mine"] if role is not Role.MARKETING else ["all"]


@router.get("/queue")
def work_queue(request: Request, user: Viewer) -> HTMLResponse:
    """What sales should do next, best first."""
    require(user, Role.SALES_REP, Role.SALES_MANAGER, what="work a sales queue")
    c = container(request)
    now = c.clock.now()
    actor = user.actor
    manager = user.role in (Role.SALES_MANAGER, Role.ADMIN)
    context: dict[str, Any] = {"reasons": SALES_REJECTION_REASONS, "manager": manager}
    with c.uow() as uow:
        mine = workspace.scope_filter(uow, actor, "mine")
        context["mine_total"], context["mine"] = workspace.review_queue(
            uow, scope_text=mine, as_of=now, limit=50
        )
        context["unassigned_total"], context["unassigned"] = workspace.review_queue(
            uow, scope_text="owner is null", as_of=now, limit=20
        )
        due = tasks.list_tasks(uow, owner=actor.name, due="today", now=now, zone=c.settings.tz, limit=200)
        context["tasks"] = sorted(due, key=lambda t: t.due_at)
        if manager:
            team_scope = workspace.scope_filter(uow, actor, "team" if actor.team else "all")
            context["team_total"], context["team"] = workspace.review_queue(
                uow, scope_text=team_scope, as_of=now, limit=50
            )
            team = actor.team if user.role is Role.SALES_MANAGER else None
            context["team_name"] = team
            context["breached"] = routing.sla_overview(uow, team=team, state="breached", limit=25, now=now)
            context["handoff"] = _handoff(uow, team)
            context["unrouted"] = routing.queued(uow, "none", limit=25)
    return render(request, "queue.html", context, user=user)


def _handoff(uow: Any, team: str | None) -> list[Any]:
    """The team's waiting hand-off queue (leads over its daily capacity), best first; all teams for admins."""
    try:
        return routing.queued(uow, team, limit=50)
    except DomainError:  # the manager's team is not in the routing document (yet)
        return []


@router.get("/pipeline")
def pipeline(
    request: Request, user: Viewer, scope: Annotated[str | None, Query(max_length=10)] = None
) -> HTMLResponse:
    """A column per stage with counts and values; cards move by drag and drop or the keyboard form."""
    c = container(request)
    now = c.clock.now()
    chosen = scope or workspace.default_scope(user.actor)
    if chosen not in _scopes(user.role):
        chosen = _scopes(user.role)[0]
    with c.uow() as uow:
        text = workspace.scope_filter(uow, user.actor, chosen)
        columns = workspace.pipeline_board(uow, scope_text=text, as_of=now)
    context = {
        "columns": columns,
        "scope": chosen,
        "scopes": [(s, SCOPES[s]) for s in _scopes(user.role)],
        "may_move": user.role is not Role.VIEWER,
        "stages": [col.stage for col in columns],
    }
    return render(request, "pipeline.html", context, user=user)


@router.post("/pipeline/move")
def move(
    request: Request,
    user: Viewer,
    lead: Annotated[int, Form(ge=1, le=MAX_ID)],
    to: Annotated[str, Form(max_length=20)],
    version: Annotated[int | None, Form(ge=1)] = None,
    scope: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Move a card: the transition service decides (role, state, policy); a refusal says why."""
    c = container(request)
    with c.uow(write=True) as uow:
        action = workspace.move_lead(
            uow, lead, to, actor=user.actor, at=c.clock.now(), expected_version=version, setup=c.qualification
        )
        uow.commit()
    back = "/pipeline" + (f"?{query_with({'scope': scope})}" if scope else "")
    return done(request, back, f"Lead {lead}: {action.replace('_', ' ')}, now at {to}.")
