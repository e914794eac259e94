"""``leadstage score ...``: activate a scoring model, score every lead, explain a lead's scores."""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from leadstage.adapters.scoring_yaml import load_yaml
from leadstage.bootstrap import Container, build
from leadstage.cli.app import STATE, AsOpt, JsonOpt, app, emit_json, err, progress_bar
from leadstage.config import Settings
from leadstage.domain.errors import ValidationError
from leadstage.services import audit, scoring
from leadstage.services import leads as lead_service
from leadstage.services.activation import ActivationPreview
from leadstage.services.ports import LeadFilter

score_app = typer.Typer(help="Scoring models: activate, run, explain, backtest.", no_args_is_help=True)
app.add_typer(score_app, name="score")


def yaml_loader(text: str, name: str) -> tuple[Any, Any]:
    return load_yaml(text, source=name)


# ---- scoring ranges of leads in several processes ------------------------------------------------------

_WORKER: Container | None = None
T = TypeVar("T")
R = TypeVar("R")


def _worker_init(settings: Settings) -> None:
    global _WORKER
    _WORKER = build(settings)
    gc.freeze()  # what start-up built lives as long as the worker: no collection need look at it again


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Score a range without the cyclic garbage collector: a range builds a few hundred thousand
    short-lived objects without cycles (reference counting frees them), and the collector's passes over
    them cost about a fifth of the time. It runs again between ranges."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _worker_score(task: tuple[tuple[int, int], datetime, bool]) -> scoring.ScoreRunReport:
    id_range, at, promote = task
    with _no_cycle_collection():
        return scoring.score_range(worker().uow, id_range, load=yaml_loader, at=at, promote=promote)


def process_runner(c: Container, *, workers: int, at: datetime, promote: bool) -> scoring.RangeRunner:
    """Score ranges in ``workers`` processes (each its own connection; SQLite serialises their commits)."""

    def run(ranges: Sequence[tuple[int, int]]) -> Iterator[scoring.ScoreRunReport]:
        if workers <= 1 or len(ranges) < 2:
            for id_range in ranges:
                with _no_cycle_collection():
                    report = scoring.score_range(c.writer, id_range, load=yaml_loader, at=at, promote=promote)
                yield report
            return
        yield from forked_map(c, workers, _worker_score, [(r, at, promote) for r in ranges])

    return run


def worker() -> Container:
    """The container of this worker process (built once by the pool's initializer)."""
    assert _WORKER is not None
    return _WORKER


def forked_map(c: Container, workers: int, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[R]:
    """``fn`` over ``tasks`` in ``workers`` forked processes, each with its own container (:func:`worker`),
    results in order. What was built here (a loaded, verified model) is inherited by the fork."""
    c.engine.dispose()  # no pooled connection may cross the fork
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_worker_init, initargs=(c.settings,)
    ) as pool:
        yield from pool.map(fn, tasks)


def rescore_all(c: Container, *, workers: int | None = None) -> scoring.ScoreRunReport:
    """Score every lead with the active model, with a progress bar, in processes for large databases."""
    with c.uow() as uow:
        total = uow.leads.search(LeadFilter(limit=1))[0]
    at = c.clock.now()
    runner = process_runner(c, workers=workers or default_workers(total), at=at, promote=True)
    with progress_bar("scoring", max(1, total)) as bar:
        report = scoring.score_all(c.writer, load=yaml_loader, at=at, progress=bar, runner=runner)
    from leadstage.cli.routing import route_now  # new MQLs are routed at once

    route_now(c)
    return report


def default_workers(leads: int) -> int:
    return 1 if leads < 20_000 else max(1, min(4, os.cpu_count() or 1))


def read_model_file(path: Path) -> str:
    if not path.is_file():
        raise ValidationError(f"{path}: no such scoring model file", field="file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{path}: not UTF-8 text ({exc})", field="file") from None


def show_preview(
    shown: ActivationPreview, what: str, ident: dict[str, Any], *, preview: bool, yes: bool, as_json: bool
) -> bool:
    """Say what activating a model would promote now; True when that was all (``--preview``). Otherwise a
    terminal is asked to confirm when it would promote anything (unless ``--yes``)."""
    if preview:
        if as_json:
            emit_json({**ident, "activated": False, "preview": shown.as_dict()})
        else:
            err.print(f"{what} (not activated): {shown.describe()}")
        return True
    if not as_json:
        err.print(f"{what}: {shown.describe()}")
        if shown.would_promote and not yes and sys.stdin.isatty() and not typer.confirm("activate it?"):
            raise typer.Abort()
    return False


