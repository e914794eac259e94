"""Public form capture: ``POST /api/v1/capture/{key}`` (HTML form posts and JSON), no token.

The post creates or matches the lead (the import rules: identity, tombstones, resurfacing of disqualified
people, scoring) and records a ``form_submit`` activity. Bots are kept out by a honeypot field (``_hp``:
hidden on the page, so a person leaves it empty; a filled one is answered like a success and nothing is
stored) and a per-address rate limit. Browsers are redirected to the form's thank-you page.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response

from leadstage.api.routes import PROBLEM_RESPONSES
from leadstage.api.security import container, rate_limited
from leadstage.bootstrap import Container
from leadstage.domain.errors import NotFound, ValidationError
from leadstage.domain.webhooks import SIGNATURE_HEADER
from leadstage.services import capture, webhooks
from leadstage.services import leads as lead_service
from leadstage.services.ports import CaptureForm

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES, tags=["capture"])
HONEYPOT = "_hp"
#: Form fields that name the lead; every other field becomes a custom property of the lead.
LEAD_FIELDS = ("email", "phone", "first_name", "last_name", "full_name", "job_title", "company", "website")
MAX_FIELDS = 50


async def _fields(request: Request) -> tuple[dict[str, Any], bool]:
    """The posted fields and whether the caller is a browser form (to be redirected)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            doc = json.loads(await request.body() or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ValidationError("the body is not valid JSON", field="body") from None
        if not isinstance(doc, dict):
            raise ValidationError("the body must be a JSON object of form fields", field="body")
        return doc, False
    if kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form(max_files=0, max_fields=MAX_FIELDS)
        return {k: v for k, v in form.items() if isinstance(v, str)}, True
    raise HTTPException(
        415, "send the form as application/x-www-form-urlencoded, multipart/form-data or JSON"
    )


def _lead_of(c: Any, record: dict[str, Any]) -> int | None:
    with c.uow() as uow:
        if record.get("email"):
            try:
                return lead_service.resolve_lead(uow, str(record["email"])).id
            except (NotFound, ValidationError):
                pass
        phone = c.identity.phone(str(record.get("phone") or ""))
        found = uow.leads.find_by_phone(phone.e164) if phone.e164 else None
        return found.id if found is not None else None


@router.post(
    "/capture/{key}",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": {"type": "object", "additionalProperties": True}},
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "additionalProperties": True}
                },
            }
        }
    },
    responses={303: {"description": "Browsers go to the form's thank-you page"}},
)
async def capture_form(request: Request, key: Annotated[str, Path(min_length=6, max_length=64)]) -> Response:
    """Public: a form post creates or matches the lead and records the submission."""
    rate_limited(request, "capture")
    c = container(request)
    form = await run_in_threadpool(_form, c, key)
    fields, browser = await _fields(request)
    if len(fields) > MAX_FIELDS:
        raise ValidationError(f"at most {MAX_FIELDS} fields", field="body")
    done: Response
    if browser and form.redirect_url:
        done = RedirectResponse(form.redirect_url, status_code=303)
    else:
        done = JSONResponse({"ok": True}, status_code=201)
    if str(fields.pop(HONEYPOT, "") or "").strip():
        return done  # a bot: answered like a person, nothing stored
    record = {
        k: v for k, v in fields.items() if isinstance(v, str | int | float | bool) and not k.startswith("_")
    }
    if not any(record.get(f) for f in ("email", "phone")):
        raise ValidationError("the form needs an email or a phone number", field="email")
    record.setdefault("source", form.source or "form")
    await run_in_threadpool(_submit, c, form, record)  # the database work, off the event loop
    return done


def _form(c: Container, key: str) -> CaptureForm:
    with c.uow() as uow:
        form = uow.access.form_by_key(key)
    if form is None or not form.active:
        raise NotFound(f"no capture form {key!r}")
    return form


def _submit(c: Container, form: CaptureForm, record: dict[str, Any]) -> None:
    """The lead (created or recognised) and its ``form_submit`` activity."""
    ctx = c.import_context(actor=f"form:{form.name}")
    _report, rejects = capture.import_records("leads", [record], ctx=ctx)
    if rejects:
        raise ValidationError(str(rejects[0]["reason"]).removeprefix("row 1: "), field="body")
    lead_id = _lead_of(c, record)
    if lead_id is None:  # not stored (an address nobody can use): nothing to attach the submission to
        raise ValidationError("the form's email or phone does not identify anyone", field="email")
    activity = {
        "type": "form_submit",
        "occurred_at": c.clock.now().isoformat(),
        "source": form.source or "form",
        "content": form.name,
        "lead_id": lead_id,
    }
    # one submission is one arrival: the lead's import above already judged a disqualified person's return
    capture.import_records("activities", [activity], ctx=replace(ctx, judge_resurfacing=False))


@router.post(
    "/hooks/{name}",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object", "additionalProperties": True}}},
        }
    },
)
async def inbound_hook(request: Request, name: Annotated[str, Path(min_length=1, max_length=60)]) -> Response:
    """Public but signed: ``{"activities": [...]}`` from an email, ad or chat tool, with the
    ``X-Leadstage-Signature`` header (``t=SECONDS,v1=HMAC``); stale or replayed deliveries are refused."""
    rate_limited(request, "hooks")
    c = container(request)
    body = await request.body()
    return await run_in_threadpool(_hook, c, name, request.headers.get(SIGNATURE_HEADER), body)


def _hook(c: Container, name: str, signature: str | None, body: bytes) -> Response:
    """Check the signature (and remember it against replays), then import the activities."""
    with c.uow(write=True) as uow:
        source = webhooks.accept_inbound(uow, name, signature, body, now=c.clock.now())
        uow.commit()
    try:
        doc = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValidationError("the body is not valid JSON", field="body") from None
    events = doc.get("activities") if isinstance(doc, dict) else None
    if not isinstance(events, list) or not events or len(events) > capture.MAX_BATCH:
        raise ValidationError(
            f'the body must be {{"activities": [...]}} with 1 to {capture.MAX_BATCH} items',
            field="activities",
        )
    records = [{**e, "source": e.get("source") or source} for e in events if isinstance(e, dict)]
    report, rejects = capture.import_records(
        "activities", records, ctx=c.import_context(actor=f"hook:{name}")
    )
    return JSONResponse(
        {
            "created": report.created,
            "unchanged": report.unchanged,
            "rejected": len(rejects),
            "rejects": rejects,
        }
    )
