"""``leadstage model``: train, activate, report and explain predictive models (issue 6, R22)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from leadstage.bootstrap import Container
from leadstage.cli.app import STATE, AsOpt, JsonOpt, app, emit_json, err
from leadstage.cli.scoring import forked_map, show_preview, worker
from leadstage.domain.errors import ValidationError
from leadstage.domain.predictive import (
    DEFAULT_SALES_ASSIGNED_FIELDS,
    MIN_LABELLED,
    MIN_POSITIVES,
    LabelSpec,
    TamperedModel,
)
from leadstage.services import leads as lead_service
from leadstage.services import predictive, scoring
from leadstage.services.ports import ModelTrainer

model_app = typer.Typer(
    help="Predictive lead scoring: train, activate, report, explain.", no_args_is_help=True
)
app.add_typer(model_app, name="model")


def _trainer() -> ModelTrainer:
    # imported when used: scikit-learn, LightGBM and SciPy take seconds to import, which every other
    # command (an import, `score run`) would pay at start-up
    from leadstage.adapters.ml import SklearnLightGbmTrainer

    return SklearnLightGbmTrainer()


# ---- scoring batches of leads in several processes -----------------------------------------------------


def _worker_batch(task: tuple[Sequence[int], int, datetime]) -> int:
    lead_ids, model_id, at = task
    return predictive.score_batch(worker().uow, _trainer(), lead_ids, model_id=model_id, at=at)


def batch_runner(c: Container, *, workers: int | None = None) -> predictive.ScoreRunner:
    """Score batches in processes (each its own connection; SQLite serialises their writes), or here when
    there is one batch. The model was loaded (and verified) here first, so forked workers inherit it."""

    def run(batches: Sequence[Sequence[int]], model_id: int, at: datetime) -> Iterator[int]:
        count = min(len(batches), workers or max(1, min(4, os.cpu_count() or 1)))
        if count <= 1:
            for lead_ids in batches:
                yield predictive.score_batch(c.uow, _trainer(), lead_ids, model_id=model_id, at=at)
            return
        yield from forked_map(c, count, _worker_batch, [(b, model_id, at) for b in batches])

    return run


@model_app.command("train")
def model_train(
    label: Annotated[
        str | None,
        typer.Option("--label", help="Lead property holding the outcome (default: the lifecycle)."),
    ] = None,
    positive: Annotated[
        str | None, typer.Option("--positive", help="The label value that means converted (e.g. 1).")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="Column never to use (repeatable).")
    ] = None,
    include: Annotated[
        list[str] | None,
        typer.Option("--include", help="Keep a column the leakage guard would drop (repeatable)."),
    ] = None,
    cv: Annotated[
        int | None, typer.Option("--cv", help="K-fold cross-validation (default: time split or 5).")
    ] = None,
    stage: Annotated[
        str, typer.Option("--stage", help="Lifecycle label: the stage that counts as converted.")
    ] = "customer",
    window_days: Annotated[
        int, typer.Option("--window-days", help="Lifecycle label: days after becoming a lead to reach it.")
    ] = 180,
    min_leads: Annotated[
        int, typer.Option("--min-leads", help="Refuse with fewer labelled leads.")
    ] = MIN_LABELLED,
    min_positives: Annotated[
        int, typer.Option("--min-positives", help="Refuse with fewer positive leads.")
    ] = MIN_POSITIVES,
    sales_fields: Annotated[
        Path | None,
        typer.Option(
            "--sales-fields", help="Text file: names of sales-assigned fields to exclude, one per line."
        ),
    ] = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Learn the probability of conversion from history; the result is a candidate until activated."""
    if positive is not None and label is None:
        raise ValidationError("--positive: needs --label (the property it is a value of)", field="positive")
    if stage not in ("mql", "sql", "opportunity", "customer", "evangelist"):
        raise ValidationError(
            f"--stage: one of mql, sql, opportunity, customer, evangelist; got {stage!r}", field="stage"
        )
    if window_days < 1:
        raise ValidationError("--window-days: at least 1", field="window-days")
    fields: tuple[str, ...] = DEFAULT_SALES_ASSIGNED_FIELDS
    if sales_fields is not None:
        try:
            text = sales_fields.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValidationError(
                f"--sales-fields: cannot read {sales_fields}: {exc}", field="sales-fields"
            ) from exc
        fields = tuple(
            line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
        )
    c = STATE.get()
    with c.uow() as uow:
        actor = lead_service.resolve_actor(uow, as_user)
    predictive.check_model_role(actor)
    request = predictive.TrainRequest(
        label=LabelSpec(property=label, positive=positive, stage=stage, window_days=window_days),
        exclude=tuple(exclude or ()),
        include=tuple(include or ()),
        cv=cv,
        min_labelled=min_leads,
        min_positives=min_positives,
        sales_fields=fields,
    )
    err.print("training: comparing logistic regression and LightGBM ...")
    result = predictive.train_model(c.uow, _trainer(), request, actor=actor.name, at=c.clock.now())
    if as_json:
        emit_json(result)
        return
    err.print(
        f"model {result['model_id']} (v{result['version']}, {result['kind']}): ROC AUC {result['auc']}, "
        f"PR AUC {result['pr_auc']}, top-decile lift {result['lift_top_decile']} ({result['validation']}; "
        f"{result['n_rows']} leads, {result['n_positive']} positive)"
    )
    err.print(f"compared: {result['models_compared']}")
    for item in result["features_excluded"]:
        err.print(f"  excluded {item['name']!r}: {item['reason']}")
    err.print(f"candidate stored; activate it with `leadstage model activate {result['model_id']}`")


