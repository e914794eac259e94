"""Settings pages: segments, routing rules and team capacity, users and tokens, webhooks (this module),
the scoring model and the predictive model (``web/model_settings.py``).

Every change goes through the same service as the CLI and the API, which checks the role again and
audits where it audits; the pages check the role first, so a role that may not use a page gets the 403
page without learning anything else. Which role uses which page is :data:`PAGES` (ADR 19).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse

from leadstage.adapters.security import hash_password
from leadstage.domain.errors import AlreadyExists, NotFound, ValidationError
from leadstage.domain.leads import MAX_ID
from leadstage.domain.segments import FilterSyntaxError
from leadstage.domain.stages import SEGMENT_EDITORS, Role
from leadstage.domain.webhooks import EVENT_TYPES
from leadstage.services import access, audit, offboarding, users, webhooks
from leadstage.services import routing as routing_service
from leadstage.services import segments as segment_service
from leadstage.web.base import Viewer, WebUser, container, forget_tokens, render, require

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class SettingsPage:
    key: str
    label: str
    href: str
    roles: frozenset[Role]  # administrators always
    about: str


_ADMIN = frozenset({Role.ADMIN})
PAGES: tuple[SettingsPage, ...] = (
    SettingsPage("scoring", "Scoring model", "/settings/scoring", frozenset({Role.ADMIN, Role.MARKETING}),
                 "Edit the fit and engagement rules and the MQL criteria; check, backtest, then activate."),
    SettingsPage("segments", "Segments", "/settings/segments", SEGMENT_EDITORS,
                 "Saved filters that drive lists, routing, nurture and reports."),
    SettingsPage("routing", "Routing and teams", "/settings/routing",
                 frozenset({Role.ADMIN, Role.SALES_MANAGER, Role.MARKETING}),
                 "Who gets which MQL, each team's hours, response time and daily capacity, and the queues."),
    SettingsPage("predictive", "Predictive model", "/settings/predictive", frozenset({Role.ADMIN, Role.MARKETING}),
                 "The model card of each trained model, and which one scores the leads."),
    SettingsPage("users", "Users and tokens", "/settings/users", _ADMIN,
                 "People, their roles and teams; API tokens."),
    SettingsPage("webhooks", "Webhooks", "/settings/webhooks", _ADMIN,
                 "Events sent to other systems, and each delivery."),
    SettingsPage("audit", "Audit log", "/settings/audit", _ADMIN,
                 "Who did what, when and from where: logins, users and roles, tokens, model activations, "
                 "routing, merges, forgets, exports and settings. Append-only."),
)  # fmt: skip
BY_KEY = {p.key: p for p in PAGES}
SETTINGS_ROLES = (Role.MARKETING, Role.SALES_MANAGER)  # and administrators: the menu's "Settings"
ROUTING_EDITORS = (Role.SALES_MANAGER,)  # and administrators (services/routing.set_routing)


def pages_for(user: WebUser) -> list[SettingsPage]:
    return [p for p in PAGES if user.role in p.roles or user.role is Role.ADMIN]


def open_page(user: WebUser, key: str) -> dict[str, Any]:
    """Refuse a settings page to roles that may not use it; the context every settings page shares."""
    page = BY_KEY[key]
    require(user, *page.roles, what=f"use the {page.label.lower()} settings")
    return {"settings_pages": pages_for(user), "current": key, "page": page}


LINE = re.compile(r"\bline (\d+)")


def problem(exc: Exception, source: str | None = None, title: str = "Not saved.") -> dict[str, Any]:
    """An error to show beside a form: the message, and the lines around the one it names (YAML), or the
    filter with a caret under the position (segment filters)."""
    found: dict[str, Any] = {"message": str(exc), "field": getattr(exc, "field", None), "title": title}
    if isinstance(exc, FilterSyntaxError) and source is not None:
        found["caret"] = (source, " " * max(0, exc.position - 1) + "^")
    match = LINE.search(str(exc))
    if match and source is not None:
        lines = source.splitlines()
        n = int(match.group(1))
        found["line"] = n
        found["excerpt"] = [(i, lines[i - 1]) for i in range(max(1, n - 2), min(len(lines), n + 2) + 1)]
    return found


@router.get("/settings")
def settings_index(request: Request, user: Viewer) -> HTMLResponse:
    """The settings this role may use."""
    require(user, *SETTINGS_ROLES, what="change settings")
    return render(request, "settings_index.html", {"settings_pages": pages_for(user)}, user=user)


# ---- segments ------------------------------------------------------------------------------------------


def _segments_page(request: Request, user: WebUser, *, status: int = 200, **extra: Any) -> HTMLResponse:
    context = open_page(user, "segments")
    with container(request).uow() as uow:
        context["segments"] = uow.segments.all()
    context.update(extra)
    return render(request, "settings_segments.html", context, user=user, status=status)


@router.get("/settings/segments")
def segments_page(request: Request, user: Viewer) -> HTMLResponse:
    return _segments_page(request, user)


@router.get("/settings/segments/count")
def segment_count(
    request: Request, user: Viewer, name: Annotated[str, Query(max_length=200)]
) -> HTMLResponse:
    """How many leads a segment holds now: each count is its own request, so the list shows at once."""
    open_page(user, "segments")
    c = container(request)
    with c.uow() as uow:
        count = segment_service.count_segment(uow, name, as_of=c.clock.now())
    return HTMLResponse(f'<td class="num" data-testid="count">{count:,}</td>')


@router.post("/settings/segments")
def create_segment(
    request: Request,
    user: Viewer,
    name: Annotated[str, Form(max_length=200)] = "",
    filter_text: Annotated[str, Form(alias="filter", max_length=2000)] = "",
    description: Annotated[str, Form(max_length=2000)] = "",
) -> HTMLResponse:
    """Save a segment; an invalid filter is refused with its position, and nothing is stored."""
    open_page(user, "segments")
    segment_service.require_editor(user.actor)
    c = container(request)
    values = {"name": name, "filter": filter_text, "description": description}
    try:
        with c.uow(write=True) as uow:
            made = segment_service.create_segment(
                uow, name, filter_text, actor_name=user.actor.name, at=c.clock.now(), description=description
            )
            uow.commit()
    except (ValidationError, AlreadyExists) as exc:
        return _segments_page(request, user, status=422, values=values, error=problem(exc, filter_text))
    return _segments_page(request, user, notice=f"Segment {made['name']} saved.", created=made["name"])


@router.post("/settings/segments/delete")
def delete_segment(
    request: Request, user: Viewer, name: Annotated[str, Form(max_length=200)]
) -> HTMLResponse:
    """Delete a segment (its leads are untouched)."""
    open_page(user, "segments")
    segment_service.require_editor(user.actor, "delete")
    c = container(request)
    with c.uow(write=True) as uow:
        segment_service.delete_segment(uow, name)
        uow.commit()
    return _segments_page(request, user, notice=f"Segment {name} deleted.")


# ---- routing and teams ---------------------------------------------------------------------------------


def _routing_page(request: Request, user: WebUser, *, status: int = 200, **extra: Any) -> HTMLResponse:
    context = open_page(user, "routing")
    c = container(request)
    with c.uow() as uow:
        stored = uow.routing.active()
        if stored is not None:
            context["routing"] = routing_service.show_routing(uow)
            context["teams"] = routing_service.team_overview(uow, at=c.clock.now())
            context["source"] = stored.source
        context["unassigned"] = uow.routing.queue_counts().get(None, 0)
    context["can_edit"] = user.is_(*ROUTING_EDITORS)
    context.update(extra)
    return render(request, "settings_routing.html", context, user=user, status=status)


@router.get("/settings/routing")
def routing_page(request: Request, user: Viewer) -> HTMLResponse:
    return _routing_page(request, user)


@router.post("/settings/routing")
def set_routing(
    request: Request, user: Viewer, source: Annotated[str, Form(max_length=200_000)] = ""
) -> HTMLResponse:
    """Validate the routing document and make it the active version, then route the waiting MQLs by it."""
    open_page(user, "routing")
    require(user, *ROUTING_EDITORS, what="change routing")
    c = container(request)
    try:
        with c.uow(write=True) as uow:
            stored = routing_service.set_routing(
                uow, source, source="routing document", load=c.scoring_loader(), actor=user.actor,
                at=c.clock.now(),
            )  # fmt: skip
            uow.commit()
    except ValidationError as exc:
        return _routing_page(request, user, status=422, source=source, error=problem(exc, source))
    with c.uow(write=True) as uow:
        routed = routing_service.route_pending(uow, at=c.clock.now())
        uow.commit()
    notice = (
        f"Routing version {stored.version} is active. {routed.routed} MQLs assigned, {routed.queued} waiting "
        f"in team queues, {routed.unassigned} in the unassigned queue."
    )
    return _routing_page(request, user, notice=notice)


# ---- users and tokens ----------------------------------------------------------------------------------


def _users_page(request: Request, user: WebUser, *, status: int = 200, **extra: Any) -> HTMLResponse:
    context = open_page(user, "users")
    with container(request).uow() as uow:
        context["people"] = uow.users.all()
        context["tokens"] = [access.token_document(t) for t in uow.access.tokens()]
    context["roles"] = users.ASSIGNABLE_ROLES
    context.update(extra)
    return render(request, "settings_users.html", context, user=user, status=status)


@router.get("/settings/users")
def users_page(request: Request, user: Viewer) -> HTMLResponse:
    return _users_page(request, user)


@router.post("/settings/users")
def add_user(
    request: Request,
    user: Viewer,
    username: Annotated[str, Form(max_length=120)] = "",
    role: Annotated[str, Form(max_length=40)] = "",
    team: Annotated[str, Form(max_length=120)] = "",
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse:
    """Add a user with a role, optionally a team, an e-mail address and a password (to log in here)."""
    open_page(user, "users")
    c = container(request)
    values = {"username": username, "role": role, "team": team, "email": email}
    try:
        if password and len(password) < 8:
            raise ValidationError("password: at least 8 characters", field="password")
        with c.uow(write=True) as uow:
            users.add_user(
                uow,
                username=username.strip(),
                role=role,
                team=team.strip() or None,
                password_hash=hash_password(password) if password else None,
                at=c.clock.now(),
                email=email.strip() or None,
                actor=user.actor,
            )
            uow.commit()
    except (ValidationError, AlreadyExists) as exc:
        return _users_page(request, user, status=422, values=values, error=problem(exc))
    return _users_page(request, user, notice=f"User {username.strip()} added ({role.replace('_', ' ')}).")


@router.post("/settings/users/deactivate")
def deactivate_user(
    request: Request, user: Viewer, username: Annotated[str, Form(max_length=120)]
) -> HTMLResponse:
    """Deactivate a user: history kept, login and tokens blocked, their open leads and tasks handed on."""
    open_page(user, "users")
    if username == user.actor.name:
        raise ValidationError("you cannot deactivate yourself", field="username")
    c = container(request)
    with c.uow(write=True) as uow:
        report = offboarding.deactivate_user(uow, username, actor=user.actor, at=c.clock.now())
        uow.commit()
    forget_tokens(request)
    notice = (
        f"{report.user} deactivated: {report.rerouted} MQLs routed again, {report.to_manager} leads to "
        f"{report.manager or 'their manager'}, {report.unassigned} waiting unassigned, "
        f"{report.tasks_moved} tasks moved."
    )
    return _users_page(request, user, notice=notice)


@router.post("/settings/tokens")
def create_token(
    request: Request,
    user: Viewer,
    token_user: Annotated[str, Form(alias="user", max_length=120)] = "",
    scope: Annotated[str, Form(max_length=10)] = "read",
    name: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse:
    """A new API token, shown once on the page that answers (only its hash is kept)."""
    open_page(user, "users")
    c = container(request)
    try:
        with c.uow(write=True) as uow:
            record, token = access.create_token(
                uow, token_user, scope=scope, actor=user.actor, at=c.clock.now(), name=name.strip() or None
            )
            uow.commit()
    except (ValidationError, NotFound) as exc:
        return _users_page(request, user, status=422, token_error=problem(exc))
    return _users_page(request, user, new_token={"token": token, **access.token_document(record)})


@router.post("/settings/tokens/{token_id}/revoke")
def revoke_token(
    request: Request, user: Viewer, token_id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> HTMLResponse:
    open_page(user, "users")
    c = container(request)
    with c.uow(write=True) as uow:
        record = access.revoke_token(uow, token_id, actor=user.actor, at=c.clock.now())
        uow.commit()
    forget_tokens(request)
    return _users_page(request, user, notice=f"Token {record.prefix}… of {record.username} revoked.")


# ---- webhooks ------------------------------------------------------------------------------------------


def _webhooks_page(request: Request, user: WebUser, *, status: int = 200, **extra: Any) -> HTMLResponse:
    context = open_page(user, "webhooks")
    with container(request).uow() as uow:
        context["subscriptions"] = uow.webhooks.subscriptions(active_only=False)
    context["events"] = EVENT_TYPES
    context.update(extra)
    return render(request, "settings_webhooks.html", context, user=user, status=status)


@router.get("/settings/webhooks")
def webhooks_page(request: Request, user: Viewer) -> HTMLResponse:
    return _webhooks_page(request, user)


@router.post("/settings/webhooks")
def add_webhook(
    request: Request,
    user: Viewer,
    events: Annotated[list[str], Form(default_factory=list)],
    url: Annotated[str, Form(max_length=2000)] = "",
) -> HTMLResponse:
    """Subscribe an endpoint to events; the signing secret is shown once."""
    open_page(user, "webhooks")
    c = container(request)
    try:
        with c.uow(write=True) as uow:
            sub, secret = webhooks.add_subscription(
                uow, url.strip(), events, actor=user.actor, at=c.clock.now()
            )
            uow.commit()
    except ValidationError as exc:
        values = {"url": url, "events": events}
        return _webhooks_page(request, user, status=422, values=values, error=problem(exc))
    return _webhooks_page(request, user, new_secret={"id": sub.id, "url": sub.url, "secret": secret})


@router.post("/settings/webhooks/{subscription_id}/remove")
def remove_webhook(
    request: Request, user: Viewer, subscription_id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> HTMLResponse:
    open_page(user, "webhooks")
    c = container(request)
    with c.uow(write=True) as uow:
        webhooks.remove_subscription(uow, subscription_id, actor=user.actor, at=c.clock.now())
        uow.commit()
    return _webhooks_page(request, user, notice=f"Webhook {subscription_id} stopped; its delivery log stays.")


@router.get("/settings/webhooks/{subscription_id}")
def webhook_log(
    request: Request, user: Viewer, subscription_id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> HTMLResponse:
    """A subscription's deliveries, latest first: status, attempts, the last answer or error."""
    context = open_page(user, "webhooks")
    with container(request).uow() as uow:
        sub = next(
            (s for s in uow.webhooks.subscriptions(active_only=False) if s.id == subscription_id), None
        )
        if sub is None:
            raise NotFound(f"no webhook {subscription_id}")
        context["deliveries"] = uow.webhooks.log(subscription_id, 200)
    context["subscription"] = sub
    return render(request, "settings_webhook_log.html", context, user=user)


