"""Use cases of the web workspace's lead list: a view's page, saving a view as a segment, bulk actions and
the export of a view. Every change goes through the same services as the CLI and the API (transitions,
routing, segments), lead by lead, so each lead is judged by the same rules; a bulk action reports what it
did and, for each lead it could not change, why.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadstage.domain.errors import (
    DomainError,
    InvalidTransition,
    MissingField,
    PermissionDenied,
    ValidationError,
)
from leadstage.domain.qualification import DEFAULT_SETUP, QualificationSetup
from leadstage.domain.segments import All, Filter
from leadstage.domain.stages import (
    BULK_ROLES,
    TRANSITIONS,
    Actor,
    Role,
    Stage,
    TransitionRequest,
    actions_reaching,
    allowed_actions,
    check_request,
    role_may,
)
from leadstage.domain.views import LeadView, quote, segment_filter
from leadstage.services import audit, capture, routing
from leadstage.services import leads as lead_service
from leadstage.services import segments as segment_service
from leadstage.services.ingest import ImportContext
from leadstage.services.ports import ListCursor, ListedLead, UnitOfWork

#: Counting stops here: a view of more leads says "more than 10,000" (counting a million costs time).
COUNT_CAP = 10_000
PAGE_SIZES = (25, 50, 100)
#: Leads one bulk action may change at once (a page of the list at most).
MAX_BULK = 200


@dataclass(frozen=True)
class ViewPage:
    leads: list[ListedLead]
    total: int  # up to COUNT_CAP + 1
    next_cursor: str | None

    @property
    def total_capped(self) -> bool:
        return self.total > COUNT_CAP


def view_tree(uow: UnitOfWork, view: LeadView) -> Filter | None:
    """The view as one parsed filter (its conditions and its segment), or None for every lead."""
    parts: list[Filter] = []
    text = view.filter_text()
    if text:
        parts.append(segment_service.parse(uow, text))
    if view.segment:
        parts.append(segment_service.segment_filter(uow, view.segment))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else All(tuple(parts))


def parse_cursor(text: str | None) -> ListCursor | None:
    """A page cursor from the URL (``12345`` or ``B2.12345`` or ``-.12345`` for an unscored lead)."""
    if not text:
        return None
    priority, _, number = text.rpartition(".")
    if not number.isdigit() or len(number) > 18 or (priority and priority != "-" and len(priority) > 4):
        raise ValidationError(f"not a page of this list: {text!r}", field="after")
    if not priority:
        return ListCursor(id=int(number))
    return ListCursor(id=int(number), priority=None if priority == "-" else priority)


def cursor_text(lead: ListedLead, sort: str) -> str:
    if sort != "priority":
        return str(lead.id)
    return f"{lead.priority or '-'}.{lead.id}"


def view_page(
    uow: UnitOfWork, view: LeadView, *, as_of: datetime, after: str | None = None, limit: int = 50
) -> ViewPage:
    """One keyset page of the view, in its sort order, and how many leads it holds (capped)."""
    if limit not in PAGE_SIZES:
        raise ValidationError(f"page size must be one of {', '.join(map(str, PAGE_SIZES))}", field="size")
    tree = view_tree(uow, view)
    cursor = parse_cursor(after)
    if cursor is not None and view.sort != "priority":
        cursor = ListCursor(id=cursor.id)
    leads = uow.workspace.lead_page(
        tree, as_of=as_of, sort=view.sort, after=cursor, limit=limit, scan=bool(view.q)
    )
    total = uow.workspace.count(tree, as_of=as_of, cap=COUNT_CAP)
    more = len(leads) == limit
    return ViewPage(leads, total, cursor_text(leads[-1], view.sort) if more and leads else None)


def iter_view(
    uow: UnitOfWork, view: LeadView, *, as_of: datetime, batch: int = 1_000
) -> Iterator[ListedLead]:
    """Every lead of the view in its order, read page by page (constant memory)."""
    tree = view_tree(uow, view)
    cursor: ListCursor | None = None
    while True:
        page = uow.workspace.lead_page(tree, as_of=as_of, sort=view.sort, after=cursor, limit=batch)
        yield from page
        if len(page) < batch:
            return
        last = page[-1]
        cursor = ListCursor(id=last.id, priority=last.priority)


def save_view(
    uow: UnitOfWork, view: LeadView, name: str, *, actor: Actor, at: datetime, description: str | None = None
) -> dict[str, Any]:
    """Store the view as a segment: its conditions, within its segment when it names one."""
    segment_service.require_editor(actor)
    base = None
    if view.segment:
        base = segment_service.show_segment(uow, view.segment, as_of=at, limit=0)["filter"]
    text = segment_filter(view.filter_text(), base)
    if not text:
        raise ValidationError("this view has no filter: pick at least one before saving it", field="name")
    return segment_service.create_segment(
        uow, name, text, actor_name=actor.name, at=at, description=description
    )


def check_may_export(actor: Actor) -> None:
    if actor.role not in BULK_ROLES:
        raise PermissionDenied(
            f"role {actor.role.value} may not export leads; administrators, marketing and sales managers may"
        )


EXPORT_COLUMNS = (
    "id",
    "email",
    "first_name",
    "last_name",
    "job_title",
    "company",
    "stage",
    "status",
    "cycle",
    "owner",
    "priority",
    "fit_grade",
    "fit_score",
    "engagement_level",
    "engagement_score",
    "predictive_score",
    "first_source",
    "created_at",
    "last_touch_at",
)


def export_rows(uow: UnitOfWork, view: LeadView, *, actor: Actor, as_of: datetime) -> Iterator[list[Any]]:
    """The view's leads as rows for a CSV file, the header first (read page by page)."""
    check_may_export(actor)
    yield list(EXPORT_COLUMNS)
    for lead in iter_view(uow, view, as_of=as_of):
        yield [_cell(getattr(lead, name)) for name in EXPORT_COLUMNS]


