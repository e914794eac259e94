"""Reports over HTTP: funnel, velocity, attribution, feedback and calibration, with the parameters of
``leadstage report NAME`` (``--per-cycle`` is ``per_cycle``, ``--half-life`` is ``half_life``) and the
same JSON documents; any of them can also run as a job (202, then poll) for large databases."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from leadstage.api.jobs import JOB_ACCEPTED, start_job
from leadstage.api.routes import PROBLEM_RESPONSES, Strict
from leadstage.api.security import Reader, Uow, container
from leadstage.bootstrap import Container
from leadstage.domain.analytics import ReportRequest, parse_request
from leadstage.domain.errors import ValidationError
from leadstage.services.reports import run_report

router = APIRouter(prefix="/api/v1/reports", responses=PROBLEM_RESPONSES, tags=["reports"])

LeadDimension = Literal[
    "source", "campaign", "content", "segment", "owner", "fit_grade", "engagement_level", "priority"
]
TouchDimension = Literal["source", "campaign", "content"]
BandDimension = Literal["fit_grade", "engagement_level", "priority", "predictive_decile"]
ModeName = Literal["cohort", "period"]
DAY = r"^\d{4}-\d{2}-\d{2}$"
From = Annotated[
    str | None,
    Query(alias="from", pattern=DAY, description="First day, ISO date (default: all history)"),
]
To = Annotated[str | None, Query(alias="to", pattern=DAY, description="Last day, ISO date, included")]
Mode = Annotated[
    ModeName | None,
    Query(description="cohort (leads created in the range; the default) or period (events in the range)"),
]
_OPTION = re.compile(r"--([a-z][a-z-]*)")


@contextmanager
def _api_names() -> Iterator[None]:
    """The domain names the CLI's options (``--half-life``); over HTTP they are query parameters."""
    try:
        yield
    except ValidationError as exc:
        message = _OPTION.sub(lambda m: m.group(1).replace("-", "_"), str(exc))
        field = exc.field.lstrip("-").replace("-", "_") if exc.field else None
        raise ValidationError(message, field=field) from None


def _request(name: str, **params: Any) -> ReportRequest:
    with _api_names():
        return parse_request(name, **params)


def _run(request: Request, uow: Any, report: ReportRequest) -> dict[str, Any]:
    with _api_names():
        return run_report(uow, report, as_of=container(request).clock.now())


@router.get("/funnel")
def funnel(
    request: Request,
    uow: Uow,
    who: Reader,
    by: LeadDimension | None = None,
    date_from: From = None,
    date_to: To = None,
    mode: Mode = None,
    per_cycle: Annotated[
        bool, Query(description="Count each cycle of a lead as its own attempt (cohort mode)")
    ] = False,
) -> dict[str, Any]:
    """Leads per stage and conversion to the next, with median and 80th-percentile days from creation
    (``report funnel --json``)."""
    report = _request("funnel", by=by, date_from=date_from, date_to=date_to, mode=mode, per_cycle=per_cycle)
    return _run(request, uow, report)


@router.get("/velocity")
def velocity(
    request: Request,
    uow: Uow,
    who: Reader,
    by: LeadDimension | None = None,
    date_from: From = None,
    date_to: To = None,
    mode: Mode = None,
) -> dict[str, Any]:
    """Median and 80th-percentile days in each stage and from lead to customer (``report velocity``)."""
    report = _request("velocity", by=by, date_from=date_from, date_to=date_to, mode=mode)
    return _run(request, uow, report)


@router.get("/attribution")
def attribution(
    request: Request,
    uow: Uow,
    who: Reader,
    by: TouchDimension | None = None,
    date_from: From = None,
    date_to: To = None,
    mode: Mode = None,
    half_life: Annotated[
        float | None, Query(gt=0, le=3650, description="Time-decay half-life in days (default 7)")
    ] = None,
) -> dict[str, Any]:
    """MQLs, SQLs, customers and won revenue credited to sources, campaigns or content under six
    attribution models (``report attribution --json``)."""
    report = _request(
        "attribution", by=by, date_from=date_from, date_to=date_to, mode=mode, half_life_days=half_life
    )
    return _run(request, uow, report)


@router.get("/feedback")
def feedback(
    request: Request,
    uow: Uow,
    who: Reader,
    by: LeadDimension | None = None,
    date_from: From = None,
    date_to: To = None,
    mode: Mode = None,
    limit: Annotated[
        int | None, Query(ge=1, le=1000, description="How many hot rejected leads to list (default 20)")
    ] = None,
) -> dict[str, Any]:
    """MQL acceptance, every rejection, disqualification, recycle and loss reason with its share, and
    the hot leads sales rejected (``report feedback --json``)."""
    report = _request("feedback", by=by, date_from=date_from, date_to=date_to, mode=mode, limit=limit)
    return _run(request, uow, report)


@router.get("/calibration")
def calibration(
    request: Request,
    uow: Uow,
    who: Reader,
    by: BandDimension | None = None,
    date_from: From = None,
    date_to: To = None,
) -> dict[str, Any]:
    """Per score band: leads, how many reached SQL and customer, rates with 95% Wilson intervals
    (``report calibration --json``)."""
    report = _request("calibration", by=by, date_from=date_from, date_to=date_to)
    return _run(request, uow, report)


class ReportJobIn(Strict):
    """A report to compute as a job; the parameters of the report's GET route."""

    report: Literal["funnel", "velocity", "attribution", "feedback", "calibration"]
    by: str | None = Field(default=None, max_length=40)
    date_from: str | None = Field(default=None, alias="from", pattern=DAY)
    date_to: str | None = Field(default=None, alias="to", pattern=DAY)
    mode: ModeName | None = None
    per_cycle: bool = False
    half_life: float | None = Field(default=None, gt=0, le=3650)
    limit: int | None = Field(default=None, ge=1, le=1000)


@router.post("/jobs", status_code=202, responses=JOB_ACCEPTED)
def report_job(request: Request, body: ReportJobIn, who: Reader) -> JSONResponse:
    """Compute a report in the background (parameters are checked now: 422); the job's result is the
    report's document."""
    report = _request(
        body.report,
        by=body.by,
        date_from=body.date_from,
        date_to=body.date_to,
        mode=body.mode,
        per_cycle=body.per_cycle,
        half_life_days=body.half_life,
        limit=body.limit,
    )

    def work(job: Container) -> dict[str, Any]:
        with job.uow() as uow, _api_names():
            return run_report(uow, report, as_of=job.clock.now())

    params = body.model_dump(by_alias=True, exclude_none=True)
    return start_job(request, "report", params, who, work)