# ---- audit log -----------------------------------------------------------------------------------------

AUDIT_PAGE_ROWS = 200


@router.get("/settings/audit")
def audit_page(
    request: Request,
    user: Viewer,
    actor: Annotated[str, Query(max_length=120)] = "",
    action: Annotated[str, Query(max_length=60)] = "",
    since: Annotated[str, Query(max_length=10)] = "",
    limit: Annotated[int, Query(ge=1, le=10_000)] = AUDIT_PAGE_ROWS,
) -> HTMLResponse:
    """The audit log, latest first, filtered by who, what and since when (``audit list`` in a page)."""
    context = open_page(user, "audit")
    values = {"actor": actor.strip(), "action": action.strip(), "since": since.strip()}
    context["values"] = values
    try:
        start = _since(values["since"])
    except ValidationError as exc:
        context.update(error=problem(exc, title="Not shown."), entries=[], limit=limit)
        return render(request, "settings_audit.html", context, user=user, status=422)
    with container(request).uow() as uow:
        found = audit.entries(uow, actor=user.actor, who=values["actor"] or None,
                              action=values["action"] or None, since=start, limit=limit + 1)  # fmt: skip
    context.update(entries=found[:limit], more=len(found) > limit, limit=limit,
                   next_limit=min(limit + AUDIT_PAGE_ROWS, 10_000))  # fmt: skip
    return render(request, "settings_audit.html", context, user=user)


def _since(text: str) -> datetime | None:
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"since: a date as YYYY-MM-DD, got {text!r}", field="since") from None
    return datetime.combine(day, time(0), tzinfo=UTC)
