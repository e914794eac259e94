"""The REST API under ``/api/v1``: every route is authenticated (bearer token) except the public capture
endpoint; changes need a write token; the role rules of the transition table apply as in the CLI, because
the same services run behind both."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, NotRequired

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, with_config
from pydantic import ValidationError as PydanticValidationError
from typing_extensions import TypedDict

from leadstage.adapters.security import hash_password
from leadstage.api.security import Principal, Reader, Uow, Writer, container
from leadstage.bootstrap import Container
from leadstage.domain.errors import NotFound, PermissionDenied, ValidationError
from leadstage.domain.leads import MAX_ID, as_id, lead_summary
from leadstage.domain.stages import BULK_ROLES, Action, Role, Stage, Status, TransitionRequest
from leadstage.services import access, audit, capture, privacy, scoring, tasks, webhooks
from leadstage.services import leads as lead_service
from leadstage.services import segments as segment_service
from leadstage.services import users as user_service
from leadstage.services.ports import LeadFilter
from leadstage.web.base import forget_tokens


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = None


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {"application/problem+json": {}}, "description": text}
    for code, text in (
        (400, "The body could not be parsed"),
        (401, "No valid token"),
        (403, "The role or the token's scope may not do this"),
        (404, "Not found"),
        (409, "Not allowed from the current state, or refused by a rule"),
        (412, "The resource changed since the given ETag"),
        (413, "Request body too large"),
        (415, "The body is not JSON"),
        (422, "Invalid input, with field paths"),
        (429, "Too many requests"),
    )
}

Ref = Annotated[str, Path(max_length=320, description="Internal id, external id or email")]
router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)
Json = dict[str, Any]
PropertyValue = str | int | float | bool | None


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _text_time(value: Any) -> Any:
    """Times are ISO 8601 text in this API: a number (or text that is one) is refused, not read as seconds
    since 1970."""
    if value.__class__ is str and value[4:5] == "-" and value[:4].isdigit():  # 2026-...: a date, not a number
        return value
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value.strip())):
        raise ValueError("a time is ISO 8601 text such as 2026-11-02T09:30:00Z")
    return value


Timestamp = Annotated[datetime, BeforeValidator(_text_time)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- leads ---------------------------------------------------------------------------------------------


class LeadIn(Strict):
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=64)
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    job_title: str | None = Field(default=None, max_length=300)
    company: str | None = Field(default=None, max_length=300)
    website: str | None = Field(default=None, max_length=300)
    external_id: str | None = Field(default=None, max_length=255)
    source: str | None = Field(default=None, max_length=120)
    created_at: Timestamp | None = None
    properties: dict[str, PropertyValue] = Field(default_factory=dict, max_length=200)

    def record(self) -> Json:
        fields = self.model_dump(exclude={"properties"}, exclude_none=True)
        if "created_at" in fields:
            fields["created_at"] = fields["created_at"].isoformat()
        return {**{k: v for k, v in self.properties.items() if k not in fields}, **fields}


class LeadBatch(Strict):
    leads: list[LeadIn] = Field(min_length=1, max_length=capture.MAX_BATCH)


#: ISO 8601 as the import reads it, the date written out: a date, or a date and a time to the minute or
#: finer, with ``Z`` or an offset or neither (then read in the configured zone)
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?")


def _activity_time(value: str) -> str:
    """An activity's time stays text (the import reads it), checked to be one: numbers are refused rather
    than read as seconds since 1970, and so are dates that do not exist."""
    text = value.upper()  # (a lowercase t or z is read as T or Z)
    if _ISO_TIME.fullmatch(text):
        try:
            datetime.fromisoformat(text)
            return text
        except ValueError:
            pass
    raise ValueError("a time is ISO 8601 text such as 2026-11-02T09:30:00Z")


@with_config(ConfigDict(extra="forbid", title="ActivityIn"))
class ActivityIn(TypedDict):
    """One activity: its lead (by email, lead_id or external_id), type and time, where it came from, and
    properties."""

    # (a typed dict, not a model: a batch is validated from the body's bytes into plain dicts in one pass,
    # without a model object per activity)

    email: NotRequired[Annotated[str | None, Field(max_length=320)]]
    lead_id: NotRequired[Annotated[int, Field(ge=1, le=MAX_ID)] | None]
    external_id: NotRequired[Annotated[str | None, Field(max_length=255)]]
    type: Annotated[str, Field(min_length=1, max_length=64)]
    occurred_at: Annotated[
        str, Field(max_length=64, json_schema_extra={"format": "date-time"}), AfterValidator(_activity_time)
    ]
    source: NotRequired[Annotated[str | None, Field(max_length=120)]]
    campaign: NotRequired[Annotated[str | None, Field(max_length=200)]]
    content: NotRequired[Annotated[str | None, Field(max_length=300)]]
    idempotency_key: NotRequired[Annotated[str | None, Field(max_length=200)]]
    properties: NotRequired[Annotated[dict[str, PropertyValue], Field(max_length=100)]]


@with_config(ConfigDict(extra="forbid", title="ActivityBatch"))
class ActivityBatch(TypedDict):
    activities: Annotated[list[ActivityIn], Field(min_length=1, max_length=capture.MAX_BATCH)]


#: the batch read straight from the body's bytes (JSON parsed and validated in one pass)
_ACTIVITY_BATCH = TypeAdapter(ActivityBatch)


BATCH_PATH = "/api/v1/activities/batch"


def document_activity_batch(doc: dict[str, Any]) -> None:
    """Put the activity batch's body into the OpenAPI document (the route reads its body itself): its
    schemas as components, referred to by the operation."""
    schema = _ACTIVITY_BATCH.json_schema(ref_template="#/components/schemas/{model}")
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    components.update(schema.pop("$defs", {}))
    components["ActivityBatch"] = schema
    doc["paths"][BATCH_PATH]["post"]["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ActivityBatch"}}},
    }


def _activity_records(body: bytes) -> list[Json]:
    """The batch's activities as import records: fields given (not null), and properties as further
    columns that do not override them."""
    try:
        batch = _ACTIVITY_BATCH.validate_json(body)
    except PydanticValidationError as exc:
        raise RequestValidationError(
            [{**err, "loc": ("body", *err["loc"])} for err in exc.errors(include_url=False)]
        ) from None
    records: list[Json] = []
    for given in batch["activities"]:
        fields: Json = {k: v for k, v in given.items() if v is not None}
        extra = fields.pop("properties", None)
        records.append({**{k: v for k, v in extra.items() if k not in fields}, **fields} if extra else fields)
    return records


class ImportResult(BaseModel):
    rows_read: int
    created: int
    updated: int
    unchanged: int
    rejected: int
    rejects: list[Json]


def _import(
    request: Request, kind: str, records: list[Json], who: Writer, *, defer: bool = False
) -> ImportResult:
    ctx = container(request).import_context(actor=who.actor.name, defer=defer)
    id_column = "external_id" if kind == "leads" and any("external_id" in r for r in records) else None
    report, rejects = capture.import_records(kind, records, ctx=ctx, id_column=id_column)
    return ImportResult(
        rows_read=report.rows_read,
        created=report.created,
        updated=report.updated,
        unchanged=report.unchanged,
        rejected=len(rejects),
        rejects=rejects,
    )


def _etag(version: int) -> str:
    return f'"v{version}"'


def _expected(if_match: str | None) -> int | None:
    """The version an If-Match header names (``"v7"``); None without the header."""
    if if_match is None:
        return None
    tag = if_match.strip().removeprefix("W/").strip('"')
    if not tag.startswith("v") or as_id(tag[1:]) is None:
        raise ValidationError(
            f'If-Match must be an ETag of this API such as "v3", got {if_match!r}', field="If-Match"
        )
    return int(tag[1:])


@router.get("/leads", tags=["leads"])
def list_leads(
    request: Request,
    uow: Uow,
    who: Reader,
    stage: Stage | None = None,
    status: Status | None = None,
    owner: Annotated[
        str | None, Query(max_length=120, description="A user name, or 'none' for unassigned")
    ] = None,
    segment: Annotated[str | None, Query(max_length=200)] = None,
    filter: Annotated[str | None, Query(max_length=2000, description="A segment filter expression")] = None,
    order: Literal["id", "-id"] = "id",
    cursor: Annotated[
        int | None, Query(ge=0, le=MAX_ID, description="The next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Json:
    """Leads, filtered and in pages: pass ``next_cursor`` back as ``cursor`` for the next page."""
    flt = LeadFilter(
        stage=stage.value if stage else None,
        status=status.value if status else None,
        limit=limit,
        after_id=cursor,
        descending=order == "-id",
    )
    if owner is not None:
        if owner.lower() == "none":
            flt.unassigned = True
        else:
            user = uow.users.get_by_username(owner)
            if user is None:
                raise ValidationError(f"owner: no user {owner!r}", field="owner")
            flt.owner_id = user.id
    now = container(request).clock.now()
    total, leads = segment_service.search_leads(uow, flt, as_of=now, filter_text=filter, segment=segment)
    items = [lead_summary(lead) for lead in leads]
    next_cursor = items[-1]["id"] if len(items) == limit else None
    return {"total": total, "items": items, "next_cursor": next_cursor}


@router.post(
    "/leads",
    tags=["leads"],
    status_code=201,
    responses={200: {"description": "An existing lead was recognised"}},
)
def create_lead(request: Request, body: LeadIn, who: Writer, response: Response) -> Json:
    """Create a lead, or recognise the person and fill in what is new (the same rules as imports)."""
    result = _import(request, "leads", [body.record()], who)
    if result.rejects:
        raise ValidationError(result.rejects[0]["reason"].removeprefix("row 1: "), field="body")
    if not result.created:
        response.status_code = 200
    with container(request).uow() as uow:
        found = _find_created(uow, body)
    return {
        "outcome": "created" if result.created else ("updated" if result.updated else "unchanged"),
        "lead": found,
    }


def _find_created(uow: Any, body: LeadIn) -> Json | None:
    for ref in (body.external_id, body.email):
        if ref:
            try:
                return lead_summary(lead_service.resolve_lead(uow, ref))
            except (NotFound, ValidationError):  # a reference that resolves to nothing: try the next one
                continue
    return None


@router.post("/leads/batch", tags=["leads"])
def create_leads(request: Request, body: LeadBatch, who: Writer) -> ImportResult:
    """Up to 1,000 leads; matched people are updated, never duplicated; rejected records come back with
    reasons. Bulk imports: administrators, marketing and sales managers (as ``leadstage import``)."""
    _bulk(who)
    return _import(request, "leads", [lead.record() for lead in body.leads], who)


def _bulk(who: Writer) -> None:
    if who.actor.role not in BULK_ROLES:
        raise PermissionDenied(
            f"role {who.actor.role.value} may not import in bulk; admins, marketing and sales managers may"
        )


@router.get("/leads/{ref}", tags=["leads"], response_model=Json)
async def get_lead(
    request: Request,
    ref: Ref,
    who: Reader,
    include: Annotated[
        list[Literal["activities", "duplicates"]],
        Query(
            description="Also embed the 50 latest activities and the possible duplicates (each also at "
            "its own URL: /leads/{ref}/activities, /leads/{ref}/duplicates)"
        ),
    ] = [],  # noqa: B006  (FastAPI copies defaults per request)
) -> Response:
    """One lead: identity, account, owner, state, properties, history, activity count, scores, routing,
    disqualification and the actions allowed now; ``ETag`` is its version."""
    # the most read route: its transaction, the document and its JSON in one trip to a worker thread
    return await run_in_threadpool(_lead_document, container(request), ref, who, frozenset(include))


def _lead_document(c: Container, ref: str, who: Principal, include: frozenset[str]) -> Response:
    with c.uow() as uow:
        details = lead_service.lead_details(uow, ref, normalizer=c.identity, actor=who.actor, include=include)
    return JSONResponse(details, headers={"ETag": _etag(int(details["version"]))})


class LeadPatch(Strict):
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    job_title: str | None = Field(default=None, max_length=300)
    company: str | None = Field(default=None, max_length=300)
    properties: dict[str, PropertyValue] = Field(default_factory=dict, max_length=200)


@router.patch("/leads/{ref}", tags=["leads"])
def update_lead(
    request: Request,
    ref: Ref,
    body: LeadPatch,
    uow: Uow,
    who: Writer,
    response: Response,
    if_match: Annotated[str | None, Header(max_length=40)] = None,
) -> Json:
    """Change name, title, company or custom properties (null removes a property); with If-Match, only
    from that version (else 412). The lead is rescored."""
    c = container(request)
    fields = body.model_dump(exclude={"properties"}, exclude_unset=True)
    lead = lead_service.update_lead(
        uow,
        ref,
        fields=fields,
        properties=body.properties,
        actor=who.actor,
        at=c.clock.now(),
        expected_version=_expected(if_match),
    )
    assert lead.id is not None
    if c.settings.incremental_scoring:
        scoring.score_leads(uow, [lead.id], load=c.scoring_loader(), at=c.clock.now())
    uow.commit()
    response.headers["ETag"] = _etag(lead.version)
    return {"lead": lead_summary(lead)}


class TransitionIn(Strict):
    action: Action
    reason: str | None = Field(default=None, max_length=120)
    note: str | None = Field(default=None, max_length=5000)
    amount: str | None = Field(default=None, max_length=40)
    currency: str | None = Field(default=None, max_length=3)
    close_date: str | None = Field(default=None, max_length=10)


@router.post("/leads/{ref}/transitions", tags=["leads"])
def transition(
    request: Request,
    ref: Ref,
    body: TransitionIn,
    uow: Uow,
    who: Writer,
    response: Response,
    if_match: Annotated[str | None, Header(max_length=40)] = None,
) -> Json:
    """Take an action of the transition table; with If-Match, only from that version (else 412)."""
    expected = _expected(if_match)
    req = TransitionRequest(**{**body.model_dump(), "action": body.action.value})
    c = container(request)
    lead, entry = lead_service.transition_lead(
        uow, ref, req, actor=who.actor, at=c.clock.now(), expected_version=expected, setup=c.qualification
    )
    uow.commit()
    response.headers["ETag"] = _etag(lead.version)
    return {"lead": lead_summary(lead), "history_entry": lead_service.history_json(entry)}


class QualificationIn(Strict):
    criteria: dict[str, str] = Field(
        min_length=1,
        max_length=20,
        description="criterion: answer, e.g. budget: 'confirmed amount=5000 currency=EUR'",
    )
    framework: str | None = Field(default=None, max_length=40)


@router.post("/leads/{ref}/qualification", tags=["leads"])
def qualify(request: Request, ref: Ref, body: QualificationIn, uow: Uow, who: Writer) -> Json:
    """Record qualification criteria (BANT by default); answers what the policy still needs."""
    c = container(request)
    lead, used, check = lead_service.record_qualification(
        uow,
        ref,
        body.criteria,
        actor=who.actor,
        at=c.clock.now(),
        setup=c.qualification,
        framework=body.framework,
    )
    uow.commit()
    return {"id": lead.id, "framework": used.name, "policy_met": check.passed, "missing": list(check.missing)}


class MergeIn(Strict):
    other: str = Field(min_length=1, max_length=320)


@router.post("/leads/{ref}/merge", tags=["leads"])
def merge(request: Request, ref: Ref, body: MergeIn, uow: Uow, who: Writer) -> Json:
    """Merge another lead into this one (everything moves; the merge is recorded)."""
    lead = lead_service.merge_leads(uow, ref, body.other, actor=who.actor, at=container(request).clock.now())
    uow.commit()
    return {"lead": lead_summary(lead)}


@router.post("/leads/{ref}/forget", tags=["leads"])
def forget(request: Request, ref: Ref, uow: Uow, who: Writer) -> Json:
    """Erase the person's data; a hashed tombstone still recognises them."""
    lead_id = privacy.forget_lead(uow, ref, actor=who.actor, at=container(request).clock.now())
    uow.commit()
    return {"id": lead_id, "forgotten": True}