def record_export(uow: UnitOfWork, view: LeadView, *, actor: Actor, at: datetime, rows: int) -> None:
    """Exports are audited: who took which view, how many leads."""
    audit.record(uow, actor, "export", at=at, target="leads", view=view.as_params(), rows=rows, channel="web")


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return "" if value is None else value


# ---- adding a lead ---------------------------------------------------------------------------------------


def add_lead(record: dict[str, str], *, ctx: ImportContext, actor: Actor) -> tuple[int, str]:
    """Create a lead typed in by hand, or recognise the person (the same pipeline and rules as imports);
    returns its id and ``created``, ``updated`` or ``unchanged``."""
    if actor.role in (Role.VIEWER, Role.SYSTEM):
        raise PermissionDenied(f"role {actor.role.value} may not add leads")
    if not (record.get("email") or record.get("phone")):
        raise ValidationError("give an email or a phone: they say who the person is", field="email")
    report, rejects = capture.import_records("leads", [record], ctx=ctx)
    if rejects:
        raise ValidationError(str(rejects[0]["reason"]).removeprefix("row 1: "), field="email")
    with ctx.uow_factory(write=False) as uow:
        found = None
        if record.get("email"):
            try:
                found = lead_service.resolve_lead(uow, record["email"])
            except DomainError:  # an email kept as invalid does not name the lead: its phone may
                found = None
        if found is None and record.get("phone"):
            e164 = ctx.normalizer.phone(record["phone"]).e164
            found = uow.leads.find_by_phone(e164) if e164 else None
    if found is None or found.id is None:
        raise ValidationError("the lead was stored but cannot be found by its email or phone", field="email")
    outcome = "created" if report.created else ("updated" if report.updated else "unchanged")
    return found.id, outcome


#: What sales log by hand on a lead (the first one after an assignment meets its response deadline).
LOGGABLE_ACTIVITIES = ("call", "email_sent", "meeting")


def log_activity(
    lead_id: int,
    kind: str,
    *,
    ctx: ImportContext,
    actor: Actor,
    occurred_at: datetime,
    note: str | None = None,
    outcome: str | None = None,
    key: str,
) -> None:
    """Record a call, an email sent or a meeting on a lead, through the import pipeline like any activity
    (scored, resurfacing judged, SLA responses seen); ``key`` makes it one event however often it is sent."""
    if actor.role in (Role.VIEWER, Role.SYSTEM):
        raise PermissionDenied(f"role {actor.role.value} may not log activities")
    if kind not in LOGGABLE_ACTIVITIES:
        raise ValidationError(f"log a {', '.join(LOGGABLE_ACTIVITIES)}; got {kind!r}", field="type")
    record: dict[str, Any] = {
        "lead_id": lead_id,
        "type": kind,
        "occurred_at": occurred_at.isoformat(),
        "idempotency_key": key,
        "logged_by": actor.name,
    }
    if note:
        record["note"] = note
    if outcome:
        record["outcome"] = outcome
    _report, rejects = capture.import_records("activities", [record], ctx=ctx)
    if rejects:
        raise ValidationError(str(rejects[0]["reason"]).removeprefix("row 1: "), field="type")


