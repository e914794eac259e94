"""Errors on web pages: an HTML page (or, for htmx, a message in the page's message area) instead of the
API's problem documents, with the statuses of ``api/problems.py``'s table and headings for people. One
status differs on purpose: a stale version is 412 in the API (its If-Match precondition failed) and 409
on a page (a form carries no If-Match: someone else changed the lead first). The API's table cannot be
imported here (the API sits above the web layer), so the two tables are kept side by side.

Paths under ``/api/`` and ``/metrics`` keep their problem documents: the handlers installed here hand
those requests to the API's handlers.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from leadstage.domain.errors import (
    AlreadyExists,
    ConcurrencyConflict,
    DomainError,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    PolicyNotMet,
    RuleViolation,
    Unauthenticated,
    ValidationError,
)
from leadstage.web.base import LoginRequired, optional_user, render

#: The same statuses as the API's problem documents, with a heading for people.
STATUS_FOR: tuple[tuple[type[BaseException], int, str], ...] = (
    (Unauthenticated, 401, "Please log in"),
    (PermissionDenied, 403, "Not allowed"),
    (NotFound, 404, "Not found"),
    (InvalidTransition, 409, "Not possible from here"),
    (PolicyNotMet, 409, "Qualification not complete"),
    (ConcurrencyConflict, 409, "Someone else changed this first"),
    (AlreadyExists, 409, "Already exists"),
    (ValidationError, 422, "Please check the input"),
    (RuleViolation, 409, "Refused by a rule"),
)
TITLES = {
    400: "Bad request",
    404: "Page not found",
    405: "Not allowed",
    413: "Too large",
    429: "Too many requests",
}


def is_web(request: Request) -> bool:
    """Whether this request is for a page (HTML) rather than the API (problem documents)."""
    path = request.url.path
    return not (path.startswith("/api/") or path == "/metrics")


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def message(request: Request, status: int, title: str, detail: str, **extra: Any) -> Response:
    """An error for people: a full page, or for htmx a message swapped into the page's message area."""
    context = {"status": status, "title": title, "detail": detail, **extra}
    user = optional_user(request)
    if is_htmx(request):
        # an answer htmx swaps into the message area; 200 with the status in a header, because browsers
        # log every 4xx of a script's request as a console error, and a refusal is no error of the page
        headers = {"HX-Retarget": "#flash", "HX-Reswap": "innerHTML", "X-Error-Status": str(status)}
        return render(request, "_flash.html", {"kind": "error", **context}, user=user, headers=headers)
    return render(request, "error.html", context, user=user, status=status)


def explain(exc: BaseException) -> tuple[int, str, dict[str, Any]]:
    """Status, heading and details of a domain error (what is allowed instead, what is missing)."""
    for kind, status, title in STATUS_FOR:
        if isinstance(exc, kind):
            extra: dict[str, Any] = {}
            if isinstance(exc, InvalidTransition):
                extra["allowed"] = list(exc.allowed)
            if isinstance(exc, PolicyNotMet):
                extra["missing"] = list(exc.missing)
            field = getattr(exc, "field", None)
            if field:
                extra["field"] = field
            return status, title, extra
    return 500, "Something went wrong", {}


def install(app: FastAPI) -> None:
    """Page errors as HTML; API errors stay problem documents (call after ``api.problems.install``)."""
    api_handlers: dict[Any, Any] = {
        kind: app.exception_handlers[kind]
        for kind in (DomainError, RequestValidationError, StarletteHTTPException)
        if kind in app.exception_handlers
    }

    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        target = "/login?next=" + quote(exc.next_path, safe="/")
        if is_htmx(request):
            return Response(status_code=200, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    async def domain_error(request: Request, exc: Exception) -> Response:
        if not is_web(request):
            answer: Response = await api_handlers[DomainError](request, exc)
            return answer
        status, title, extra = explain(exc)
        return message(request, status, title, str(exc), **extra)

    async def invalid_request(request: Request, exc: Exception) -> Response:
        if not is_web(request):
            answer: Response = await api_handlers[RequestValidationError](request, exc)
            return answer
        assert isinstance(exc, RequestValidationError)
        problems = [
            f"{'.'.join(str(p) for p in err.get('loc', ()) if p not in ('body', 'query', 'path', 'form'))}: "
            f"{err.get('msg', 'invalid')}"
            for err in exc.errors()
        ]
        return message(request, 422, "Please check the input", "; ".join(problems[:5]))

    async def http_error(request: Request, exc: Exception) -> Response:
        if not is_web(request) or request.url.path in ("/login", "/logout"):
            answer: Response = await api_handlers[StarletteHTTPException](request, exc)
            return answer
        assert isinstance(exc, StarletteHTTPException)
        detail = str(exc.detail)
        if exc.status_code == 404:
            detail = f"There is no page at {request.url.path}."
        response = message(request, exc.status_code, TITLES.get(exc.status_code, "Error"), detail)
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)
