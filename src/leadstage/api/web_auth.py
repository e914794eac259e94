"""Web login (DESIGN.md: ``/login``, a form with ``username`` and ``password`` and a submit button).

Passwords are checked with argon2id; a session is a random cookie (stored as its SHA-256 digest),
``HttpOnly`` and ``SameSite=Lax`` (``Secure`` with ``LEADSTAGE_SECURE_COOKIES``), with its own CSRF token
for every change. The login form itself is protected by a double-submit token (a cookie and a hidden
field that must match) and a per-address rate limit.
"""

from __future__ import annotations

import hmac
import secrets
from functools import lru_cache
from html import escape
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from leadstage.adapters.security import hash_password, verify_password
from leadstage.api.security import Reader, container, rate_limited
from leadstage.domain.errors import PermissionDenied, Unauthenticated
from leadstage.services import access, audit

router = APIRouter(include_in_schema=False)
LOGIN_CSRF = "ls_login_csrf"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>leadstage: log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:22rem;margin:6rem auto;padding:0 1rem;color:#1b1f24}}
label{{display:block;margin:.8rem 0 .2rem}}input{{width:100%;padding:.45rem;box-sizing:border-box}}
button{{margin-top:1.2rem;padding:.5rem 1.2rem}}.error{{color:#b42318}}</style></head>
<body><h1>leadstage</h1>{message}
<form method="post" action="/login">
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="next" value="{next}">
<label for="username">User name</label><input id="username" name="username" autocomplete="username" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Log in</button></form></body></html>"""


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
    token = secrets.token_urlsafe(24)
    html = PAGE.format(message=message, csrf=token, next=escape(next_path, quote=True))
    response = HTMLResponse(html, status_code=status)
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
    rate_limited(request, "login")
    expected = request.cookies.get(LOGIN_CSRF, "")
    if not expected or not hmac.compare_digest(expected, csrf):
        return _form(
            request, '<p class="error">The form expired; please try again.</p>', 403, _safe_next(next)
        )
    c = container(request)
    now = c.clock.now()
    try:
        with c.uow(write=True) as uow:
            cookie, _csrf, _actor = access.login(
                uow,
                username,
                password,
                verify=verify_password,
                dummy_hash=_dummy_hash(),
                at=now,
                hours=c.settings.session_hours,
                client=request.client.host if request.client else None,
            )
            uow.commit()
    except Unauthenticated:
        with c.uow(write=True) as uow:
            audit.record(uow, username[:120] or "-", "login.failed", at=now)
            uow.commit()
        return _form(request, '<p class="error">Wrong user name or password.</p>', 401, _safe_next(next))
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        access.SESSION_COOKIE,
        cookie,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
        max_age=int(c.settings.session_hours * 3600),
    )
    response.delete_cookie(LOGIN_CSRF, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    cookie = request.cookies.get(access.SESSION_COOKIE, "")
    c = container(request)
    with c.uow(write=True) as uow:
        try:
            _actor, expected = access.session_actor(uow, cookie, now=c.clock.now())
        except Unauthenticated:
            return RedirectResponse("/login", status_code=303)
        if not hmac.compare_digest(expected, csrf or request.headers.get("x-csrf-token", "")):
            raise PermissionDenied("missing or wrong CSRF token")
        access.logout(uow, cookie)
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
        _actor, csrf = access.session_actor(uow, cookie, now=c.clock.now())
    a = who.actor
    return JSONResponse({"username": a.name, "role": a.role.value, "team": a.team, "csrf": csrf})
