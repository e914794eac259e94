"""Logs, request ids and metrics (issue 9 section 4).

Every request gets an id (the caller's ``X-Request-ID`` when it is sane, else a new one), returned in the
response and put on every log line written while serving it. ``LEADSTAGE_LOG_FORMAT=json`` makes the logs
one JSON object per line. ``/metrics`` answers in the Prometheus text format, for an administrator's token:
request counts and latency by route and status, and figures read from the database (leads, promotions,
SLA breaches, the webhook and mail backlogs).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections import defaultdict
from contextvars import ContextVar
from threading import Lock
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy import func, select

from leadstage.adapters.db import tables as t
from leadstage.api.security import Reader, container
from leadstage.domain.errors import PermissionDenied
from leadstage.domain.stages import Role

REQUEST_ID: ContextVar[str] = ContextVar("leadstage_request_id", default="-")
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
router = APIRouter(include_in_schema=False)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def configure_logging(log_format: str) -> None:
    """Logs of leadstage and uvicorn, as text or JSON, each line with the request id."""
    handler = logging.StreamHandler()
    handler.addFilter(_RequestIdFilter())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    for name in ("leadstage", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
        logger.setLevel(logging.INFO)


class Metrics:
    """Request counts and latency sums by (method, route, status); thread-safe."""

    def __init__(self) -> None:
        self.count: dict[tuple[str, str, int], int] = defaultdict(int)
        self.seconds: dict[tuple[str, str, int], float] = defaultdict(float)
        self._lock = Lock()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.count[(method, route, status)] += 1
            self.seconds[(method, route, status)] += seconds


def install(app: FastAPI) -> None:
    app.state.metrics = Metrics()
    log = logging.getLogger("leadstage.requests")

    @app.middleware("http")
    async def request_ids(request: Request, call_next: Any) -> Any:
        given = request.headers.get("x-request-id", "")
        rid = given if _SANE_ID.match(given) else secrets.token_hex(8)
        token = REQUEST_ID.set(rid)
        started = time.perf_counter()
        try:
            response = await call_next(request)
            elapsed = time.perf_counter() - started
            client = request.client.host if request.client else "-"
            log.info(
                "%s %s %s %d %.1fms",
                client,
                request.method,
                request.url.path,
                response.status_code,
                elapsed * 1000,
            )
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            raise
        finally:
            REQUEST_ID.reset(token)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        app.state.metrics.observe(request.method, path, response.status_code, elapsed)
        response.headers["X-Request-ID"] = rid
        return response


def _label(value: object) -> str:
    return str(value).replace("\\\\", "\\\\\\\\").replace('"', '\\\\"')


@router.get("/metrics")
def metrics(request: Request, who: Reader) -> PlainTextResponse:
    """Prometheus text format, for administrators."""
    if who.actor.role is not Role.ADMIN:
        raise PermissionDenied("only an administrator reads the metrics")
    m: Metrics = request.app.state.metrics
    lines = [
        "# HELP leadstage_http_requests_total HTTP requests by method, route and status.",
        "# TYPE leadstage_http_requests_total counter",
    ]
    for (method, route, status), n in sorted(m.count.items()):
        lines.append(
            f'leadstage_http_requests_total{{method="{method}",route="{_label(route)}",status="{status}"}} {n}'
        )
    lines += [
        "# HELP leadstage_http_request_seconds_sum Time spent answering, by method, route and status.",
        "# TYPE leadstage_http_request_seconds_sum counter",
    ]
    for (method, route, status), s in sorted(m.seconds.items()):
        lines.append(
            f'leadstage_http_request_seconds_sum{{method="{method}",route="{_label(route)}",status="{status}"}} {s:.6f}'
        )
    c = container(request)
    with c.engine.connect() as conn:
        figures = {
            "leadstage_leads": select(func.count()).select_from(t.leads),
            "leadstage_promotions_total": select(func.count())
            .select_from(t.lead_history)
            .where(t.lead_history.c.action == "promote_mql"),
            "leadstage_sla_breaches_total": select(func.count())
            .select_from(t.lead_history)
            .where(t.lead_history.c.action == "sla_breach"),
            "leadstage_imports_rows_total": select(func.count()).select_from(t.activities),
            "leadstage_outbox_backlog": select(func.count())
            .select_from(t.outbox)
            .where(t.outbox.c.status == "pending"),
            "leadstage_mail_backlog": select(func.count())
            .select_from(t.mail_outbox)
            .where(t.mail_outbox.c.status == "pending"),
        }
        for name, query in figures.items():
            lines.append(f"# TYPE {name} gauge")
            lines.append(f"{name} {int(conn.execute(query).scalar_one())}")
    lines.append("# TYPE leadstage_background_ticks_total counter")
    lines.append(f"leadstage_background_ticks_total {getattr(request.app.state, 'ticks', 0)}")
    lines.append(
        "# HELP leadstage_background_loop_lease_held 1 on the one server running the background loop."
    )
    lines.append("# TYPE leadstage_background_loop_lease_held gauge")
    lines.append(
        f"leadstage_background_loop_lease_held {int(getattr(request.app.state, 'lease_held', False))}"
    )
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")
