"""One lead on one page: who they are, their account, stage and history, activities, scores with their
explanation and history, the predictive score's factors, qualification, the opportunity, tasks, possible
duplicates, the disqualification they carry, and the actions this user may take from the lead's state."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from leadstage.domain.errors import NotFound, ValidationError
from leadstage.domain.leads import MAX_ID
from leadstage.domain.qualification import evaluate, format_answer
from leadstage.domain.stages import (
    ADVOCACY_ACTIVITY_TYPES,
    REASON_CODES,
    REASONS_NEEDING_NOTE,
    TRANSITIONS,
    Action,
    Need,
    TransitionRequest,
)
from leadstage.domain.tasks import TaskStatus
from leadstage.services import leads as lead_service
from leadstage.services import predictive, scoring, tasks, workspace
from leadstage.services.ports import TaskQuery
from leadstage.web.base import Viewer, WebUser, container, done, local_path, render

router = APIRouter(include_in_schema=False)
LeadId = Annotated[int, Path(ge=1, le=MAX_ID)]

#: How the page names each action, and what the button says.
ACTION_LABELS = {
    "promote_mql": "Promote to MQL",
    "accept": "Accept the MQL",
    "reject": "Reject the MQL",
    "qualify_sql": "Qualify as SQL",
    "open_opportunity": "Open an opportunity",
    "win": "Mark won",
    "lose": "Mark lost",
    "recycle": "Recycle to marketing",
    "advocate": "Mark as evangelist",
    "disqualify": "Disqualify",
    "reopen": "Reopen",
}


def _action_forms(allowed: list[str]) -> list[dict[str, Any]]:
    """Each allowed action with the inputs its row of the transition table needs (domain/stages.py)."""
    forms = []
    for name in allowed:
        rule = TRANSITIONS[Action(name)]
        needs = rule.needs
        forms.append(
            {
                "action": name,
                "label": ACTION_LABELS[name],
                "reasons": []
                if needs is Need.CRITERIA_OR_MANUAL
                else list(REASON_CODES.get(rule.action, ())),
                "manual": needs is Need.CRITERIA_OR_MANUAL,
                "note_required": needs in (Need.REASON_AND_NOTE, Need.CRITERIA_OR_MANUAL),
                "note": needs
                in (Need.REASON, Need.REASON_AND_NOTE, Need.CRITERIA_OR_MANUAL, Need.ADVOCACY_OR_NOTE),
                "money": needs in (Need.OPPORTUNITY, Need.CLOSE),
                "close": needs is Need.CLOSE,
                "advocacy": sorted(ADVOCACY_ACTIVITY_TYPES) if needs is Need.ADVOCACY_OR_NOTE else [],
                "simple": needs in (None, Need.QUALIFICATION),
                "danger": name in ("disqualify", "reject", "lose"),
            }
        )
    return forms


def _predictive(request: Request, lead_id: int) -> dict[str, Any] | None:
    """The active predictive model's score for the lead with its top factors, or None without a model."""
    c = container(request)
    with c.uow() as uow:
        if uow.predictive.active_model() is None:
            return None
    from leadstage.adapters.ml import (
        SklearnLightGbmTrainer,
    )  # numpy, scikit-learn, LightGBM: only when needed

    try:
        return predictive.explain_lead(c.uow, SklearnLightGbmTrainer(), lead_id, at=c.clock.now(), top=3)
    except NotFound:
        return None


