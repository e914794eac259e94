"""``create_app(settings)``: builds everything in a lifespan; nothing is created at import time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from sqlalchemy import text

from leadstage import __version__, web
from leadstage.api import (
    account_routes,
    capture,
    jobs,
    observability,
    predictive_routes,
    problems,
    report_routes,
    routes,
    routing_routes,
    scoring_routes,
    timeline_routes,
    web_auth,
)
from leadstage.api.follow_up import FollowUpProcess
from leadstage.api.security import BodyLimit, RateLimiter, TokenCache
from leadstage.bootstrap import Container, build
from leadstage.config import Settings
from leadstage.services import audit, leases
from leadstage.services import tick as tick_service
from leadstage.services.ports import Clock

log = logging.getLogger("leadstage.tick")


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        container = build(settings, clock=clock)
        app.state.container = container
        app.state.ticks = 0
        app.state.lease_held = False
        app.state.holder = f"{socket.gethostname()[:32]}:{os.getpid()}:{secrets.token_hex(3)}"
        if container.ensure_keyring():  # `init` makes it; a server started without it makes it too
            log.warning("session signing keys created in %s", container.keyring_path())
        container.session_keys()  # a missing or unreadable key file stops the start, named
        holder = app.state.holder
        now = container.clock.now()
        leases.hold(
            container.uow, leases.server_lease(holder), holder, now=now, seconds=settings.lease_seconds
        )
        # jobs left unfinished by a server that is gone say so (other running servers keep theirs)
        leases.interrupt_orphaned_jobs(container.uow, now=now)
        app.state.jobs = ThreadPoolExecutor(max_workers=1, thread_name_prefix="leadstage-job")
        app.state.pending_jobs = []
        loop = asyncio.create_task(_background_loop(app, container, settings))
        app.state.follow_up_due = True  # what a server that stopped short may have left
        # in a process of its own where the inbox keeps batches off the main file's write lock (ADR 25);
        # not with a clock of the caller's (tests), which a child process would not share
        follower = (
            FollowUpProcess(settings)
            if settings.follow_up_process and clock is None and container.inbox is not None
            else None
        )
        app.state.follow_up = follower.run if follower is not None else container.follow_up
        following = asyncio.create_task(_follow_up_loop(app, settings))
        try:
            yield
        finally:
            # the job running finishes; queued ones are dropped (orphaned: marked interrupted at a next start)
            app.state.jobs.shutdown(wait=True, cancel_futures=True)
            for task in (loop, following):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if app.state.follow_up_due:  # batches answered since the last run: follow them up now
                try:
                    await asyncio.to_thread(app.state.follow_up)
                except Exception:  # left in the backlog: the next server or tick follows them up
                    log.exception("following up activities at shutdown failed")
            if follower is not None:
                await asyncio.to_thread(follower.close)
            running = getattr(app.state, "tick_running", None)
            if running is not None and not running.done():
                with contextlib.suppress(Exception):
                    await running
            with contextlib.suppress(Exception):  # another server takes over now rather than at expiry
                leases.release(container.uow, leases.BACKGROUND_LOOP, holder)
                leases.release(container.uow, leases.server_lease(holder), holder)
            container.close()

    app = FastAPI(
        title="leadstage",
        version=__version__,
        lifespan=lifespan,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )

    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:  # generated once, with what FastAPI cannot see on its own
            routes.document_activity_batch(generate_openapi())
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
    problems.install(app)
    observability.install(app)
    web_auth.install(app)
    app.include_router(observability.router)
    # per client address: form posts (people), signed inbound hooks (tools sending event streams), logins
    app.state.rate_limiters = {
        "capture": RateLimiter(settings.capture_rate_per_minute),
        "hooks": RateLimiter(600),
        "login": RateLimiter(10),  # password guesses per address and minute
    }
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    app.state.tokens = TokenCache(settings.token_cache_seconds)
    app.include_router(routes.router)

    @app.middleware("http")
    async def client_address(request: Request, call_next: Any) -> Any:
        """Audit rows say where a request came from."""
        audit.CLIENT.set(request.client.host if request.client else None)
        return await call_next(request)

    @app.middleware("http")
    async def json_bodies(request: Request, call_next: Any) -> Any:
        """API bodies are JSON (capture also takes form posts): anything else is 415, named."""
        if (
            request.method in ("POST", "PUT", "PATCH")
            and request.url.path.startswith("/api/v1/")
            and not request.url.path.startswith("/api/v1/capture/")
            and request.headers.get("content-length") not in (None, "0")
        ):
            kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind != "application/json":
                return problems.problem(
                    415,
                    "Unsupported media type",
                    f"send JSON (Content-Type: application/json), not {kind or 'nothing'}",
                )
        return await call_next(request)

    app.include_router(capture.router)
    app.include_router(web_auth.router)
    app.include_router(jobs.router)
    app.include_router(scoring_routes.router)
    app.include_router(account_routes.router)
    app.include_router(predictive_routes.router)
    app.include_router(routing_routes.router)
    app.include_router(report_routes.router)
    app.include_router(timeline_routes.router)
    web.install(app)  # the web workspace: pages, static files, HTML error pages (after the API's handlers)

    @app.get("/api/v1/health", tags=["health"])
    def health(request: Request) -> dict[str, Any]:
        """Liveness and database reachability (public)."""
        container = request.app.state.container
        try:
            with container.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            database = "ok"
        except Exception as exc:  # reported, not raised: health must answer
            database = f"unreachable: {type(exc).__name__}"
        loop = _loop_state(request.app, settings)
        healthy = database == "ok" and loop in ("ok", "standby", "off", "starting")
        return {
            "status": "ok" if healthy else "degraded",
            "version": __version__,
            "database": database,
            "background_loop": loop,
            "ticks": getattr(request.app.state, "ticks", 0),
        }

    return app


def _loop_state(app: FastAPI, settings: Settings) -> str:
    """``off``; ``starting``; ``ok`` (this server holds the lease and ticks); ``standby`` (another server
    holds it; this one's loop is alive and takes over if it lapses); ``stalled`` (the loop stopped)."""
    if settings.tick_seconds <= 0:
        return "off"
    alive = getattr(app.state, "loop_alive_at", None)
    if alive is None:
        return "starting"
    bound = max(3 * settings.tick_seconds, settings.tick_seconds + 120, 3 * settings.lease_seconds)
    if not app.state.lease_held:
        return "stalled" if time.monotonic() - alive > bound else "standby"
    last = getattr(app.state, "last_tick_at", None)
    if last is None:
        return "starting"
    return "stalled" if time.monotonic() - last > bound else "ok"


def _claim(app: FastAPI, container: Container, settings: Settings) -> bool:
    """Renew this server's own lease; take or renew the background-loop lease (when the loop is on) and,
    holding it, mark interrupted the jobs of servers that are gone. A failure to ask (a busy or restarting
    database) keeps what this server knows it holds until its own lease would have run out."""
    now = container.clock.now()
    holder = app.state.holder
    try:
        leases.hold(
            container.uow, leases.server_lease(holder), holder, now=now, seconds=settings.lease_seconds
        )
        if settings.tick_seconds <= 0:
            return False
        state = leases.hold(
            container.uow, leases.BACKGROUND_LOOP, holder, now=now, seconds=settings.lease_seconds
        )
        if state is not None:
            leases.interrupt_orphaned_jobs(container.uow, now=now)
    except Exception:
        log.exception("could not renew the server's leases")
        until = getattr(app.state, "lease_until", None)
        return bool(app.state.lease_held and until is not None and now < until)
    if state is not None and not app.state.lease_held:
        log.info("this server runs the background loop now (lease generation %s)", state.generation)
    elif state is None and app.state.lease_held:
        log.warning("another server took over the background loop")
    app.state.lease_until = state.expires_at if state is not None else None
    return state is not None


async def _background_loop(app: FastAPI, container: Container, settings: Settings) -> None:
    """Keep this server's lease; run ``tick`` every ``tick_seconds`` while this server holds the
    background-loop lease (one server at a time across all of them), renewing the leases every third of
    their length, until shutdown."""
    renew_every = settings.lease_seconds / 3
    next_tick = 0.0
    while True:
        app.state.lease_held = await asyncio.to_thread(_claim, app, container, settings)
        app.state.loop_alive_at = time.monotonic()
        if app.state.lease_held and time.monotonic() >= next_tick:
            await _tick_once(app, container, settings, renew_every)
            next_tick = time.monotonic() + settings.tick_seconds
            continue  # renew straight after a tick (it may have taken a while)
        wait = (
            max(0.0, min(next_tick - time.monotonic(), renew_every)) if app.state.lease_held else renew_every
        )
        await asyncio.sleep(wait)


async def _follow_up_loop(app: FastAPI, settings: Settings) -> None:
    """Every ``follow_up_seconds``, when API batches arrived since the last run, run the activity backlog's
    follow-ups (scoring, MQL promotion, attribution credits) for all of them at once (ADR 21), in the
    follow-up process when there is one (ADR 25)."""
    while True:
        await asyncio.sleep(settings.follow_up_seconds)
        if not app.state.follow_up_due:
            continue
        app.state.follow_up_due = False
        running = asyncio.ensure_future(asyncio.to_thread(app.state.follow_up))
        try:
            # shielded: shutting down waits for a run in flight instead of closing the engine under it
            await asyncio.shield(running)
        except asyncio.CancelledError:
            try:
                await running
            except Exception:  # the shutdown's own run tries again
                app.state.follow_up_due = True
            raise
        except Exception:  # kept for the next run (and for tick); the loop goes on
            log.exception("following up activities failed")
            app.state.follow_up_due = True


async def _tick_once(app: FastAPI, container: Container, settings: Settings, renew_every: float) -> None:
    running = asyncio.ensure_future(
        asyncio.to_thread(
            tick_service.tick,
            container.uow,
            now=container.clock.now(),
            holder=app.state.holder,
            evaluators=container.tick_evaluators(),
        )
    )
    app.state.tick_running = running
    try:
        # shielded: shutting down waits for a tick in flight instead of closing the engine under it
        while True:
            done, _pending = await asyncio.wait({asyncio.shield(running)}, timeout=renew_every)
            if done:
                break
            app.state.lease_held = await asyncio.to_thread(_claim, app, container, settings)  # a long tick
            app.state.loop_alive_at = time.monotonic()
        report = running.result()
        for name, problem in report.errors.items():
            log.error("tick %s failed: %s", name, problem)
    except asyncio.CancelledError:
        raise
    except Exception:  # the loop must outlive one failing tick (e.g. the database restarting)
        log.exception("tick failed")
    app.state.ticks += 1
    app.state.last_tick_at = time.monotonic()


def create_app_from_environment() -> FastAPI:
    """The app for ``serve --workers N``: each worker process builds it from ``LEADSTAGE_*`` variables."""
    from leadstage.api.observability import configure_logging

    settings = Settings()
    configure_logging(settings.log_format)
    return create_app(settings)