@router.get("/leads/{ref}/score", tags=["scoring"])
def explain_score(request: Request, ref: Ref, uow: Uow, who: Reader) -> Json:
    """Which rules gave which points, decayed as of now (adds up exactly to the scores)."""
    c = container(request)
    return scoring.explain(uow, ref, load=c.scoring_loader(), as_of=c.clock.now())


@router.post("/activities/batch", tags=["activities"])
async def add_activities(request: Request, who: Writer) -> ImportResult:
    """Up to 1,000 activities; each names its lead by email, lead_id or external_id. A retried batch adds
    nothing twice: give each activity an idempotency_key (else identical records are one event).
    Bulk imports: administrators, marketing and sales managers (as ``leadstage import``).

    The answer comes when the activities are kept durably. The leads' first and last touch, scoring (and
    MQL promotion) and attribution credits follow within about ``LEADSTAGE_FOLLOW_UP_SECONDS`` (one second
    by default), run by the server for all batches since the last run at once (ADR 21); ``tick`` runs what
    a stopped server left. On PostgreSQL the activities themselves (and advocacy, a disqualified person's
    resurfacing) are stored when the answer comes; on SQLite they wait in an inbox beside the database and
    arrive in the leads' timelines with the follow-up (ADR 24)."""
    records = _activity_records(await request.body())
    _bulk(who)
    result = await run_in_threadpool(_import, request, "activities", records, who, defer=True)
    request.app.state.follow_up_due = True
    return result