# ---- bulk actions ----------------------------------------------------------------------------------------


@dataclass
class BulkResult:
    """What a bulk action did: the leads it changed, and each lead it could not change with the reason."""

    action: str
    done: list[int] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)


def _ids(ids: Sequence[int]) -> list[int]:
    unique = list(dict.fromkeys(ids))
    if not unique:
        raise ValidationError("select at least one lead", field="ids")
    if len(unique) > MAX_BULK:
        raise ValidationError(f"at most {MAX_BULK} leads at once", field="ids")
    return unique


def bulk_transition(
    uow: UnitOfWork,
    ids: Sequence[int],
    request: TransitionRequest,
    *,
    actor: Actor,
    at: datetime,
    setup: QualificationSetup = DEFAULT_SETUP,
) -> BulkResult:
    """The same transition on each lead, each judged on its own (role, ownership, state); the caller commits.

    Input errors (an unknown reason code, a missing note) refuse the whole action before any lead."""
    check_request(request, actor)
    result = BulkResult(request.action)
    for lead_id in _ids(ids):
        try:
            lead_service.transition_lead(uow, lead_id, request, actor=actor, at=at, setup=setup)
        except DomainError as exc:
            result.refused.append((lead_id, str(exc)))
        else:
            result.done.append(lead_id)
    return result


def bulk_assign(uow: UnitOfWork, ids: Sequence[int], *, user: str, actor: Actor, at: datetime) -> BulkResult:
    """Hand each lead to ``user`` through routing's manual assignment (same rules as ``leads assign``)."""
    if actor.role not in (Role.ADMIN, Role.SALES_MANAGER):
        raise PermissionDenied(
            f"role {actor.role.value} may not assign leads; a sales manager or an admin may"
        )
    result = BulkResult("assign")
    for lead_id in _ids(ids):
        try:
            routing.assign_lead(
                uow, lead_id, user=user, team=None, actor=actor, at=at, note="assigned in bulk"
            )
        except DomainError as exc:
            if isinstance(exc, ValidationError) and exc.field == "user":
                raise  # the same for every lead: say it once
            result.refused.append((lead_id, str(exc)))
        else:
            result.done.append(lead_id)
    return result


def bulk_add_to_segment(
    uow: UnitOfWork, ids: Sequence[int], *, segment: str, actor: Actor, at: datetime
) -> BulkResult:
    """Add the leads to a segment by id (``... or id in (...)``), or create a list segment of them."""
    chosen = _ids(ids)
    segment_service.add_leads(uow, segment, chosen, actor=actor, at=at)
    return BulkResult("add_to_segment", done=chosen)


# ---- the sales work queue --------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueItem:
    """A lead waiting for a decision, with its current assignment's first-response deadline."""

    lead: ListedLead
    sla_due_at: datetime | None
    sla_state: str | None
    team: str | None


def team_members(uow: UnitOfWork, team: str | None) -> list[str]:
    """The active users of a team (none without a team)."""
    if team is None:
        return []
    return sorted(u.username for u in uow.users.all() if u.active and u.team == team)


def scope_filter(uow: UnitOfWork, actor: Actor, scope: str) -> str:
    """Whose leads a queue or board shows: ``mine``, ``team`` (owned by a member of the manager's team) or
    ``all``; as a condition of the filter language ('' for all)."""
    if scope == "all":
        return ""
    if scope == "mine":
        return f"owner = {quote(actor.name)}"
    if scope == "team":  # the unassigned ones have a queue of their own
        members = team_members(uow, actor.team) or [actor.name]
        return f"owner in ({', '.join(quote(m) for m in members)})"
    raise ValidationError(f"scope must be mine, team or all, got {scope!r}", field="scope")


