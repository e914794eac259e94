"""``create_app(settings)``: builds everything in a lifespan; nothing is created at import time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import text

from leadstage import __version__
from leadstage.api import capture, jobs, observability, problems, routes, scoring_routes, web_auth
from leadstage.api.security import BodyLimit, RateLimiter
from leadstage.bootstrap import Container, build
from leadstage.config import Settings
from leadstage.services import audit
from leadstage.services import tick as tick_service
from leadstage.services.ports import Clock

log = logging.getLogger("leadstage.tick")

INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>leadstage</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#1b1f24}
code{background:#f2f4f7;padding:.1rem .3rem;border-radius:3px}</style></head>
<body><h1>leadstage {version}</h1>
<p>The server is running. The web workspace is not built yet; until it is, use the command line
(<code>leadstage leads list</code>, <code>leadstage leads show ID</code>) and the health check at
<a href="/api/v1/health"><code>/api/v1/health</code></a>.</p></body></html>"""


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        container = build(settings, clock=clock)
        app.state.container = container
        app.state.ticks = 0
        with container.uow(write=True) as uow:  # jobs a previous server left unfinished say so
            uow.access.interrupt_jobs(container.clock.now())
            uow.commit()
        app.state.jobs = ThreadPoolExecutor(max_workers=1, thread_name_prefix="leadstage-job")
        loop = (
            asyncio.create_task(_tick_loop(app, container, settings.tick_seconds))
            if settings.tick_seconds > 0
            else None
        )
        try:
            yield
        finally:
            app.state.jobs.shutdown(wait=True)
            if loop is not None:
                loop.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await loop
                running = getattr(app.state, "tick_running", None)
                if running is not None and not running.done():
                    with contextlib.suppress(Exception):
                        await running
            container.close()

    app = FastAPI(
        title="leadstage",
        version=__version__,
        lifespan=lifespan,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )

    problems.install(app)
    observability.install(app)
    app.include_router(observability.router)
    # per client address: form posts (people), signed inbound hooks (tools sending event streams), logins
    app.state.rate_limiters = {
        "capture": RateLimiter(settings.capture_rate_per_minute),
        "hooks": RateLimiter(600),
        "login": RateLimiter(10),  # password guesses per address and minute
    }
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
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

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return INDEX.replace("{version}", __version__)

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
        seconds = settings.tick_seconds
        last = getattr(request.app.state, "last_tick_at", None)
        if seconds <= 0:
            loop = "off"
        elif last is None:
            loop = "starting"
        else:
            late = time.monotonic() - last > max(3 * seconds, seconds + 120)
            loop = "stalled" if late else "ok"
        healthy = database == "ok" and loop in ("ok", "off", "starting")
        return {
            "status": "ok" if healthy else "degraded",
            "version": __version__,
            "database": database,
            "background_loop": loop,
            "ticks": getattr(request.app.state, "ticks", 0),
        }

    return app


async def _tick_loop(app: FastAPI, container: Container, seconds: float) -> None:
    """Run ``tick`` every ``seconds`` in a worker thread until the app shuts down."""
    while True:
        running = asyncio.ensure_future(
            asyncio.to_thread(
                tick_service.tick,
                container.uow,
                now=container.clock.now(),
                holder="serve",
                evaluators=container.tick_evaluators(),
            )
        )
        app.state.tick_running = running
        try:
            # shielded: shutting down waits for a tick in flight instead of closing the engine under it
            report = await asyncio.shield(running)
            for name, problem in report.errors.items():
                log.error("tick %s failed: %s", name, problem)
        except asyncio.CancelledError:
            raise
        except Exception:  # the loop must outlive one failing tick (e.g. the database restarting)
            log.exception("tick failed")
        app.state.ticks += 1
        app.state.last_tick_at = time.monotonic()
        await asyncio.sleep(seconds)
