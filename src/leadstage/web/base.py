"""What every page shares: who is logged in (the session), CSRF, rendering, navigation and formats.

A page is a FastAPI route that takes :data:`Viewer` (the logged-in user, or a redirect to
``/login?next=...``), calls the same services as the API and the CLI, and renders a Jinja2 template with
:func:`render`. Changes (POST) carry the session's CSRF token: forms as the hidden field ``csrf``, htmx
requests as the ``X-CSRF-Token`` header (the page's ``<body hx-headers>`` sets it on every request).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib.resources import files
from typing import Annotated, Any
from urllib.parse import quote, unquote, urlencode

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from leadstage.bootstrap import Container
from leadstage.domain.errors import PermissionDenied, Unauthenticated
from leadstage.domain.stages import Actor, Role
from leadstage.services import access
from leadstage.services.ports import UnitOfWork

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
STATIC_DIR = str(files("leadstage.web") / "static")
#: Scripts only from this server (htmx is vendored); styles may sit in attributes (chart bars).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'"
)


class LoginRequired(Exception):
    """No (valid) session: the page answers with a redirect to the login form, back here afterwards."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


@dataclass(frozen=True)
class WebUser:
    """The logged-in user of a page: the actor the services see, and the session's CSRF token."""

    actor: Actor
    csrf: str

    @property
    def role(self) -> Role:
        return self.actor.role

    def is_(self, *roles: Role) -> bool:
        return self.actor.role in roles or self.actor.role is Role.ADMIN


def container(request: Request) -> Container:
    found: Container = request.app.state.container
    return found


def forget_tokens(request: Request) -> None:
    """After a token is revoked or a user deactivated through this server, whether by the API or a page: no
    API token is trusted from the server's token cache any more (``api.security.TokenCache``)."""
    request.app.state.tokens.clear()


async def current_user(request: Request) -> WebUser:
    """The session's user; changes must carry its CSRF token (form field ``csrf`` or ``X-CSRF-Token``)."""
    c = container(request)
    cookie = request.cookies.get(access.SESSION_COOKIE, "")
    keys, now = c.session_keys(), c.clock.now()
    try:
        with c.uow() as uow:
            check = access.session_actor(uow, cookie, keys=keys, now=now)
    except Unauthenticated:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method not in SAFE_METHODS:  # a change after the session ended: back to where it was
            path = request.headers.get("hx-current-url", "") or request.headers.get("referer", "") or "/"
            path = _local(path)
        raise LoginRequired(path) from None
    if request.method not in SAFE_METHODS:
        given = request.headers.get("x-csrf-token", "")
        if not given and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            form = await request.form()
            value = form.get("csrf")
            given = value if isinstance(value, str) else ""
        if not access.csrf_ok(keys, cookie, given, now=now):  # a token of a retired key still counts
            raise PermissionDenied(
                "this form has expired or did not come from this workspace: reload the page"
            )
    if check.renewed_cookie:  # signed with a retired key: the response carries it re-signed (ADR 15)
        request.state.renewed_session_cookie = check.renewed_cookie
    user = WebUser(actor=check.actor, csrf=check.csrf)
    request.state.web_user = user
    return user


def optional_user(request: Request) -> WebUser | None:
    """The page's user when there is a valid session (for pages that show without one, e.g. errors)."""
    found = getattr(request.state, "web_user", None)
    if isinstance(found, WebUser):
        return found
    cookie = request.cookies.get(access.SESSION_COOKIE, "")
    if not cookie:
        return None
    c = container(request)
    try:
        with c.uow() as uow:
            check = access.session_actor(uow, cookie, keys=c.session_keys(), now=c.clock.now())
    except Unauthenticated:
        return None
    return WebUser(actor=check.actor, csrf=check.csrf)


def _local(url: str) -> str:
    """The path and query of a URL from a header (never another site's)."""
    if "://" in url:
        rest = url.split("://", 1)[1]
        url = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    return local_path(url, "/")


def local_path(url: str, default: str) -> str:
    """``url`` when it is a path of this site, else ``default``: never a redirect to another site (browsers
    read ``//host`` and ``/\\host`` as another host)."""
    if url.startswith("/") and not url.startswith(("//", "/\\")) and "\n" not in url and "\r" not in url:
        return url
    return default


Viewer = Annotated[WebUser, Depends(current_user)]


def require(user: WebUser, *roles: Role, what: str) -> None:
    """Refuse a page or an action to roles outside ``roles`` (administrators may do everything)."""
    if not user.is_(*roles):
        raise PermissionDenied(f"role {user.role.value} may not {what}")


def read_uow(request: Request) -> Iterator[UnitOfWork]:
    """A read-only unit of work for a page."""
    with container(request).uow() as uow:
        yield uow


# ---- navigation ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NavItem:
    href: str
    label: str
    roles: frozenset[Role]


_EVERYONE = frozenset({Role.ADMIN, Role.MARKETING, Role.SALES_REP, Role.SALES_MANAGER, Role.VIEWER})
_SALES = frozenset({Role.ADMIN, Role.SALES_REP, Role.SALES_MANAGER})
NAVIGATION: tuple[NavItem, ...] = (
    NavItem("/queue", "Work queue", _SALES),
    NavItem("/leads", "Leads", _EVERYONE),
    NavItem("/pipeline", "Pipeline", _EVERYONE),
    NavItem(
        "/dashboard", "Dashboard", frozenset({Role.ADMIN, Role.MARKETING, Role.SALES_MANAGER, Role.VIEWER})
    ),
    NavItem("/settings", "Settings", frozenset({Role.ADMIN, Role.MARKETING, Role.SALES_MANAGER})),
)


