"""Settings for the two scores: the scoring model (YAML editor: check with errors naming the line and key,
backtest beside the active model, activate and rescore every lead) and the predictive model (model cards,
activation). Administrators and marketing only, as ``score activate`` and ``model activate``.

Rescoring, backtests and predictive activation read every lead: they run as jobs (``web/jobs.py``) and
the page shows their progress and result.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse

from leadstage.bootstrap import Container
from leadstage.domain.errors import NotFound, ValidationError
from leadstage.domain.leads import MAX_ID
from leadstage.domain.stages import Role
from leadstage.services import activation, audit, backtest, predictive, scoring
from leadstage.services.ports import UnitOfWork
from leadstage.web import charts, jobs
from leadstage.web.base import Viewer, WebUser, container, render, require
from leadstage.web.settings import open_page, problem

router = APIRouter(include_in_schema=False)
SOURCE_NAME = "scoring model"  # how errors name the text in the editor ("scoring model: line 3, ...")
MODEL_ROLES = (Role.MARKETING,)  # and administrators: scoring.activate_model and predictive.activate_model


def _check(uow: UnitOfWork, c: Container, source: str) -> dict[str, Any]:
    """Validate like ``score activate`` (known properties and activity types); the model's outline."""
    known = {k: v.value for k, v in uow.properties.definitions("lead").items()}
    model = scoring.compile_model(
        source, name=SOURCE_NAME, load=c.scoring_loader(), known_properties=known,
        activity_types=uow.activities.known_types(),
    )  # fmt: skip
    return {**scoring.summary(model), "warnings": list(model.warnings)}


def _scoring_page(
    request: Request, user: WebUser, *, source: str | None = None, version: int | None = None,
    status: int = 200, **extra: Any,
) -> HTMLResponse:  # fmt: skip
    context = open_page(user, "scoring")
    c = container(request)
    with c.uow() as uow:
        models = uow.scoring.models()
        active = uow.scoring.active_model()
        shown = next((m for m in models if m.version == version), None) if version else active
        if version and shown is None:
            raise NotFound(f"no scoring model version {version}")
        compiled = scoring.load_active(uow, c.scoring_loader())  # compiled once per process and version
        context["active_outline"] = scoring.summary(compiled[1]) if compiled is not None else None
    context.update(
        models=sorted(models, key=lambda m: -m.version),
        active=active,
        shown=shown,
        source=source if source is not None else (shown.source if shown else ""),
        values=extra.pop("values", {}),
    )
    context.update(extra)
    return render(request, "settings_scoring.html", context, user=user, status=status)


@router.get("/settings/scoring")
def scoring_page(
    request: Request, user: Viewer, version: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None
) -> HTMLResponse:
    """The active model in the editor (or an older version's text, to start from it)."""
    return _scoring_page(request, user, version=version)


def _day(text: str, field: str) -> date | None:
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(f"{field}: {text!r} is not a date (YYYY-MM-DD)", field=field) from None


@router.post("/settings/scoring")
def scoring_action(
    request: Request,
    user: Viewer,
    source: Annotated[str, Form(max_length=200_000)] = "",
    action: Annotated[str, Form(max_length=20)] = "check",
    capacity: Annotated[str, Form(max_length=10)] = "",
    date_from: Annotated[str, Form(alias="from", max_length=10)] = "",
    date_to: Annotated[str, Form(alias="to", max_length=10)] = "",
) -> HTMLResponse:
    """Check the model, backtest it beside the active one (a job), count the promotions activating it would
    cause now against the hand-off capacity left today (a job), or activate it and rescore (a job).
    An invalid model is refused with the line and key, and the active model stays as it was."""
    open_page(user, "scoring")
    require(user, *MODEL_ROLES, what="change scoring models")
    c = container(request)
    values = {"capacity": capacity, "from": date_from, "to": date_to}
    try:
        if action == "check":
            with c.uow() as uow:
                outline = _check(uow, c, source)
            return _scoring_page(request, user, source=source, checked=outline, values=values)
        if action == "backtest":
            start, end = _day(date_from, "from"), _day(date_to, "to")
            per_week = None
            if capacity.strip():
                if not capacity.strip().isdigit() or int(capacity) < 1:
                    raise ValidationError(f"capacity: leads a week, a whole number from 1; got {capacity!r}",
                                          field="capacity")  # fmt: skip
                per_week = int(capacity)
            with c.uow() as uow:
                outline = _check(uow, c, source)  # invalid: said now, not in the job

            def replay(job: Container) -> dict[str, Any]:
                return backtest.backtest(job.uow, source, name=SOURCE_NAME, load=job.scoring_loader(),
                                         start=start, end=end, capacity=per_week)  # fmt: skip

            params = {"name": outline["name"], "from": date_from, "to": date_to, "capacity": per_week}
            job_id = jobs.start(request, user, "backtest", params, replay)
            return _scoring_page(request, user, source=source, checked=outline, job_id=job_id, values=values)
        if action == "preview":
            with c.uow() as uow:
                outline = _check(uow, c, source)  # invalid: said now, not in the job

            def count(job: Container) -> dict[str, Any]:
                with job.uow() as uow:
                    model = scoring.compile_model(source, name=SOURCE_NAME, load=job.scoring_loader())
                    shown = activation.preview_activation(uow, model, at=job.clock.now())
                return {"name": outline["name"], **shown.as_dict(), "summary": shown.describe()}

            job_id = jobs.start(request, user, "preview_activation", {"name": outline["name"]}, count)
            return _scoring_page(request, user, source=source, checked=outline, job_id=job_id, values=values)
        if action == "activate":
            now = c.clock.now()
            with c.uow(write=True) as uow:
                stored, model = scoring.activate_model(
                    uow, source, name=SOURCE_NAME, load=c.scoring_loader(), actor=user.actor, at=now
                )
                audit.record(uow, user.actor, "scoring_model.activate", at=now, target=model.name,
                             version=stored.version, channel="web")  # fmt: skip
                uow.commit()

            def rescore(job: Container) -> dict[str, Any]:
                done = activation.rescore_and_route(job.writer, load=job.scoring_loader(), at=job.clock.now())
                return {"version": stored.version, "name": model.name, **done}

            job_id = jobs.start(request, user, "rescore", {"version": stored.version}, rescore)
            notice = (
                f"Version {stored.version} ({model.name}) is active; every lead is being rescored with it."
            )
            return _scoring_page(request, user, job_id=job_id, notice=notice)
        raise ValidationError(
            f"unknown action {action!r}: check, backtest, preview or activate", field="action"
        )
    except ValidationError as exc:
        title = (
            "Not activated: the active model stays as it was."
            if action in ("preview", "activate")
            else "Not valid."
        )
        return _scoring_page(
            request, user, source=source, status=422, error=problem(exc, source, title), values=values
        )


