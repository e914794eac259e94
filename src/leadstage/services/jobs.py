"""Long operations run as jobs (rescoring every lead, a backtest, training a model): recorded in the jobs
table, run in a worker thread of the server, their result (or error) kept where whoever started them
finds it: ``GET /api/v1/jobs/ID`` for the API, the page's progress box for the web workspace. Jobs a
stopped server left unfinished are marked failed when the server starts again."""

from __future__ import annotations

import secrets
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from leadstage.domain.errors import DomainError
from leadstage.services.ports import Clock, Job, UnitOfWorkFactory


def record_job(
    uow_factory: UnitOfWorkFactory, clock: Clock, kind: str, params: Mapping[str, Any], *, created_by: str
) -> str:
    """A new queued job; returns its id."""
    job_id = secrets.token_hex(12)
    with uow_factory() as uow:
        uow.access.add_job(
            Job(
                id=job_id,
                kind=kind,
                status="queued",
                params=dict(params),
                created_by=created_by,
                created_at=clock.now(),
            )
        )
        uow.commit()
    return job_id


def run_job(uow_factory: UnitOfWorkFactory, clock: Clock, job_id: str, work: Callable[[], Any]) -> None:
    """Run a recorded job: running, then done with ``work()``'s result, or failed with why."""
    with uow_factory() as uow:
        uow.access.update_job(job_id, status="running", started_at=clock.now())
        uow.commit()
    try:
        result = work()
        values: dict[str, Any] = {"status": "done", "result": result}
    except DomainError as exc:
        values = {"status": "failed", "error": str(exc)}
    except Exception as exc:  # a job's failure is kept for whoever polls it, with where it happened
        values = {
            "status": "failed",
            "error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}",
        }
    with uow_factory() as uow:
        uow.access.update_job(job_id, finished_at=clock.now(), **values)
        uow.commit()