# ---- tasks, segments -----------------------------------------------------------------------------------


@router.get("/tasks", tags=["tasks"])
def list_tasks(
    request: Request,
    uow: Uow,
    who: Reader,
    owner: Annotated[str | None, Query(max_length=120)] = None,
    due: Annotated[str | None, Query(max_length=10, description="today, week, overdue or YYYY-MM-DD")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Json:
    c = container(request)
    now = c.clock.now()
    items = tasks.list_tasks(uow, owner=owner, due=due, now=now, zone=c.settings.tz, limit=limit)
    return {"total": len(items), "items": [_task(task, now) for task in items]}


def _task(task: Any, now: datetime) -> Json:
    return {
        "id": task.id,
        "kind": task.kind.value,
        "title": task.title,
        "lead_id": task.lead_id,
        "owner": task.owner,
        "status": task.status.value,
        "due_at": task.due_at.isoformat(),
        "overdue": task.overdue(now),
    }


@router.post("/tasks/{task_id}/done", tags=["tasks"])
def close_task(
    request: Request, task_id: Annotated[int, Path(ge=1, le=MAX_ID)], uow: Uow, who: Writer
) -> Json:
    now = container(request).clock.now()
    task = tasks.close_task(uow, task_id, actor=who.actor, at=now)
    uow.commit()
    return _task(task, now)


class SegmentIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    filter: str = Field(min_length=1, max_length=2000)
    description: str | None = Field(default=None, max_length=2000)


@router.get("/segments", tags=["segments"])
def list_segments(request: Request, uow: Uow, who: Reader) -> Json:
    items = segment_service.list_segments(uow, as_of=container(request).clock.now())
    return {"total": len(items), "items": items}


@router.post("/segments", tags=["segments"], status_code=201)
def create_segment(request: Request, body: SegmentIn, uow: Uow, who: Writer) -> Json:
    segment_service.require_editor(who.actor)
    info = segment_service.create_segment(
        uow,
        body.name,
        body.filter,
        actor_name=who.actor.name,
        at=container(request).clock.now(),
        description=body.description,
    )
    uow.commit()
    return info


@router.get("/segments/{name}", tags=["segments"])
def show_segment(request: Request, name: Annotated[str, Path(max_length=200)], uow: Uow, who: Reader) -> Json:
    return segment_service.show_segment(uow, name, as_of=container(request).clock.now())


@router.delete("/segments/{name}", tags=["segments"], status_code=204)
def delete_segment(name: Annotated[str, Path(max_length=200)], uow: Uow, who: Writer) -> Response:
    segment_service.require_editor(who.actor, "delete")
    segment_service.delete_segment(uow, name)
    uow.commit()
    return Response(status_code=204)


# ---- users and tokens ----------------------------------------------------------------------------------


@router.get("/me", tags=["users"])
def me(who: Reader) -> Json:
    a = who.actor
    return {"username": a.name, "role": a.role.value, "team": a.team, "scope": who.scope}


@router.get("/users", tags=["users"])
def list_users(uow: Uow, who: Reader) -> Json:
    users = uow.users.all()
    return {
        "total": len(users),
        "items": [
            {"id": u.id, "username": u.username, "role": u.role, "team": u.team, "active": u.active}
            for u in users
        ],
    }


class UserIn(Strict):
    username: str = Field(min_length=1, max_length=120)
    role: Literal["admin", "marketing", "sales_rep", "sales_manager", "viewer"]
    team: str | None = Field(default=None, max_length=120)
    password: str | None = Field(default=None, min_length=8, max_length=200)
    email: str | None = Field(default=None, max_length=320)


@router.post("/users", tags=["users"], status_code=201)
def add_user(request: Request, body: UserIn, uow: Uow, who: Writer) -> Json:
    if who.actor.role is not Role.ADMIN:
        raise PermissionDenied("only an administrator adds users")
    user = user_service.add_user(
        uow,
        username=body.username,
        role=body.role,
        team=body.team,
        password_hash=hash_password(body.password) if body.password else None,
        at=container(request).clock.now(),
        email=body.email,
        actor=who.actor,
    )
    uow.commit()
    return {
        "id": user.id,
        "username": user.username,
        "role": user.role,
        "team": user.team,
        "active": user.active,
    }


class TokenIn(Strict):
    user: str = Field(min_length=1, max_length=120)
    scope: Literal["read", "write"] = "read"
    name: str | None = Field(default=None, max_length=200)


@router.post("/tokens", tags=["tokens"], status_code=201)
def create_token(request: Request, body: TokenIn, uow: Uow, who: Writer) -> Json:
    """A new token, shown once (only its hash is kept)."""
    record, token = access.create_token(
        uow, body.user, scope=body.scope, actor=who.actor, at=container(request).clock.now(), name=body.name
    )
    uow.commit()
    return {"token": token, **access.token_document(record)}


@router.delete("/tokens/{token_id}", tags=["tokens"])
def revoke_token(
    request: Request, token_id: Annotated[int, Path(ge=1, le=MAX_ID)], uow: Uow, who: Writer
) -> Json:
    record = access.revoke_token(uow, token_id, actor=who.actor, at=container(request).clock.now())
    uow.commit()
    forget_tokens(request)
    return access.token_document(record)


# ---- webhooks ------------------------------------------------------------------------------------------


class WebhookIn(Strict):
    url: str = Field(min_length=8, max_length=2000)
    events: list[
        Literal[
            "lead.created",
            "lead.stage_changed",
            "lead.assigned",
            "lead.score_crossed",
            "sla.breached",
            "model.activated",
        ]
    ] = Field(min_length=1, max_length=6)


@router.get("/webhooks", tags=["webhooks"])
def list_webhooks(uow: Uow, who: Reader) -> Json:
    if who.actor.role is not Role.ADMIN:
        raise PermissionDenied("only an administrator manages webhooks")
    subs = uow.webhooks.subscriptions(active_only=False)
    return {
        "total": len(subs),
        "items": [{"id": s.id, "url": s.url, "events": s.events, "active": s.active} for s in subs],
    }


@router.post("/webhooks", tags=["webhooks"], status_code=201)
def add_webhook(request: Request, body: WebhookIn, uow: Uow, who: Writer) -> Json:
    """Subscribe an endpoint; the answer carries the signing secret, once."""
    sub, secret = webhooks.add_subscription(
        uow, body.url, list(body.events), actor=who.actor, at=container(request).clock.now()
    )
    uow.commit()
    return {"id": sub.id, "url": sub.url, "events": sub.events, "secret": secret}


@router.get("/webhooks/{subscription_id}/deliveries", tags=["webhooks"])
def webhook_deliveries(
    subscription_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    uow: Uow,
    who: Reader,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Json:
    if who.actor.role is not Role.ADMIN:
        raise PermissionDenied("only an administrator manages webhooks")
    if not any(s.id == subscription_id for s in uow.webhooks.subscriptions(active_only=False)):
        raise NotFound(f"no webhook {subscription_id}")
    items = [webhooks.outbox_json(i) for i in uow.webhooks.log(subscription_id, limit)]
    return {"total": len(items), "items": items}


@router.get("/audit", tags=["audit"])
def audit_log(
    uow: Uow,
    who: Reader,
    actor: Annotated[str | None, Query(max_length=120)] = None,
    action: Annotated[str | None, Query(max_length=60)] = None,
    since: Timestamp | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
) -> Json:
    """The audit log, latest first (administrators)."""
    items = audit.entries(uow, actor=who.actor, who=actor, action=action, since=since, limit=limit)
    return {"total": len(items), "items": items}