def page_paths(request: Request) -> frozenset[str]:
    """The paths of the workspace's pages (set by ``install``): the menu shows only pages that exist."""
    found: frozenset[str] = getattr(request.app.state, "web_page_paths", frozenset())
    return found


def navigation(role: Role, available: frozenset[str] | None = None) -> list[NavItem]:
    """The pages this role works with, in menu order (of those in ``available``, when given)."""
    return [
        item for item in NAVIGATION if role in item.roles and (available is None or item.href in available)
    ]


def home_for(role: Role, available: frozenset[str] | None = None) -> str:
    """Where a role starts: sales in its work queue, marketing on its dashboard, others in the leads."""
    wanted = "/leads"
    if role in (Role.SALES_REP, Role.SALES_MANAGER):
        wanted = "/queue"
    elif role is Role.MARKETING:
        wanted = "/dashboard"
    return wanted if available is None or wanted in available else "/leads"


# ---- formats ---------------------------------------------------------------------------------------------

ROLE_LABELS = {
    "admin": "Administrator",
    "marketing": "Marketing",
    "sales_rep": "Sales rep",
    "sales_manager": "Sales manager",
    "viewer": "Viewer",
    "system": "System",
}


STAGE_LABELS = {
    "lead": "Lead",
    "mql": "MQL",
    "sql": "SQL",
    "opportunity": "Opportunity",
    "customer": "Customer",
    "evangelist": "Evangelist",
}


def _as_datetime(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def humanize(value: Any) -> str:
    """``not_decision_maker`` as "not decision maker"."""
    return "" if value is None else str(value).replace("_", " ")


def number(value: Any, digits: int = 0) -> str:
    if value is None or value == "":
        return "–"
    try:
        amount = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{amount:,.{digits}f}"


def percent(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{float(value) * 100:.{digits}f}%"


def duration(seconds: float) -> str:
    """A time span in words: "3 h 20 min", "2 d 4 h", "45 min"."""
    minutes = int(abs(seconds) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins} min"
    return f"{mins} min"


def query_with(params: dict[str, Any], **changes: Any) -> str:
    """The query string of ``params`` with some keys changed (``None`` removes one)."""
    merged = {**params, **changes}
    return urlencode([(k, v) for k, v in merged.items() if v not in (None, "", [])], doseq=True)


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("leadstage.web", "templates"),
        autoescape=select_autoescape(("html", "svg")),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        humanize=humanize,
        number=number,
        percent=percent,
        duration=duration,
        urlquote=lambda value: quote(str(value), safe=""),
        role_label=lambda value: ROLE_LABELS.get(str(value), str(value)),
        stage_label=lambda value: STAGE_LABELS.get(str(value), str(value)),
    )
    env.globals.update(query_with=query_with)
    return env


ENV = _env()


NOTICE_COOKIE = "ls_notice"


def done(request: Request, url: str, notice: str | None = None) -> Response:
    """After a change: back to a page (a redirect, or for htmx a full navigation), with a notice shown once."""
    if request.headers.get("hx-request") == "true":
        response: Response = Response(status_code=200, headers={"HX-Redirect": url})
    else:
        response = RedirectResponse(url, status_code=303)
    if notice:
        response.set_cookie(
            NOTICE_COOKIE, quote(notice[:500]), max_age=60, path="/", samesite="lax", httponly=True
        )
    return response


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    user: WebUser | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """A page (or, for htmx, a fragment) rendered with the shared context: user, menu, times, CSRF."""
    c = container(request)
    zone = c.settings.tz
    now = c.clock.now()

    def when(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
        moment = _as_datetime(value)
        if moment is None:
            return "–"
        if moment.tzinfo is not None:
            moment = moment.astimezone(zone)
        return moment.strftime(fmt)

    def day(value: Any) -> str:
        return when(value, "%Y-%m-%d")

    def ago(value: Any) -> str:
        moment = _as_datetime(value)
        if moment is None or moment.tzinfo is None:
            return "–"
        delta: timedelta = now - moment
        words = duration(delta.total_seconds())
        return f"{words} ago" if delta.total_seconds() >= 0 else f"in {words}"

    ctx: dict[str, Any] = {
        "request": request,
        "user": user,
        "csrf": user.csrf if user else "",
        "nav": navigation(user.role, page_paths(request)) if user else [],
        "path": request.url.path,
        "now": now,
        "zone": c.settings.default_timezone,
        "when": when,
        "day": day,
        "ago": ago,
        "htmx": request.headers.get("hx-request") == "true",
    }
    ctx.update(context or {})
    pending = request.cookies.get(NOTICE_COOKIE)
    if pending and not ctx.get("notice"):
        ctx["notice"] = unquote(pending)[:500]
    html = ENV.get_template(template).render(ctx)
    response = HTMLResponse(html, status_code=status, headers=headers)
    if pending:
        response.delete_cookie(NOTICE_COOKIE, path="/")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response
