"""Predictive models over HTTP: train (a job), list, model cards, activate (a job: it scores every lead),
and a lead's predictive score explained. The documents are those of ``leadstage model ... --json``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from leadstage.api.jobs import JOB_ACCEPTED, start_job
from leadstage.api.routes import PROBLEM_RESPONSES, Ref, Strict
from leadstage.api.security import Reader, Uow, Writer, container
from leadstage.bootstrap import Container
from leadstage.domain.errors import NotFound, ValidationError
from leadstage.domain.leads import MAX_ID
from leadstage.domain.predictive import DEFAULT_SALES_ASSIGNED_FIELDS, MIN_LABELLED, MIN_POSITIVES, LabelSpec
from leadstage.services import activation, predictive
from leadstage.services import leads as lead_service
from leadstage.services.ports import ModelTrainer

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES, tags=["predictive"])
ModelId = Annotated[int, Path(ge=1, le=MAX_ID)]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class TrainIn(Strict):
    """The options of ``leadstage model train``."""

    label: str | None = Field(
        default=None,
        max_length=200,
        description="A lead property holding the outcome (default: the lifecycle)",
    )
    positive: str | None = Field(
        default=None, max_length=200, description="The label value that means converted (needs label)"
    )
    exclude: list[Name] = Field(default_factory=list, max_length=500, description="Columns never to use")
    include: list[Name] = Field(
        default_factory=list, max_length=500, description="Columns the leakage guard would drop, kept"
    )
    cv: int | None = Field(default=None, ge=2, le=20, description="K-fold cross-validation")
    stage: Literal["mql", "sql", "opportunity", "customer", "evangelist"] = Field(
        default="customer", description="Lifecycle label: the stage that counts as converted"
    )
    window_days: int = Field(
        default=180, ge=1, le=3650, description="Lifecycle label: days after becoming a lead to reach it"
    )
    min_leads: int = Field(default=MIN_LABELLED, ge=10, le=10_000_000, description="Refuse with fewer")
    min_positives: int = Field(default=MIN_POSITIVES, ge=2, le=10_000_000, description="Refuse with fewer")
    sales_fields: list[Name] | None = Field(
        default=None,
        max_length=500,
        description="Names of fields sales fill in after the fact, excluded (replaces the built-in list)",
    )


def _trainer() -> ModelTrainer:
    """scikit-learn and LightGBM, imported when a model is first used (not when the server starts)."""
    from leadstage.adapters.ml import SklearnLightGbmTrainer

    return SklearnLightGbmTrainer()


@router.post("/predictive/models", status_code=202, responses=JOB_ACCEPTED)
def train_model(request: Request, body: TrainIn, who: Writer) -> JSONResponse:
    """Train a candidate model (a job; administrators and marketing). The job's result is the document
    of ``model train --json``; nothing is scored until the model is activated."""
    predictive.check_model_role(who.actor)
    if body.positive is not None and body.label is None:
        raise ValidationError("positive: needs label (the property it is a value of)", field="positive")
    train = predictive.TrainRequest(
        label=LabelSpec(
            property=body.label, positive=body.positive, stage=body.stage, window_days=body.window_days
        ),
        exclude=tuple(body.exclude),
        include=tuple(body.include),
        cv=body.cv,
        min_labelled=body.min_leads,
        min_positives=body.min_positives,
        sales_fields=tuple(body.sales_fields)
        if body.sales_fields is not None
        else DEFAULT_SALES_ASSIGNED_FIELDS,
    )

    def work(job: Container) -> dict[str, Any]:
        return predictive.train_model(job.uow, _trainer(), train, actor=who.actor.name, at=job.clock.now())

    return start_job(request, "train_predictive_model", body.model_dump(), who, work)


@router.get("/predictive/models")
def list_models(uow: Uow, who: Reader) -> dict[str, Any]:
    """Every trained model's summary, oldest first; ``active`` marks the one scoring leads."""
    items = predictive.list_models(uow)
    return {"total": len(items), "items": items}


@router.get("/predictive/models/{model_id}")
def model_card(model_id: ModelId, uow: Uow, who: Reader) -> dict[str, Any]:
    """A model's card: data window, label, features used and excluded (with why), ROC and PR AUC, lift,
    calibration, the models compared and the curves (``model report --model ID --json``)."""
    return predictive.model_card(uow, model_id)


@router.get("/predictive/report")
def model_report(
    uow: Uow,
    who: Reader,
    model: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Model id (default: the active one)")
    ] = None,
) -> dict[str, Any]:
    """The model card of the active model (else the latest trained): ``model report --json``."""
    return predictive.model_card(uow, model)


@router.post("/predictive/models/{model_id}/activate", status_code=202, responses=JOB_ACCEPTED)
def activate_model(
    request: Request,
    model_id: ModelId,
    who: Writer,
    preview: Annotated[
        bool,
        Query(description="Only count the leads it would promote now against today's hand-off capacity "
                          "(a job); store nothing"),
    ] = False,
) -> JSONResponse:  # fmt: skip
    """Make a trained model the active one, score every lead with it, promote the leads the scoring model's
    predictive MQL criteria now call for and route them (a job; administrators and marketing; audited).
    A model whose stored document no longer matches its hash fails the job. With ``preview=true`` the job
    only counts the promotions activating it would cause now."""
    predictive.check_model_role(who.actor, "activate")
    with container(request).uow() as uow:
        if uow.predictive.get_model(model_id) is None:
            raise NotFound(f"no predictive model with id {model_id}")
    if preview:

        def count(job: Container) -> dict[str, Any]:
            with job.uow() as read:
                shown = activation.preview_predictive_activation(
                    read, _trainer(), model_id, load=job.scoring_loader(), at=job.clock.now()
                )
            return {"model_id": model_id, "activated": False, "preview": shown.as_dict(),
                    "summary": shown.describe()}  # fmt: skip

        return start_job(request, "preview_predictive_activation", {"model_id": model_id}, who, count)

    def work(job: Container) -> dict[str, Any]:
        return activation.activate_predictive(
            job.writer, _trainer(), model_id, load=job.scoring_loader(), at=job.clock.now(), actor=who.actor
        )

    return start_job(request, "activate_predictive_model", {"model_id": model_id}, who, work)


@router.get("/leads/{ref}/predictive", tags=["leads"])
def explain_prediction(
    request: Request,
    ref: Ref,
    uow: Uow,
    who: Reader,
    top: Annotated[int, Query(ge=1, le=20, description="Factors per direction")] = 3,
) -> dict[str, Any]:
    """The active model's probability for the lead with its strongest factors both ways, in words
    (``model explain ID --json``); 404 while no model is active."""
    c: Container = request.app.state.container
    lead = lead_service.resolve_lead(uow, ref)
    assert lead.id is not None
    return predictive.explain_lead(c.uow, _trainer(), lead.id, at=c.clock.now(), top=top)
