"""Who is calling: bearer tokens (``Authorization: Bearer lst_...``), the request's unit of work, body
size limits and rate limits for the public endpoints."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from threading import Lock
from typing import Annotated, Any

from fastapi import BackgroundTasks, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError

from leadstage.bootstrap import Container
from leadstage.domain.errors import PermissionDenied, Unauthenticated
from leadstage.domain.signing import Keyring
from leadstage.domain.stages import Actor, Role
from leadstage.services import access
from leadstage.services.ports import TokenRecord, UnitOfWork

bearer = HTTPBearer(auto_error=False, description="An API token from `leadstage tokens create USER`.")
#: How often a token's last-used time is written (not on every request).
TOUCH_EVERY = timedelta(minutes=5)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def container(request: Request) -> Container:
    found: Container = request.app.state.container
    return found


@dataclass(frozen=True)
class Principal:
    actor: Actor
    scope: str
    token_id: int | None = None

    @property
    def may_write(self) -> bool:
        return self.scope == "write"


@dataclass
class _Checked:
    principal: Principal
    expires: float  # time.monotonic()
    last_used: datetime | None


class TokenCache:
    """Bearer tokens checked in the last ``seconds``, by digest, so that most requests need no query to
    know who is calling. The bound on staleness: a token revoked (or a user deactivated) through this
    server is forgotten at once (``clear``); through the CLI or another server process, it still works
    here for at most ``seconds``. ``seconds=0`` turns the cache off."""

    def __init__(self, seconds: float, size: int = 10_000) -> None:
        self.seconds, self.size = seconds, size
        self._entries: dict[str, _Checked] = {}
        self._lock = Lock()

    def get(self, digest: str) -> _Checked | None:
        found = self._entries.get(digest)
        if found is None or found.expires <= time.monotonic():
            return None
        return found

    def put(self, digest: str, principal: Principal, last_used: datetime | None) -> _Checked:
        checked = _Checked(principal, time.monotonic() + self.seconds, last_used)
        if self.seconds > 0:
            with self._lock:
                if len(self._entries) >= self.size:  # many tokens: drop what has expired, else everything
                    now = time.monotonic()
                    kept = {k: v for k, v in self._entries.items() if v.expires > now}
                    self._entries = kept if len(kept) < self.size else {}
                self._entries[digest] = checked
        return checked

    def clear(self) -> None:
        with self._lock:
            self._entries = {}


async def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    background: BackgroundTasks,
) -> Principal:
    """The caller: a bearer token, else a web session (whose changes need its CSRF token in the
    ``X-CSRF-Token`` header); 401 without either. A token checked in the last few seconds is taken from
    the cache (:class:`TokenCache`); otherwise it is read in its own short transaction, so that the
    request's own unit of work (or the import pipeline's) is the only one that writes."""
    c = container(request)
    cookie = request.cookies.get(access.SESSION_COOKIE)
    if credentials is None and cookie:
        keys, now = c.session_keys(), c.clock.now()
        access.open_session_cookie(keys, cookie, now=now)  # a forged cookie stops here, before the database
        check = await run_in_threadpool(_session, c, cookie, keys, now)
        if request.method not in SAFE_METHODS and not access.csrf_ok(
            keys, cookie, request.headers.get("x-csrf-token", ""), now=now
        ):
            raise PermissionDenied(
                "missing or wrong CSRF token (X-CSRF-Token) for a change made with a session"
            )
        if check.renewed_cookie:
            request.state.renewed_session_cookie = check.renewed_cookie
        return Principal(actor=check.actor, scope="write")
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated(
            "this endpoint needs 'Authorization: Bearer TOKEN' (see `leadstage tokens create`) or a login"
        )
    digest = access.bearer_digest(credentials.credentials)
    cache: TokenCache = request.app.state.tokens
    checked = cache.get(digest)
    if checked is None:
        actor, record = await run_in_threadpool(_token, c, digest)
        checked = cache.put(digest, Principal(actor, record.scope, record.id), record.last_used_at)
    now = c.clock.now()
    if checked.last_used is None or now - checked.last_used > TOUCH_EVERY:
        checked.last_used = now
        assert checked.principal.token_id is not None
        background.add_task(_touch, c, checked.principal.token_id, now)  # after the response
    return checked.principal


def _session(c: Container, cookie: str, keys: Keyring, now: datetime) -> access.SessionCheck:
    with c.uow() as uow:
        return access.session_actor(uow, cookie, keys=keys, now=now)


def _token(c: Container, digest: str) -> tuple[Actor, TokenRecord]:
    with c.uow() as uow:
        return access.token_holder(uow, digest)


def _touch(c: Container, token_id: int, now: datetime) -> None:
    """Record when a token was last used, in its own short transaction after the response; best effort
    (it only informs)."""
    try:
        with c.uow(write=True) as uow:
            uow.access.touch_token(token_id, at=now)
            uow.commit()
    except SQLAlchemyError:  # busy database: the next request after TOUCH_EVERY tries again
        return


def unit_of_work(request: Request, who: Annotated[Principal, Depends(principal)]) -> Iterator[UnitOfWork]:
    """The request's transaction, opened once the caller is known: endpoints commit what they change;
    anything else is rolled back."""
    with container(request).uow(write=request.method not in SAFE_METHODS) as uow:
        yield uow


Uow = Annotated[UnitOfWork, Depends(unit_of_work)]


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

    def exceeded(self, key: str) -> bool:
        """Whether ``key`` has used up its window, without counting this as a request."""
        now = time.monotonic()
        with self._lock:
            start, count = self._hits.get(key, (now, 0))
            return now - start < self.window and count >= self.limit

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