# ---- predictive model ----------------------------------------------------------------------------------


@router.get("/settings/predictive")
def predictive_page(
    request: Request, user: Viewer, model: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None
) -> HTMLResponse:
    """Every trained model, and the card of the chosen one (default: the active one, else the latest)."""
    return _predictive_page(request, user, model)


def _predictive_page(request: Request, user: WebUser, model: int | None, **extra: Any) -> HTMLResponse:
    context = open_page(user, "predictive")
    with container(request).uow() as uow:
        models = predictive.list_models(uow)
        card = predictive.model_card(uow, model) if models or model is not None else None
    context.update(models=list(reversed(models)), card=card)
    if card is not None:
        cal = card.get("calibration") or []
        context["calibration_chart"] = charts.bar_chart(
            [f"{b['predicted']:.0%} predicted" for b in cal],
            [
                charts.Series("predicted", [b["predicted"] for b in cal], charts.percent, cls="alt"),
                charts.Series("observed", [b["observed"] for b in cal], charts.percent,
                              notes=[f"{b['leads']:,} leads" for b in cal]),
            ],
        )  # fmt: skip
    context.update(extra)
    return render(request, "settings_predictive.html", context, user=user)


@router.post("/settings/predictive/{model_id}/preview")
def preview_predictive(
    request: Request, user: Viewer, model_id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> HTMLResponse:
    """Before activating: how many leads the model would promote now (a job: it scores the open leads in
    memory), with a button to activate it."""
    _model_to_activate(request, user, model_id)

    def count(job: Container) -> dict[str, Any]:
        from leadstage.adapters.ml import SklearnLightGbmTrainer  # numpy, scikit-learn, LightGBM: only here

        with job.uow() as uow:
            shown = activation.preview_predictive_activation(
                uow, SklearnLightGbmTrainer(), model_id, load=job.scoring_loader(), at=job.clock.now()
            )
        return {"model_id": model_id, **shown.as_dict(), "summary": shown.describe()}

    job_id = jobs.start(request, user, "preview_predictive_activation", {"model_id": model_id}, count)
    return _predictive_page(request, user, model_id, job_id=job_id)


@router.post("/settings/predictive/{model_id}/activate")
def activate_predictive(
    request: Request, user: Viewer, model_id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> HTMLResponse:
    """Make a trained model the active one, score every lead with it, promote and route (a job; audited)."""
    _model_to_activate(request, user, model_id)

    def activate(job: Container) -> dict[str, Any]:
        from leadstage.adapters.ml import SklearnLightGbmTrainer  # numpy, scikit-learn, LightGBM: only here

        return activation.activate_predictive(job.writer, SklearnLightGbmTrainer(), model_id,
                                              load=job.scoring_loader(), at=job.clock.now(), actor=user.actor)  # fmt: skip

    job_id = jobs.start(request, user, "activate_predictive_model", {"model_id": model_id}, activate)
    return _predictive_page(request, user, model_id, job_id=job_id)


def _model_to_activate(request: Request, user: WebUser, model_id: int) -> None:
    open_page(user, "predictive")
    require(user, *MODEL_ROLES, what="activate predictive models")
    with container(request).uow() as uow:
        if uow.predictive.get_model(model_id) is None:
            raise NotFound(f"no predictive model with id {model_id}")