@score_app.command("activate")
def score_activate(
    file: Annotated[Path, typer.Argument(help="Scoring model YAML.")],
    preview: Annotated[
        bool, typer.Option("--preview", help="Only show how many leads it would promote now; store nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation on a terminal.")] = False,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate a model, show how many leads it would promote now against today's hand-off capacity, then
    store it as a new version, make it active and rescore every lead."""
    from leadstage.services.activation import preview_activation

    c = STATE.get()
    source = read_model_file(file)
    with c.uow() as uow:
        lead_service.resolve_actor(uow, as_user)
        model = scoring.compile_model(
            source,
            name=str(file),
            load=yaml_loader,
            known_properties={k: v.value for k, v in uow.properties.definitions("lead").items()},
            activity_types=uow.activities.known_types(),
        )
        shown = preview_activation(uow, model, at=c.clock.now())
    if show_preview(shown, f"scoring model {model.name!r}", {"name": model.name}, preview=preview, yes=yes,
                    as_json=as_json):  # fmt: skip
        return
    with c.uow(write=True) as uow:
        actor = lead_service.resolve_actor(uow, as_user)
        stored, model = scoring.activate_model(
            uow, source, name=str(file), load=yaml_loader, actor=actor, at=c.clock.now()
        )
        audit.record(
            uow, actor, "scoring_model.activate", at=c.clock.now(), target=model.name, version=stored.version
        )
        uow.commit()
    report = rescore_all(c)
    result = {
        "model_id": stored.id,
        "version": stored.version,
        "name": model.name,
        "warnings": list(model.warnings),
        "preview": shown.as_dict(),
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
def score_run(
    workers: Annotated[
        int | None, typer.Option(min=1, max=32, help="Processes (default: the cores, for large databases).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Recompute every lead's fit and engagement with the active model (and promote MQLs)."""
    report = rescore_all(STATE.get(), workers=workers)
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


@score_app.command("backtest")
def score_backtest(
    file: Annotated[Path, typer.Argument(help="Candidate scoring model YAML (validated, never stored).")],
    date_from: Annotated[
        str | None, typer.Option("--from", help="First day, ISO date (default: the start of the history).")
    ] = None,
    date_to: Annotated[
        str | None, typer.Option("--to", help="Last day, ISO date (default: the end of the history).")
    ] = None,
    capacity: Annotated[
        int | None,
        typer.Option("--capacity", help="Leads a week sales can work: propose a minimum engagement score."),
    ] = None,
    png: Annotated[Path | None, typer.Option("--png", help="Also write a chart to this PNG file.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Replay history with a candidate model beside the active one: weekly MQLs, precision, recall."""
    from leadstage.domain.backtest import parse_day
    from leadstage.services.backtest import backtest

    start, end = parse_day(date_from, "--from"), parse_day(date_to, "--to")
    source = read_model_file(file)
    c = STATE.get()
    with c.uow() as uow:
        total = uow.leads.search(LeadFilter(limit=1))[0]
    with progress_bar("backtest", max(1, total)) as bar:
        doc = backtest(
            c.uow,
            source,
            name=str(file),
            load=yaml_loader,
            start=start,
            end=end,
            capacity=capacity,
            progress=bar,
        )
    if png is not None:
        from leadstage.adapters.charts import write_backtest_chart

        write_backtest_chart(doc, png)
    for warning in doc["models"]["candidate"]["warnings"]:
        err.print(f"[yellow]warning[/]: {warning}")
    if doc["models"]["active"] is None:
        err.print("no active scoring model: only the candidate is shown (the active side is null)")
    if png is not None:
        err.print(f"chart written to {png}")
    if as_json:
        emit_json(doc)
        return
    _print_backtest(doc)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _print_backtest(doc: dict[str, Any]) -> None:
    out = Console()
    models = doc["models"]
    active = models["active"]
    capacity = doc["capacity"]
    shows_cap = capacity is not None and capacity["threshold"] is not None
    title = f"Backtest {doc['from']} .. {doc['to']}: candidate {models['candidate']['name']!r}"
    title += f" vs active {active['name']!r} (v{active['version']})" if active else " (no active model)"
    sides = ("candidate", "active") if active else ("candidate",)
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("ISO week", no_wrap=True)
    for side in sides:
        table.add_column(f"{side}\nMQLs", justify="right")
        table.add_column("\n->SQL", justify="right")
        table.add_column("\n->cust", justify="right")
    if shows_cap:
        table.add_column(f"cap.\n>={capacity['threshold']:g}", justify="right")
    for i, week in enumerate(doc["weeks"]):
        cells = [week["week"]]
        for side in sides:
            fig = week[side]
            cells += [str(fig["mqls"]), _pct(fig["precision_sql"]), _pct(fig["precision_customer"])]
        if shows_cap:
            cells.append(str(capacity["weeks"][i]["mqls"]))
        table.add_row(*cells)
    out.print(table)
    totals = Table(
        title=f"Totals over {len(doc['weeks'])} weeks ({doc['leads']} leads)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for name in ("model", "MQLs", "per week", "-> SQL", "-> customer", "customers caught"):
        totals.add_column(name, justify="left" if name == "model" else "right")
    rows = [("candidate", doc["totals"]["candidate"])]
    if active:
        rows.append(("active", doc["totals"]["active"]))
    for label, t in rows:
        totals.add_row(
            label,
            str(t["mqls"]),
            f"{t['mean_weekly_mqls']:g}",
            _pct(t["precision_sql"]),
            _pct(t["precision_customer"]),
            f"{t['customers_caught']} of {t['customers_won']} ({_pct(t['recall_customer'])})",
        )
    out.print(totals)
    t = doc["totals"]["candidate"]
    out.print(
        f"The candidate would have sent sales {t['mean_weekly_mqls']:g} MQLs a week; "
        f"{_pct(t['precision_sql'])} of them became SQLs, {_pct(t['precision_customer'])} customers; "
        f"it would have caught {_pct(t['recall_customer'])} of the customers won in the range before they won."
    )
    if capacity is None:
        return
    if capacity["threshold"] is None:
        out.print(
            f"Capacity {capacity['per_week']} lead(s) a week: the candidate already fits "
            f"({t['mean_weekly_mqls']:g} a week on average); no extra engagement threshold is needed."
        )
        return
    out.print(
        f"Capacity {capacity['per_week']} lead(s) a week: add a minimum engagement score of "
        f"[bold]{capacity['threshold']:g}[/] to the MQL criteria -> {capacity['mean_weekly_mqls']:g} MQLs "
        f"a week, {_pct(capacity['precision_sql'])} to SQL, {_pct(capacity['precision_customer'])} to "
        f"customer, recall {_pct(capacity['recall_customer'])}. (Raise the lower bound of the engagement "
        "level the criteria use to this score to apply it.)"
    )