def lead_page(request: Request, user: WebUser, lead_id: int, *, status: int = 200) -> Response:
    c = container(request)
    now = c.clock.now()
    with c.uow() as uow:
        details = lead_service.lead_details(uow, lead_id, normalizer=c.identity, actor=user.actor)
        if details["id"] != lead_id:  # a merged lead's old address: the survivor's page
            return RedirectResponse(f"/leads/{details['id']}", status_code=303)
        lead = lead_service.resolve_lead(uow, lead_id)
        try:
            explanation: dict[str, Any] | None = scoring.explain(
                uow, lead_id, load=c.scoring_loader(), as_of=now
            )
        except NotFound:
            explanation = None
        framework = c.qualification.for_team(lead.state.owner_team)
        confirmed = uow.qualifications.confirmed(lead_id, cycle=lead.cycle, framework=framework.name)
        check = evaluate(confirmed, framework.policy)
        open_tasks = uow.tasks.find(TaskQuery(lead_id=lead_id, statuses=(TaskStatus.OPEN,)))
        users = [u.username for u in uow.users.all() if u.active and u.role in ("sales_rep", "sales_manager")]
    opportunity = next(
        (h["data"] for h in reversed(details["history"]) if h["action"] == "open_opportunity"), None
    )
    won = next((h["data"] for h in reversed(details["history"]) if h["action"] == "win"), None)
    context = {
        "lead": details,
        "name": " ".join(p for p in (details["first_name"], details["last_name"]) if p)
        or details["email"]
        or f"Lead {lead_id}",
        "explanation": explanation,
        "predictive": _predictive(request, lead_id),
        "framework": framework,
        "confirmed": confirmed,
        "check": check,
        "actions": _action_forms(details["allowed_actions"]),
        "tasks": open_tasks,
        "opportunity": opportunity,
        "won": won,
        "loggable": workspace.LOGGABLE_ACTIVITIES,
        "may_merge": user.role.value in ("admin", "marketing", "sales_manager"),
        "may_qualify": user.role.value in ("admin", "sales_rep", "sales_manager")
        and "qualify_sql" in _reachable(details),
        "may_log": user.role.value != "viewer",
        "may_assign": user.role.value in ("admin", "sales_manager"),
        "sales_users": users,
        "reasons_needing_note": sorted(REASONS_NEEDING_NOTE),
    }
    return render(request, "lead.html", context, user=user, status=status)


def _reachable(details: dict[str, Any]) -> set[str]:
    """Actions the qualification form prepares for: qualify_sql while the lead is an accepted MQL."""
    return {"qualify_sql"} if (details["stage"], details["status"]) == ("mql", "working") else set()


@router.get("/leads/{lead_id}")
def show_lead(request: Request, lead_id: LeadId, user: Viewer) -> Response:
    return lead_page(request, user, lead_id)


