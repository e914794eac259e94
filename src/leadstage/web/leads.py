"""The lead list: filters (a view, written in the segment language), priority order, keyset pages, saved
views as segments, bulk actions, the CSV export of the view, and a form to add a lead by hand."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from leadstage.domain.activities import SOURCES
from leadstage.domain.errors import ValidationError
from leadstage.domain.leads import MAX_ID
from leadstage.domain.segments import ENGAGEMENT_LEVELS, FIT_GRADES, STAGES, STATUSES
from leadstage.domain.stages import BULK_ROLES, REASON_CODES, SEGMENT_EDITORS, Action, Role, TransitionRequest
from leadstage.domain.views import LeadView
from leadstage.services import workspace
from leadstage.web.base import Viewer, WebUser, container, done, query_with, render, require

router = APIRouter(include_in_schema=False)
VIEW_FIELDS = ("stage", "status", "owner", "source", "campaign", "content", "segment", "fit", "engagement",
               "predictive", "created_from", "created_to", "q", "sort")  # fmt: skip
CHOICES_SECONDS = 300.0


def _choices(request: Request) -> dict[str, list[str]]:
    """Values people pick filters from (sources, campaigns, content), read at most every 5 minutes."""
    state = request.app.state
    cached = getattr(state, "web_choices", None)
    if cached is not None and time.monotonic() - cached[0] < CHOICES_SECONDS:
        found: dict[str, list[str]] = cached[1]
        return found
    with container(request).uow() as uow:
        known = uow.workspace.sources()
        choices = {
            "sources": sorted(set(known) | set(SOURCES)),
            "campaigns": uow.workspace.activity_values("campaign"),
            "contents": uow.workspace.activity_values("content"),
        }
    state.web_choices = (time.monotonic(), choices)
    return choices


def _view(request: Request) -> LeadView:
    params = {k: v for k, v in request.query_params.items() if k in VIEW_FIELDS}
    if params.get("owner") == "me":
        user = request.state.web_user
        params["owner"] = user.actor.name
    return LeadView.from_params(params)


def _abilities(user: WebUser) -> dict[str, bool]:
    """What this role may do from the list (each lead is still judged on its own when it is done)."""
    role = user.role
    return {
        "select": role is not Role.VIEWER,
        "assign": role in (Role.ADMIN, Role.SALES_MANAGER),
        "segment": role in SEGMENT_EDITORS,
        "disqualify": role in (Role.ADMIN, Role.MARKETING, Role.SALES_REP, Role.SALES_MANAGER),
        "export": role in BULK_ROLES,
        "add": role is not Role.VIEWER,
    }


def list_page(
    request: Request,
    user: WebUser,
    view: LeadView,
    *,
    after: str | None = None,
    size: int = 50,
    notice: str | None = None,
    bulk: workspace.BulkResult | None = None,
    status: int = 200,
) -> HTMLResponse:
    c = container(request)
    now = c.clock.now()
    with c.uow() as uow:
        page = workspace.view_page(uow, view, as_of=now, after=after, limit=size)
        users = [u for u in uow.users.all() if u.active]
        segments = [s.name for s in uow.segments.all()]
        view_filter = view.filter_text()
    params = view.as_params()
    context: dict[str, Any] = {
        "view": view,
        "params": params,
        "page": page,
        "size": size,
        "after": after,
        "view_filter": view_filter,
        "choices": _choices(request),
        "stages": STAGES,
        "statuses": STATUSES,
        "grades": FIT_GRADES,
        "levels": ENGAGEMENT_LEVELS,
        "owners": [u.username for u in users if u.role in ("sales_rep", "sales_manager", "admin")],
        "segments": segments,
        "reasons": REASON_CODES[Action.DISQUALIFY],
        "can": _abilities(user),
        "export_query": query_with(params),
        "notice": notice,
        "bulk": bulk,
        "cap": workspace.COUNT_CAP,
    }
    return render(request, "leads.html", context, user=user, status=status)


@router.get("/leads")
def leads(
    request: Request,
    user: Viewer,
    after: Annotated[str | None, Query(max_length=40)] = None,
    size: Annotated[int, Query()] = 50,
) -> HTMLResponse:
    """The lead list: the view's filters from the query string, best first, a keyset page at a time."""
    view = _view(request)
    response = list_page(request, user, view, after=after, size=size)
    if request.headers.get("hx-request") == "true":  # the address bar shows the view, without empty fields
        query = query_with(view.as_params(), after=after, size=size if size != 50 else None)
        response.headers["HX-Push-Url"] = f"/leads?{query}" if query else "/leads"
    return response


