"""Scoring models over HTTP: list, validate, activate (a job: it rescores every lead), explain (in
routes.py), backtest (a job)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from leadstage.api.jobs import JOB_ACCEPTED, start_job
from leadstage.api.routes import PROBLEM_RESPONSES, Strict
from leadstage.api.security import Reader, Uow, Writer, container
from leadstage.bootstrap import Container
from leadstage.domain.errors import PermissionDenied
from leadstage.domain.stages import Role
from leadstage.services import activation, audit, backtest, scoring

router = APIRouter(prefix="/api/v1/scoring", responses=PROBLEM_RESPONSES, tags=["scoring"])
MODEL_EDITORS = frozenset({Role.ADMIN, Role.MARKETING})


class ModelIn(Strict):
    source: str = Field(min_length=1, max_length=200_000, description="The scoring model as YAML")
    name: str = Field(default="uploaded model", min_length=1, max_length=200)


class BacktestIn(ModelIn):
    start: date | None = Field(default=None, alias="from")
    end: date | None = Field(default=None, alias="to")
    capacity: int | None = Field(default=None, ge=1, le=1_000_000)


@router.get("/models")
def list_models(uow: Uow, who: Reader) -> dict[str, Any]:
    items = [
        {
            "id": m.id,
            "version": m.version,
            "name": m.name,
            "active": m.active,
            "created_by": m.created_by,
            "created_at": m.created_at.isoformat(),
            "activated_at": m.activated_at.isoformat() if m.activated_at else None,
        }
        for m in uow.scoring.models()
    ]
    return {"total": len(items), "items": items}


@router.post("/models/validate")
def validate_model(request: Request, body: ModelIn, uow: Uow, who: Reader) -> dict[str, Any]:
    """Check a model without storing it: 422 naming the line and key, else its outline and warnings."""
    known = {k: v.value for k, v in uow.properties.definitions("lead").items()}
    model = scoring.compile_model(
        body.source,
        name=body.name,
        load=container(request).scoring_loader(),
        known_properties=known,
        activity_types=uow.activities.known_types(),
    )
    return {**scoring.summary(model), "warnings": list(model.warnings)}


@router.post("/models", status_code=202, responses=JOB_ACCEPTED)
def activate_model(
    request: Request,
    body: ModelIn,
    uow: Uow,
    who: Writer,
    preview: Annotated[
        bool,
        Query(description="Only count the leads it would promote now against today's hand-off capacity "
                          "(a job); store nothing"),
    ] = False,
) -> JSONResponse:  # fmt: skip
    """Validate (422 at once when invalid), store and activate a model; rescoring every lead is a job.
    With ``preview=true`` nothing is stored: the job counts the promotions activating it would cause now."""
    if who.actor.role not in MODEL_EDITORS:
        raise PermissionDenied(f"role {who.actor.role.value} may not activate scoring models")
    c = container(request)
    if preview:
        uow.rollback()  # a preview stores nothing: give up the request's write lock before the job is recorded
        model = scoring.compile_model(body.source, name=body.name, load=c.scoring_loader())  # 422 now

        def count(job: Container) -> dict[str, Any]:
            with job.uow() as read:
                shown = activation.preview_activation(read, model, at=job.clock.now())
            return {"name": model.name, "activated": False, "preview": shown.as_dict(),
                    "summary": shown.describe()}  # fmt: skip

        return start_job(request, "preview_activation", {"name": model.name}, who, count)
    stored, model = scoring.activate_model(
        uow, body.source, name=body.name, load=c.scoring_loader(), actor=who.actor, at=c.clock.now()
    )
    audit.record(
        uow, who.actor, "scoring_model.activate", at=c.clock.now(), target=model.name, version=stored.version
    )
    uow.commit()

    def rescore(job: Container) -> dict[str, Any]:
        done = activation.rescore_and_route(job.writer, load=job.scoring_loader(), at=job.clock.now())
        return {
            "model_id": stored.id,
            "version": stored.version,
            "name": model.name,
            "warnings": list(model.warnings),
            **done,
        }

    return start_job(request, "activate_model", {"model_id": stored.id, "name": model.name}, who, rescore)


@router.post("/backtest", status_code=202, responses=JOB_ACCEPTED)
def run_backtest(request: Request, body: BacktestIn, who: Reader) -> JSONResponse:
    """Replay history with a candidate model beside the active one (a job); the result is the document of
    ``leadstage score backtest --json``."""
    if who.actor.role not in MODEL_EDITORS:
        raise PermissionDenied(f"role {who.actor.role.value} may not backtest scoring models")
    c = container(request)
    scoring.compile_model(
        body.source, name=body.name, load=c.scoring_loader()
    )  # invalid: 422 now, not in the job

    def work(job: Container) -> dict[str, Any]:
        return backtest.backtest(
            job.uow,
            body.source,
            name=body.name,
            load=job.scoring_loader(),
            start=body.start,
            end=body.end,
            capacity=body.capacity,
        )

    params = {
        "name": body.name,
        "from": str(body.start or ""),
        "to": str(body.end or ""),
        "capacity": body.capacity,
    }
    return start_job(request, "backtest", params, who, work)
