"""Who is calling: bearer tokens (``Authorization: Bearer lst_...``), the request's unit of work, body
size limits and rate limits for the public endpoints."""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from threading import Lock
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError

from leadstage.bootstrap import Container
from leadstage.domain.errors import PermissionDenied, Unauthenticated
from leadstage.domain.stages import Actor, Role
from leadstage.services import access
from leadstage.services.ports import UnitOfWork

bearer = HTTPBearer(auto_error=False, description="An API token from `leadstage tokens create USER`.")
#: How often a token's last-used time is written (not on every request).
TOUCH_EVERY = timedelta(minutes=5)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def container(request: Request) -> Container:
    found: Container = request.app.state.container
    return found


def unit_of_work(request: Request) -> Iterator[UnitOfWork]:
    """The request's transaction: endpoints commit what they change; anything else is rolled back."""
    with container(request).uow(write=request.method not in SAFE_METHODS) as uow:
        yield uow


Uow = Annotated[UnitOfWork, Depends(unit_of_work)]


@dataclass(frozen=True)
class Principal:
    actor: Actor
    scope: str
    token_id: int | None = None

    @property
    def may_write(self) -> bool:
        return self.scope == "write"


def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller: a bearer token, else a web session (whose changes need its CSRF token in the
    ``X-CSRF-Token`` header); 401 without either. Read in its own short transaction, so that the
    request's own unit of work (or the import pipeline's) is the only one that writes."""
    c = container(request)
    cookie = request.cookies.get(access.SESSION_COOKIE)
    if credentials is None and cookie:
        with c.uow() as uow:
            actor, csrf = access.session_actor(uow, cookie, now=c.clock.now())
        if request.method not in SAFE_METHODS and not hmac.compare_digest(
            request.headers.get("x-csrf-token", ""), csrf
        ):
            raise PermissionDenied(
                "missing or wrong CSRF token (X-CSRF-Token) for a change made with a session"
            )
        return Principal(actor=actor, scope="write")
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated(
            "this endpoint needs 'Authorization: Bearer TOKEN' (see `leadstage tokens create`) or a login"
        )
    with c.uow() as uow:
        actor, scope, token_id = access.authenticate_token(uow, credentials.credentials)
        record = uow.access.get_token(token_id)
    now = c.clock.now()
    if record is not None and (record.last_used_at is None or now - record.last_used_at > TOUCH_EVERY):
        _touch(request, token_id, now)
    return Principal(actor=actor, scope=scope, token_id=token_id)


def _touch(request: Request, token_id: int, now: datetime) -> None:
    """Record when a token was last used, in its own short transaction; best effort (it only informs)."""
    try:
        with container(request).uow(write=True) as uow:
            uow.access.touch_token(token_id, at=now)
            uow.commit()
    except SQLAlchemyError:  # busy database: the next request after TOUCH_EVERY tries again
        return


def writer(who: Annotated[Principal, Depends(principal)]) -> Principal:
    """A caller whose token may change things (scope ``write``); 403 for a read token."""
    if not who.may_write:
        raise PermissionDenied("this token is read-only (scope read); changing data needs a write token")
    if who.actor.role is Role.VIEWER:
        raise PermissionDenied("role viewer is read-only")
    return who


Reader = Annotated[Principal, Depends(principal)]
Writer = Annotated[Principal, Depends(writer)]


class RateLimiter:
    """A fixed window per key (client address and endpoint): at most ``limit`` requests per ``window`` s."""

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit, self.window = limit, window
        self._hits: dict[str, tuple[float, int]] = {}
        self._lock = Lock()

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            start, count = self._hits.get(key, (now, 0))
            if now - start >= self.window:
                start, count = now, 0
            if count >= self.limit:
                return False
            self._hits[key] = (start, count + 1)
            if len(self._hits) > 100_000:  # forget old windows rather than grow without bound
                self._hits = {k: v for k, v in self._hits.items() if now - v[0] < self.window}
            return True


def rate_limited(request: Request, bucket: str) -> None:
    limiter: RateLimiter = request.app.state.rate_limiters[bucket]
    client = request.client.host if request.client else "unknown"
    if not limiter.allow(f"{bucket}:{client}"):
        raise HTTPException(
            429, "too many requests from this address; try again in a minute", {"Retry-After": "60"}
        )


ASGIApp = Callable[
    [dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Callable[[dict[str, Any]], Awaitable[None]]],
    Awaitable[None],
]


class BodyLimit:
    """Refuses request bodies over ``max_bytes`` with 413 (declared length, or counted while streaming)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _too_large(send, self.max_bytes)
            return
        seen = 0

        async def counted() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await _too_large(send, self.max_bytes)


class _TooLarge(Exception):
    pass


async def _too_large(send: Callable[[dict[str, Any]], Awaitable[None]], limit: int) -> None:
    from leadstage.api.problems import problem

    response = problem(413, "Request body too large", f"request bodies are limited to {limit} bytes")
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(response.body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": response.body})
