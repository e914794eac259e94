"""``leadstage score ...``: activate a scoring model, score every lead, explain a lead's scores."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from leadstage.adapters.scoring_yaml import load_yaml
from leadstage.cli.app import STATE, AsOpt, JsonOpt, app, emit_json, err, progress_bar
from leadstage.domain.errors import ValidationError
from leadstage.services import leads as lead_service
from leadstage.services import scoring
from leadstage.services.ports import LeadFilter

score_app = typer.Typer(help="Scoring models: activate, run, explain.", no_args_is_help=True)
app.add_typer(score_app, name="score")


def yaml_loader(text: str, name: str) -> tuple[Any, Any]:
    return load_yaml(text, source=name)


def read_model_file(path: Path) -> str:
    if not path.is_file():
        raise ValidationError(f"{path}: no such scoring model file", field="file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{path}: not UTF-8 text ({exc})", field="file") from None


@score_app.command("activate")
def score_activate(
    file: Annotated[Path, typer.Argument(help="Scoring model YAML.")],
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate a model, store it as a new version, make it active and rescore every lead."""
    c = STATE.get()
    source = read_model_file(file)
    with c.uow() as uow:
        actor = lead_service.resolve_actor(uow, as_user)
        stored, model = scoring.activate_model(
            uow, source, name=str(file), load=yaml_loader, actor=actor, at=c.clock.now()
        )
        uow.commit()
    with c.uow() as uow:
        total = uow.leads.search(LeadFilter(limit=1))[0]
    with progress_bar("scoring", max(1, total)) as bar:
        report = scoring.score_all(c.uow, load=yaml_loader, at=c.clock.now(), progress=bar)
    result = {
        "model_id": stored.id,
        "version": stored.version,
        "name": model.name,
        "warnings": list(model.warnings),
        "scored": report.leads,
        "changed": report.changed,
        "promoted": report.promoted,
    }
    if as_json:
        emit_json(result)
        return
    for warning in model.warnings:
        err.print(f"[yellow]warning[/]: {warning}")
    err.print(
        f"scoring model {model.name!r} is active as version {stored.version}; {report.leads} leads scored, "
        f"{report.changed} changed grade or level, {report.promoted} promoted to MQL"
    )


@score_app.command("run")
def score_run(as_json: JsonOpt = False) -> None:
    """Recompute every lead's fit and engagement with the active model (and promote MQLs)."""
    c = STATE.get()
    with c.uow() as uow:
        total = uow.leads.search(LeadFilter(limit=1))[0]
    with progress_bar("scoring", max(1, total)) as bar:
        report = scoring.score_all(c.uow, load=yaml_loader, at=c.clock.now(), progress=bar)
    result = {
        "leads": report.leads,
        "activities": report.activities,
        "changed": report.changed,
        "promoted": report.promoted,
        "model_version": report.model_version,
        "seconds": report.seconds,
    }
    if as_json:
        emit_json(result)
    else:
        err.print(
            f"{report.leads} leads scored from {report.activities} activities in {report.seconds:.1f} s; "
            f"{report.changed} changed grade or level; {report.promoted} promoted to MQL"
        )


@score_app.command("explain")
def score_explain(ref: Annotated[str, typer.Argument(metavar="ID")], as_json: JsonOpt = False) -> None:
    """Show where a lead's fit and engagement come from, rule by rule (decayed as of now)."""
    c = STATE.get()
    with c.uow() as uow:
        doc = scoring.explain(uow, ref, load=yaml_loader, as_of=c.clock.now())
    if as_json:
        doc.pop("history", None)
        doc.pop("model", None)
        doc.pop("mql_criteria_met", None)
        emit_json(doc)
        return
    out = Console()
    fit, eng = doc["fit"], doc["engagement"]
    out.print(
        f"[bold]Lead {doc['lead_id']}[/]: priority [bold]{doc['priority']}[/] (model v{doc['model']['version']}, "
        f"as of {doc['as_of']})"
    )
    table = Table(title=f"fit {fit['score']:g} -> grade {fit['grade']}")
    table.add_column("rule")
    table.add_column("points", justify="right")
    for line in fit["contributions"]:
        table.add_row(line["rule"], f"{line['points']:g}")
    out.print(table)
    if fit["excluded_by"]:
        out.print(
            f"[red]excluded[/] by {fit['excluded_by']} (suggested disqualification: {fit['exclusion_reason']})"
        )
    table = Table(title=f"engagement {eng['score']:.2f} -> level {eng['level']}")
    for name in ("rule", "points", "decayed points"):
        table.add_column(name, justify="left" if name == "rule" else "right")
    for line in eng["contributions"]:
        table.add_row(line["rule"], f"{line['points']:g}", f"{line['decayed_points']:.2f}")
    out.print(table)
    met = doc["mql_criteria_met"]
    out.print("MQL criteria met: " + ("; ".join(met) if met else "none"))
