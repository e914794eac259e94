"""Long work started from a page (rescoring every lead, a backtest, activating a predictive model) runs as
a job: recorded in the jobs table and run on the server's job worker, as the API's jobs are
(``services/jobs.py``). The page shows a progress box that asks again every second until the job is done
and then shows its result; ``GET /api/v1/jobs/ID`` reports the same job."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from leadstage.bootstrap import Container
from leadstage.domain.errors import NotFound
from leadstage.domain.stages import Role
from leadstage.services import jobs
from leadstage.services.ports import Job
from leadstage.web.base import Viewer, WebUser, container, render

router = APIRouter(include_in_schema=False)


def start(
    request: Request, user: WebUser, kind: str, params: dict[str, Any], work: Callable[[Container], Any]
) -> str:
    """Record a job and run ``work`` on the server's job worker; returns the job's id."""
    c = container(request)
    job_id = jobs.record_job(c.writer, c.clock, kind, params, created_by=user.actor.name)
    executor: ThreadPoolExecutor = request.app.state.jobs
    executor.submit(jobs.run_job, c.writer, c.clock, job_id, lambda: work(c))
    return job_id


def find(request: Request, user: WebUser, job_id: str) -> Job:
    """A job its creator (or an administrator) may see; others get "not found"."""
    with container(request).uow() as uow:
        job = uow.access.job(job_id)
    if job is None or (job.created_by != user.actor.name and user.role is not Role.ADMIN):
        raise NotFound(f"no job {job_id}")
    return job


@router.get("/jobs/{job_id}")
def job_status(request: Request, user: Viewer, job_id: Annotated[str, Path(max_length=40)]) -> HTMLResponse:
    """A job's progress box (htmx polls it), or a page with it."""
    job = find(request, user, job_id)
    htmx = request.headers.get("hx-request") == "true"
    return render(request, "job.html" if htmx else "job_page.html", {"job": job}, user=user)
