"""Long operations over HTTP run as jobs: the request answers 202 with the job's URL; the job runs in a
worker thread of the server and keeps its result (or error) in the database, where ``GET /api/v1/jobs/ID``
finds it. Jobs a stopped server left unfinished are marked failed once its server lease has run out (by
the next server to start, or by the background loop of a server still running)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from leadstage.api.routes import PROBLEM_RESPONSES
from leadstage.api.security import Principal, Reader, container
from leadstage.bootstrap import Container
from leadstage.domain.errors import NotFound
from leadstage.domain.stages import Role
from leadstage.services.jobs import run_job
from leadstage.services.ports import Job

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES, tags=["jobs"])
#: Jobs waiting or running in one server at most; more are refused with 429 until some finish.
MAX_PENDING = 16


class JobAccepted(BaseModel):
    id: str
    status: str
    url: str


JOB_ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"model": JobAccepted, "description": "Accepted: poll the job at `url` (also in Location)"}
}


def executor(request: Request) -> ThreadPoolExecutor:
    pool: ThreadPoolExecutor = request.app.state.jobs
    return pool


def start_job(
    request: Request, kind: str, params: dict[str, Any], who: Principal, work: Callable[[Container], Any]
) -> JSONResponse:
    """Record a job, run ``work`` in the background, and answer 202 with where to find the result."""
    c = container(request)
    pending: list[Any] = request.app.state.pending_jobs
    pending[:] = [f for f in pending if not f.done()]
    if len(pending) >= MAX_PENDING:
        raise HTTPException(
            429, f"{len(pending)} jobs are waiting or running; try again later", {"Retry-After": "30"}
        )
    job_id = secrets.token_hex(12)
    with c.uow(write=True) as uow:
        uow.access.add_job(
            Job(
                id=job_id,
                kind=kind,
                status="queued",
                params=params,
                created_by=who.actor.name,
                created_at=c.clock.now(),
                runner=request.app.state.holder,
            )
        )
        uow.commit()
    pending.append(executor(request).submit(_run, c, job_id, work))
    url = f"/api/v1/jobs/{job_id}"
    return JSONResponse(
        {"id": job_id, "status": "queued", "url": url}, status_code=202, headers={"Location": url}
    )


def _run(c: Container, job_id: str, work: Callable[[Container], Any]) -> None:
    run_job(c.writer, c.clock, job_id, lambda: work(c))


@router.get("/jobs/{job_id}")
def get_job(
    request: Request, job_id: Annotated[str, Path(min_length=1, max_length=40)], who: Reader
) -> dict[str, Any]:
    """A job's state; ``result`` once it is done, ``error`` if it failed. Visible to its creator and admins."""
    c = container(request)
    with c.uow() as uow:
        job = uow.access.job(job_id)
    if job is None or (job.created_by != who.actor.name and who.actor.role is not Role.ADMIN):
        raise NotFound(f"no job {job_id}")
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "params": dict(job.params),
        "created_by": job.created_by,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "result": job.result,
        "error": job.error,
    }