@router.get("/leads/export.csv")
def export_csv(request: Request, user: Viewer) -> StreamingResponse:
    """The whole current view as CSV (administrators, marketing and sales managers), audited."""
    view = _view(request)
    workspace.check_may_export(user.actor)
    c = container(request)
    now = c.clock.now()
    with c.uow() as uow:
        workspace.view_tree(uow, view)  # a bad filter is refused before the download starts

    def body() -> Iterator[bytes]:
        buffer = io.StringIO()
        out = csv.writer(buffer)
        rows = -1  # the header is not a lead
        with c.uow() as uow:
            for row in workspace.export_rows(uow, view, actor=user.actor, as_of=now):
                out.writerow(row)
                rows += 1
                if buffer.tell() > 64_000:
                    yield buffer.getvalue().encode()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue().encode()
        with c.uow(write=True) as uow:
            workspace.record_export(uow, view, actor=user.actor, at=now, rows=rows)
            uow.commit()

    stamp = now.strftime("%Y%m%d-%H%M")
    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="leads-{stamp}.csv"'},
    )


@router.post("/leads/bulk")
def bulk(
    request: Request,
    user: Viewer,
    action: Annotated[str, Form(max_length=40)],
    ids: Annotated[list[int], Form(default_factory=list)],
    view: Annotated[str, Form(max_length=4000)] = "",
    user_name: Annotated[str, Form(alias="assignee", max_length=120)] = "",
    segment: Annotated[str, Form(max_length=200)] = "",
    reason: Annotated[str, Form(max_length=120)] = "",
    note: Annotated[str, Form(max_length=5000)] = "",
) -> HTMLResponse:
    """Assign, add to a segment, or disqualify the selected leads; the list comes back with what happened."""
    require(user, Role.MARKETING, Role.SALES_REP, Role.SALES_MANAGER, what="change leads")
    if any(not 1 <= i <= MAX_ID for i in ids):
        raise ValidationError("not a lead id", field="ids")
    c = container(request)
    now = c.clock.now()
    with c.uow(write=True) as uow:
        if action == "assign":
            result = workspace.bulk_assign(uow, ids, user=user_name.strip(), actor=user.actor, at=now)
        elif action == "segment":
            result = workspace.bulk_add_to_segment(uow, ids, segment=segment, actor=user.actor, at=now)
        elif action == "disqualify":
            req = TransitionRequest(action="disqualify", reason=reason or None, note=note or None)
            result = workspace.bulk_transition(uow, ids, req, actor=user.actor, at=now, setup=c.qualification)
        else:
            raise ValidationError(f"unknown bulk action {action!r}", field="action")
        uow.commit()
    words = {"assign": f"assigned to {user_name}", "segment": f"added to segment {segment}",
             "disqualify": f"disqualified ({reason})"}  # fmt: skip
    notice = f"{len(result.done)} lead{'s' if len(result.done) != 1 else ''} {words[action]}."
    if result.refused:
        notice += f" {len(result.refused)} not changed (see below)."
    back = LeadView.from_params(_params(view))
    return list_page(request, user, back, notice=notice, bulk=result)


def _params(query: str) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return {k: v for k, v in parse_qsl(query) if k in VIEW_FIELDS}


@router.post("/leads/views")
def save_view(
    request: Request,
    user: Viewer,
    name: Annotated[str, Form(max_length=200)],
    view: Annotated[str, Form(max_length=4000)] = "",
    description: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Save the current filters as a segment, then show it as a view of its own."""
    chosen = LeadView.from_params(_params(view))
    c = container(request)
    with c.uow(write=True) as uow:
        saved = workspace.save_view(
            uow, chosen, name, actor=user.actor, at=c.clock.now(), description=description or None
        )
        uow.commit()
    return done(
        request, f"/leads?{query_with({'segment': saved['name']})}", f"Segment {saved['name']} saved."
    )


# ---- add a lead ------------------------------------------------------------------------------------------

LEAD_FORM_FIELDS = ("email", "first_name", "last_name", "job_title", "company", "phone", "website", "source")


@router.get("/leads/new")
def new_lead(request: Request, user: Viewer) -> HTMLResponse:
    require(user, Role.MARKETING, Role.SALES_REP, Role.SALES_MANAGER, what="add leads")
    return render(request, "lead_new.html", {"values": {}, "sources": SOURCES}, user=user)


@router.post("/leads/new")
async def create_lead(request: Request, user: Viewer) -> Response:
    """Create the lead (or recognise the person: the same rules as imports) and open it."""
    require(user, Role.MARKETING, Role.SALES_REP, Role.SALES_MANAGER, what="add leads")
    form = await request.form()
    values = {name: str(form.get(name) or "").strip()[:300] for name in LEAD_FORM_FIELDS}
    c = container(request)
    try:
        lead_id, outcome = workspace.add_lead(
            {k: v for k, v in values.items() if v},
            ctx=c.import_context(actor=user.actor.name),
            actor=user.actor,
        )
    except ValidationError as exc:
        context = {"values": values, "sources": SOURCES, "error": str(exc), "field": exc.field}
        return render(request, "lead_new.html", context, user=user, status=422)
    word = {"created": "created", "updated": "recognised and updated", "unchanged": "recognised"}[outcome]
    return done(request, f"/leads/{lead_id}", f"Lead {word}.")
