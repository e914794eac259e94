"""Web login (DESIGN.md: ``/login``, a form with ``username`` and ``password`` and a submit button).

Passwords are checked with argon2id; a session is a random id (stored as its SHA-256 digest) sent as a
cookie signed with the server's key (HMAC-SHA256; a forged or altered cookie is refused before any
database lookup), ``HttpOnly`` and ``SameSite=Lax`` (``Secure`` with ``LEADSTAGE_SECURE_COOKIES``); its
CSRF token, required on every change, is a signature of the session id. The login form itself is
protected by a signed double-submit token (a cookie and a hidden field that must match) and a per-address
rate limit. Cookies signed with a key that ``leadstage secrets rotate`` retired are signed again with the
new key on their next request (ADR 15).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Annotated

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from leadstage.adapters.security import hash_password, verify_password
from leadstage.api.security import RateLimiter, Reader, container
from leadstage.domain.errors import PermissionDenied, Unauthenticated
from leadstage.services import access, audit
from leadstage.web.base import render

router = APIRouter(include_in_schema=False)
LOGIN_CSRF = "ls_login_csrf"


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A real argon2 hash of nothing anyone uses: unknown users cost the same check as known ones."""
    return hash_password(secrets.token_urlsafe(16))


def _safe_next(target: str | None) -> str:
    """Only local paths: never an open redirect to another site."""
    if target and target.startswith("/") and not target.startswith("//") and "\\\\" not in target:
        return target
    return "/"


def _form(request: Request, message: str = "", status: int = 200, next_path: str = "/") -> HTMLResponse:
    token = container(request).session_keys().sign(access.LOGIN_CSRF, secrets.token_urlsafe(24))
    context = {"error": message, "login_csrf": token, "next": next_path}
    response = render(request, "login.html", context, status=status)
    response.set_cookie(
        LOGIN_CSRF,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/login",
        max_age=3600,
    )
    return response


def _secure(request: Request) -> bool:
    return bool(container(request).settings.secure_cookies or request.url.scheme == "https")


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return _form(request, next_path=_safe_next(next))


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=120)],
    password: Annotated[str, Form(max_length=200)],
    csrf: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    limiter: RateLimiter = request.app.state.rate_limiters["login"]
    address = f"login:{request.client.host if request.client else 'unknown'}"
    if limiter.exceeded(address):  # only failed attempts count: guesses are limited, people are not
        refused = _form(request, "Too many failed logins from this address; try again in a minute.", 429,
                        _safe_next(next))  # fmt: skip
        refused.headers["Retry-After"] = "60"
        return refused
    c = container(request)
    now = c.clock.now()
    keys = c.session_keys()
    expected = request.cookies.get(LOGIN_CSRF, "")
    if (
        not expected
        or not hmac.compare_digest(expected, csrf)
        or keys.open(access.LOGIN_CSRF, expected, now=now) is None
    ):
        return _form(request, "The form expired; please try again.", 403, _safe_next(next))
    try:
        with c.uow(write=True) as uow:
            cookie, _csrf, _actor = access.login(
                uow,
                username,
                password,
                keys=keys,
                verify=verify_password,
                dummy_hash=_dummy_hash(),
                at=now,
                hours=c.settings.session_hours,
                client=request.client.host if request.client else None,
            )
            uow.commit()
    except Unauthenticated:
        limiter.allow(address)
        with c.uow(write=True) as uow:
            audit.record(uow, username[:120] or "-", "login.failed", at=now)
            uow.commit()
        return _form(request, "Wrong user name or password.", 401, _safe_next(next))
    response = RedirectResponse(_safe_next(next), status_code=303)
    _set_session_cookie(request, response, cookie)
    response.delete_cookie(LOGIN_CSRF, path="/login")
    return response


def _set_session_cookie(request: Request, response: Response, cookie: str) -> None:
    response.set_cookie(
        access.SESSION_COOKIE,
        cookie,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
        max_age=int(container(request).settings.session_hours * 3600),
    )


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    cookie = request.cookies.get(access.SESSION_COOKIE, "")
    c = container(request)
    keys, now = c.session_keys(), c.clock.now()
    with c.uow(write=True) as uow:
        try:
            access.session_actor(uow, cookie, keys=keys, now=now)
        except Unauthenticated:
            return RedirectResponse("/login", status_code=303)
        if not access.csrf_ok(keys, cookie, csrf or request.headers.get("x-csrf-token", ""), now=now):
            raise PermissionDenied("missing or wrong CSRF token")
        access.logout(uow, cookie, keys=keys, now=now)
        uow.commit()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(access.SESSION_COOKIE, path="/")
    return response


@router.get("/api/v1/session", include_in_schema=False)
def current_session(request: Request, who: Reader) -> JSONResponse:
    """Who the web page is logged in as, and the CSRF token its changes carry."""
    cookie = request.cookies.get(access.SESSION_COOKIE, "")
    c = container(request)
    with c.uow() as uow:
        check = access.session_actor(uow, cookie, keys=c.session_keys(), now=c.clock.now())
    a = who.actor
    return JSONResponse({"username": a.name, "role": a.role.value, "team": a.team, "csrf": check.csrf})


def install(app: FastAPI) -> None:
    """Send back a session cookie signed again with the current key when the request's one was signed
    with a key that was rotated out (set by :func:`leadstage.api.security.principal`)."""

    @app.middleware("http")
    async def resign_session_cookie(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        renewed = getattr(request.state, "renewed_session_cookie", None)
        if renewed:
            _set_session_cookie(request, response, renewed)
        return response