@model_app.command("activate")
def model_activate(
    model_id: Annotated[int, typer.Argument(metavar="ID")],
    preview: Annotated[
        bool, typer.Option("--preview", help="Only show how many leads it would promote now; store nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation on a terminal.")] = False,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show how many leads the model would promote now (through the scoring model's predictive MQL
    criteria) against today's hand-off capacity, then make it the active one, score every lead with it,
    promote and route."""
    from leadstage.cli.scoring import yaml_loader
    from leadstage.services.activation import activate_predictive, preview_predictive_activation

    c = STATE.get()
    with c.uow() as uow:
        actor = lead_service.resolve_actor(uow, as_user)
        predictive.check_model_role(actor, "activate")
        shown = preview_predictive_activation(uow, _trainer(), model_id, load=yaml_loader, at=c.clock.now())
    if show_preview(shown, f"predictive model {model_id}", {"model_id": model_id}, preview=preview, yes=yes,
                    as_json=as_json):  # fmt: skip
        return
    result = activate_predictive(
        c.writer,
        _trainer(),
        model_id,
        load=yaml_loader,
        at=c.clock.now(),
        actor=actor,
        runner=batch_runner(c),
    )
    result["preview"] = shown.as_dict()
    if as_json:
        emit_json(result)
    else:
        err.print(
            f"model {model_id} is active; {result['scored']} leads scored, {result['promoted']} promoted to "
            f"MQL ({result['routed']} routed, {result['queued']} waiting in team queues)"
        )


@model_app.command("score")
def model_score(
    all_leads: Annotated[
        bool, typer.Option("--all", help="Every lead, not only new and changed ones.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Score new and changed leads with the active model (import does this by itself)."""
    c = STATE.get()
    scored = predictive.score_leads(
        c.uow, _trainer(), at=c.clock.now(), changed_only=not all_leads, runner=batch_runner(c)
    )
    promoted = promote_on_predictive(c) if scored else 0
    if as_json:
        emit_json({"scored": scored, "promoted": promoted})
    else:
        err.print(f"{scored} leads scored, {promoted} promoted to MQL")


@model_app.command("report")
def model_report(
    model_id: Annotated[
        int | None, typer.Option("--model", help="Model id (default: the active one).")
    ] = None,
    png: Annotated[
        Path | None, typer.Option("--png", help="Write ROC, gains and calibration curves here.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The model card: data window, label, features used and excluded, ROC/PR AUC, lift, calibration."""
    c = STATE.get()
    with c.uow() as uow:
        card = predictive.model_card(uow, model_id)
    if png is not None:
        from leadstage.adapters.charts import write_model_card_chart  # (matplotlib: imported when used)

        write_model_card_chart(card, png)
        err.print(f"chart written to {png}")
    if as_json:
        emit_json({k: v for k, v in card.items() if k != "curves"} | {"curves": card["curves"]})
        return
    out = Console()
    out.print(
        f"[bold]Model {card['model_id']}[/] v{card['version']} ({card['kind']}), "
        f"{'active' if card['active'] else 'candidate'}; label: {card['label']['definition']}"
    )
    window = card["data_window"]
    out.print(
        f"data: {card['n_rows']} leads created {window['leads_created_from']} to {window['leads_created_to']}; "
        f"{card['n_positive']} positive; {window['snapshot']}"
    )
    out.print(
        f"{card['validation']}: ROC AUC {card['auc']}, PR AUC {card['pr_auc']}, top-decile lift "
        f"{card['lift_top_decile']}, Brier {card['brier']}; compared {card['models_compared']}"
    )
    out.print("features used: " + ", ".join(f["name"] for f in card["features_used"]))
    table = Table(title="features excluded")
    table.add_column("column")
    table.add_column("why")
    for item in card["features_excluded"] + card["features_kept_by_include"]:
        table.add_row(item["name"], item["reason"])
    out.print(table)
    cal = Table(title="calibration")
    for name in ("predicted", "observed", "leads"):
        cal.add_column(name)
    for b in card["calibration"]:
        cal.add_row(f"{b['predicted']:.3f}", f"{b['observed']:.3f}", str(b["leads"]))
    out.print(cal)


@model_app.command("explain")
def model_explain(
    ref: Annotated[str, typer.Argument(metavar="LEAD", help="Internal id, external id or email.")],
    top: Annotated[int, typer.Option(min=1, max=20, help="Factors per direction.")] = 3,
    as_json: JsonOpt = False,
) -> None:
    """Why the active model gives a lead its probability: strongest positive and negative factors."""
    c = STATE.get()
    with c.uow() as uow:
        lead = lead_service.resolve_lead(uow, ref)
    assert lead.id is not None
    doc: dict[str, Any] = predictive.explain_lead(c.uow, _trainer(), lead.id, at=c.clock.now(), top=top)
    if as_json:
        emit_json(doc)
        return
    out = Console()
    out.print(
        f"lead {lead.id}: probability {doc['probability']:.1%}, decile {doc['decile']} (model {doc['model_id']})"
    )
    for item in doc["positive"]:
        out.print(f"  [green]+[/] {item['text']}")
    for item in doc["negative"]:
        out.print(f"  [red]-[/] {item['text']}")


def score_with_active_model(c: Container) -> int:
    """Score new and changed leads with the active predictive model, if there is one (after imports)."""
    with c.uow() as uow:
        if uow.predictive.active_model() is None:
            return 0
    try:
        scored = predictive.score_leads(
            c.uow, _trainer(), at=c.clock.now(), changed_only=True, runner=batch_runner(c)
        )
    except TamperedModel as exc:  # the import itself is done and stays; say why nothing was scored
        err.print(f"[yellow]warning[/]: predictive scores not updated: {exc}")
        return 0
    if scored:
        promoted = promote_on_predictive(c)
        err.print(f"predictive model: {scored} new or changed leads scored, {promoted} promoted to MQL")
    return scored


def promote_on_predictive(c: Container) -> int:
    """Promote leads that now meet an MQL criterion reading the predictive score, and route them."""
    from leadstage.cli.routing import route_now
    from leadstage.cli.scoring import yaml_loader

    promoted = scoring.promote_on_predictive(c.writer, load=yaml_loader, at=c.clock.now())
    if promoted:
        route_now(c)
    return promoted