@router.post("/leads/{lead_id}/transition")
def transition(
    request: Request,
    lead_id: LeadId,
    user: Viewer,
    action: Annotated[str, Form(max_length=40)],
    version: Annotated[int | None, Form(ge=1)] = None,
    reason: Annotated[str, Form(max_length=120)] = "",
    note: Annotated[str, Form(max_length=5000)] = "",
    amount: Annotated[str, Form(max_length=40)] = "",
    currency: Annotated[str, Form(max_length=3)] = "",
    close_date: Annotated[str, Form(max_length=10)] = "",
    advocacy_activity: Annotated[str, Form(max_length=40)] = "",
    back: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    """Take one action of the transition table; a refusal explains why and what is allowed instead."""
    c = container(request)
    req = TransitionRequest(
        action=action,
        reason=reason or None,
        note=note or None,
        amount=amount or None,
        currency=currency or None,
        close_date=close_date or None,
        advocacy_activity=advocacy_activity or None,
    )
    with c.uow(write=True) as uow:
        lead, entry = lead_service.transition_lead(
            uow,
            lead_id,
            req,
            actor=user.actor,
            at=c.clock.now(),
            expected_version=version,
            setup=c.qualification,
        )
        uow.commit()
    label = f"{entry.to_stage.value}/{entry.to_status.value}"
    target = local_path(back, f"/leads/{lead.id}")
    return done(request, target, f"{ACTION_LABELS.get(action, action)}: lead {lead.id} is now {label}.")


@router.post("/leads/{lead_id}/qualification")
async def qualify(request: Request, lead_id: LeadId, user: Viewer) -> Response:
    """Record the qualification form's criteria (each criterion's fields and evidence) on the current cycle."""
    form = await request.form()
    c = container(request)
    with c.uow() as uow:
        lead = lead_service.resolve_lead(uow, lead_id)
    framework = c.qualification.for_team(lead.state.owner_team)
    answers: dict[str, str] = {}
    for criterion in framework.criteria:
        values = {f.name: str(form.get(f"{criterion.name}.{f.name}") or "")[:300] for f in criterion.fields}
        evidence = str(form.get(f"{criterion.name}.evidence") or "")[:2000]
        text = format_answer(values, evidence)
        if text:
            answers[criterion.name] = text
    with c.uow(write=True) as uow:
        _lead, used, check = lead_service.record_qualification(
            uow,
            lead_id,
            answers,
            actor=user.actor,
            at=c.clock.now(),
            setup=c.qualification,
            framework=framework.name,
        )
        uow.commit()
    said = (
        f"{used.name.upper()} recorded: the policy is met, the lead can be qualified as an SQL."
        if check.passed
        else f"{used.name.upper()} recorded; still missing: {', '.join(check.missing)}."
    )
    return done(request, f"/leads/{lead_id}", said)


@router.post("/leads/{lead_id}/activities")
def log_activity(
    request: Request,
    lead_id: LeadId,
    user: Viewer,
    type: Annotated[str, Form(max_length=40)],
    occurred_at: Annotated[str, Form(max_length=40)] = "",
    note: Annotated[str, Form(max_length=5000)] = "",
    outcome: Annotated[str, Form(max_length=200)] = "",
    key: Annotated[str, Form(max_length=80)] = "",
) -> Response:
    """Log a call, an email or a meeting (when: the time given, in the workspace's zone, else now)."""
    c = container(request)
    when = c.clock.now()
    if occurred_at.strip():
        try:
            local = datetime.fromisoformat(occurred_at.strip())
        except ValueError:
            raise ValidationError(
                f"when: a date and time, got {occurred_at!r}", field="occurred_at"
            ) from None
        when = (local if local.tzinfo else local.replace(tzinfo=c.settings.tz)).astimezone(UTC)
    with c.uow() as uow:
        lead = lead_service.resolve_lead(uow, lead_id)
    assert lead.id is not None
    workspace.log_activity(
        lead.id,
        type,
        ctx=c.import_context(actor=user.actor.name),
        actor=user.actor,
        occurred_at=when,
        note=note.strip() or None,
        outcome=outcome.strip() or None,
        key=f"web:{key or secrets.token_urlsafe(12)}",
    )
    return done(request, f"/leads/{lead.id}", f"{type.replace('_', ' ').capitalize()} logged.")


@router.post("/leads/{lead_id}/merge")
def merge(
    request: Request, lead_id: LeadId, user: Viewer, other: Annotated[int, Form(ge=1, le=MAX_ID)]
) -> Response:
    """Merge a possible duplicate into this lead (everything moves; the merge is recorded)."""
    c = container(request)
    with c.uow(write=True) as uow:
        lead_service.merge_leads(uow, lead_id, other, actor=user.actor, at=c.clock.now())
        uow.commit()
    return done(request, f"/leads/{lead_id}", f"Lead {other} merged into this lead.")


@router.post("/leads/{lead_id}/assign")
def assign(
    request: Request, lead_id: LeadId, user: Viewer, assignee: Annotated[str, Form(max_length=120)]
) -> Response:
    """Hand the lead to a member of sales (sales managers for their team, administrators)."""
    c = container(request)
    with c.uow(write=True) as uow:
        result = workspace.bulk_assign(uow, [lead_id], user=assignee, actor=user.actor, at=c.clock.now())
        if result.refused:
            raise ValidationError(result.refused[0][1], field="assignee")
        uow.commit()
    return done(request, f"/leads/{lead_id}", f"Assigned to {assignee}.")


@router.post("/tasks/{task_id}/done")
def close_task(
    request: Request,
    task_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    user: Viewer,
    back: Annotated[str, Form(max_length=300)] = "/queue",
    cancel: Annotated[bool, Form()] = False,
) -> Response:
    """Mark a task done (or cancelled); back to the page it was on."""
    c = container(request)
    with c.uow(write=True) as uow:
        task = tasks.close_task(uow, task_id, actor=user.actor, at=c.clock.now(), cancel=cancel)
        uow.commit()
    target = local_path(back, "/queue")
    return done(request, target, f"Task “{task.title}” {'cancelled' if cancel else 'done'}.")
