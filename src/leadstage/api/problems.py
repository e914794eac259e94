"""Errors as RFC 9457 problem details (``application/problem+json``), from one table of exception types."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
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

PROBLEM = "application/problem+json"

#: Domain errors to HTTP statuses, most specific first.
STATUS_FOR: tuple[tuple[type[BaseException], int, str], ...] = (
    (Unauthenticated, 401, "Unauthenticated"),
    (PermissionDenied, 403, "Forbidden"),
    (NotFound, 404, "Not found"),
    (InvalidTransition, 409, "Transition not allowed"),
    (PolicyNotMet, 409, "Qualification policy not met"),
    (ConcurrencyConflict, 412, "Precondition failed"),
    (AlreadyExists, 409, "Already exists"),
    (ValidationError, 422, "Invalid input"),
    (RuleViolation, 409, "Refused by a rule"),
)


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def for_exception(exc: BaseException) -> JSONResponse:
    for kind, status, title in STATUS_FOR:
        if isinstance(exc, kind):
            extra: dict[str, Any] = {}
            field = getattr(exc, "field", None)
            if status == 422 and field:
                extra["errors"] = [{"field": field, "message": str(exc)}]
            if isinstance(exc, InvalidTransition):
                extra["allowed_actions"] = list(exc.allowed)
            if isinstance(exc, PolicyNotMet):
                extra["missing"] = list(exc.missing)
            return problem(status, title, str(exc), **extra)
    return problem(500, "Internal error", "the server could not complete the request")


def install(app: FastAPI) -> None:
    """Every error the API returns is a problem document."""

    async def domain_error(_request: Request, exc: Exception) -> JSONResponse:
        return for_exception(exc)

    async def request_invalid(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body",
                "message": str(err.get("msg", "invalid")),
            }
            for err in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem(422, "Invalid input", detail, errors=errors)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        response = problem(exc.status_code, _title(exc.status_code), str(exc.detail))
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        if exc.status_code == 405:  # every method of every route at this path, not only the first route's
            response.headers["Allow"] = ", ".join(_allowed(request))
        return response

    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(RequestValidationError, request_invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)


def _allowed(request: Request) -> list[str]:
    """The methods of the most literal path that matches (``/leads/batch`` rather than ``/leads/{ref}``)."""
    by_template: dict[str, set[str]] = {}
    for route in iter_route_contexts(request.app.router.routes):
        if isinstance(route.original_route, APIRoute) and route.path_regex.match(request.url.path):
            by_template.setdefault(route.path or "", set()).update(route.methods or ())
    if not by_template:
        return []
    best = min(by_template, key=lambda path: path.count("{"))
    return sorted(by_template[best])


def _title(status: int) -> str:
    return {
        400: "Bad request",
        401: "Unauthenticated",
        403: "Forbidden",
        404: "Not found",
        405: "Method not allowed",
        406: "Not acceptable",
        409: "Conflict",
        412: "Precondition failed",
        413: "Request body too large",
        415: "Unsupported media type",
        422: "Invalid input",
        428: "Precondition required",
        429: "Too many requests",
    }.get(status, "Error")