def default_scope(actor: Actor) -> str:
    if actor.role is Role.SALES_REP:
        return "mine"
    if actor.role is Role.SALES_MANAGER and actor.team:
        return "team"
    return "all"


def _with_assignments(uow: UnitOfWork, leads: Sequence[ListedLead]) -> list[QueueItem]:
    items = []
    for lead in leads:
        current = uow.routing.current(lead.id)
        items.append(
            QueueItem(
                lead=lead,
                sla_due_at=current.sla_due_at if current else None,
                sla_state=current.sla_state if current else None,
                team=current.team if current else None,
            )
        )
    return items


def review_queue(
    uow: UnitOfWork, *, scope_text: str, as_of: datetime, limit: int = 50
) -> tuple[int, list[QueueItem]]:
    """MQLs waiting for sales to accept or reject, best first, with their response deadlines."""
    text = " and ".join(p for p in ("stage = mql and status = open", scope_text) if p)
    tree = segment_service.parse(uow, text)
    leads = uow.workspace.lead_page(tree, as_of=as_of, sort="priority", after=None, limit=limit)
    total = uow.workspace.count(tree, as_of=as_of, cap=COUNT_CAP)
    return total, _with_assignments(uow, leads)


# ---- the pipeline board ----------------------------------------------------------------------------------

BOARD_STAGES = tuple(Stage)
#: Leads on the board: the ones being worked (nurtured and disqualified leads are marketing's).
BOARD_FILTER = "status in (open, working)"


@dataclass(frozen=True)
class BoardColumn:
    stage: str
    count: int
    values: dict[str, float]  # amount per currency: open opportunities, or won deals
    leads: list[ListedLead]


def pipeline_board(
    uow: UnitOfWork, *, scope_text: str, as_of: datetime, per_column: int = 15
) -> list[BoardColumn]:
    """A column per stage: how many leads, what they are worth, and the best of them."""
    base = " and ".join(p for p in (BOARD_FILTER, scope_text) if p)
    tree = segment_service.parse(uow, base)
    counts = uow.workspace.stage_counts(tree, as_of=as_of)
    values = uow.workspace.stage_values(tree, as_of=as_of)
    columns = []
    for stage in BOARD_STAGES:
        column_tree = segment_service.parse(uow, f"stage = {stage.value} and {base}")
        leads = (
            uow.workspace.lead_page(column_tree, as_of=as_of, sort="priority", after=None, limit=per_column)
            if counts.get(stage.value)
            else []
        )
        columns.append(
            BoardColumn(stage.value, counts.get(stage.value, 0), values.get(stage.value, {}), leads)
        )
    return columns


def move_lead(
    uow: UnitOfWork,
    lead_id: int,
    to_stage: str,
    *,
    actor: Actor,
    at: datetime,
    expected_version: int | None = None,
    setup: QualificationSetup = DEFAULT_SETUP,
) -> str:
    """A card dropped on another stage: the one action of the table that goes there, taken like any other
    (role, state, policy, inputs); refused with the reason when no single action does. Returns the action."""
    try:
        target = Stage(to_stage)
    except ValueError:
        raise ValidationError(f"no stage {to_stage!r}", field="to") from None
    lead = lead_service.resolve_lead(uow, lead_id)
    candidates = [
        a for a in actions_reaching(lead.state, target) if role_may(TRANSITIONS[a], actor, lead.state)
    ]
    if len(candidates) != 1:
        why = (
            f"no action you may take moves a lead from {lead.state.label} to {target.value}"
            if not candidates
            else f"several actions go there ({', '.join(a.value for a in candidates)}): open the lead to choose"
        )
        raise InvalidTransition(lead.state.label, target.value, why, allowed_actions(lead.state, actor))
    action = candidates[0]
    try:
        lead_service.transition_lead(
            uow,
            lead_id,
            TransitionRequest(action=action.value),
            actor=actor,
            at=at,
            expected_version=expected_version,
            setup=setup,
        )
    except MissingField as exc:  # a drop carries no inputs: the lead's page has the form for them
        raise MissingField(
            f"{action.value.replace('_', ' ')} needs {exc.field or 'more input'}: open lead {lead_id} to give it "
            f"({exc})",
            field=exc.field,
        ) from None
    return action.value
