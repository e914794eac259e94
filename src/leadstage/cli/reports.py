"""``leadstage report NAME``: funnel, velocity, attribution, feedback and calibration (DOMAIN.md R17, R21)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from leadstage.cli.app import STATE, JsonOpt, app, emit_json, err
from leadstage.domain.analytics import Report, parse_request
from leadstage.services.reports import run_report

REPORT_NAMES = ", ".join(r.value for r in Report)


@app.command("report")
def report(
    name: Annotated[str, typer.Argument(metavar="NAME", help=f"One of: {REPORT_NAMES}.")],
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help="Break down by: source, campaign, content, segment, owner, fit_grade, engagement_level, "
            "priority (attribution: source, campaign, content; calibration: fit_grade, engagement_level, "
            "priority, predictive_decile).",
        ),
    ] = None,
    date_from: Annotated[
        str | None, typer.Option("--from", help="First day, ISO date (default: all history).")
    ] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Last day, ISO date, included.")] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            "--mode", help="cohort (leads created in the range; the default) or period (events in the range)."
        ),
    ] = None,
    per_cycle: Annotated[
        bool, typer.Option("--per-cycle", help="Funnel: count each cycle of a lead as its own attempt.")
    ] = False,
    half_life: Annotated[
        float | None,
        typer.Option(
            "--half-life", help="Attribution: time-decay half-life in days (default 7; 0 < days <= 3650)."
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", help="Feedback: how many hot rejected leads to list (default 20)."),
    ] = None,
    png: Annotated[Path | None, typer.Option("--png", help="Also write a chart to this PNG file.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show marketing what works: funnel, velocity, attribution, feedback or calibration."""
    request = parse_request(
        name,
        by=by,
        date_from=date_from,
        date_to=date_to,
        mode=mode,
        per_cycle=per_cycle,
        half_life_days=half_life,
        limit=limit,
    )
    c = STATE.get()
    with c.uow() as uow:
        doc = run_report(uow, request, as_of=c.clock.now())
    if png is not None:
        from leadstage.adapters.charts import write_report_chart

        write_report_chart(doc, png)
        err.print(f"chart written to {png}")
    if as_json:
        emit_json(doc)
        return
    PRINTERS[request.report](doc)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _days(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _scope(doc: dict[str, Any]) -> str:
    span = f"{doc['from'] or 'start'} .. {doc['to'] or 'now'}"
    return f"{doc['mode']} mode, {span}"


def _print_funnel(doc: dict[str, Any]) -> None:
    out = Console()
    table = Table(title=f"Funnel ({doc['unit']}; {_scope(doc)})", box=box.SIMPLE_HEAD)
    for col in ("stage", "count", "-> next", "median days", "p80 days"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for s in doc["stages"]:
        table.add_row(
            s["stage"],
            str(s["count"]),
            _pct(s["conversion_to_next"]),
            _days(s["median_days"]),
            _days(s["p80_days"]),
        )
    out.print(table)
    if "groups" in doc:
        table = Table(title=f"By {doc['by']}: count per stage (conversion to the next)", box=box.SIMPLE_HEAD)
        table.add_column(doc["by"])
        for s in doc["stages"]:
            table.add_column(s["stage"], justify="right")
        table.add_column("lead->customer", justify="right")
        for g in doc["groups"]:
            cells = [
                f"{s['count']}"
                + (f" ({_pct(s['conversion_to_next'])})" if s["conversion_to_next"] is not None else "")
                for s in g["stages"]
            ]
            table.add_row(g["group"], *cells, _pct(g["lead_to_customer"]))
        out.print(table)


def _print_velocity(doc: dict[str, Any]) -> None:
    out = Console()
    table = Table(title=f"Days in each stage (completed visits; {_scope(doc)})", box=box.SIMPLE_HEAD)
    for col in ("stage", "visits", "median days", "p80 days"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    won = doc["lead_to_customer"]
    for s in [*doc["stages"], {"stage": "lead to customer", "visits": won["count"], **won}]:
        table.add_row(s["stage"], str(s["visits"]), _days(s["median_days"]), _days(s["p80_days"]))
    out.print(table)
    if "groups" in doc:
        table = Table(title=f"By {doc['by']}: median days", box=box.SIMPLE_HEAD)
        table.add_column(doc["by"])
        for s in doc["stages"]:
            table.add_column(s["stage"], justify="right")
        table.add_column("lead to customer", justify="right")
        for g in doc["groups"]:
            cells = [_days(s["median_days"]) for s in g["stages"]]
            table.add_row(g["group"], *cells, _days(g["lead_to_customer"]["median_days"]))
        out.print(table)


def _print_attribution(doc: dict[str, Any]) -> None:
    out = Console()
    o = doc["outcomes"]
    out.print(
        f"[bold]Attribution by {doc['by']}[/] ({_scope(doc)}; time-decay half-life {doc['half_life_days']:g} days): "
        + ", ".join(f"{o[k]['count']} {k} ({o[k]['unattributed']} without a touch)" for k in o)
        + "; revenue "
        + (", ".join(f"{v:,.0f} {c}" for c, v in doc["revenue"].items()) or "none")
    )
    for model, items in doc["models"].items():
        table = Table(title=model, box=box.SIMPLE_HEAD)
        for col in ("value", "MQLs", "SQLs", "customers", "revenue", "customers touched"):
            table.add_column(col, justify="left" if col == "value" else "right")
        for item in items[:15]:
            table.add_row(
                item["value"],
                f"{item['mql']:.1f}",
                f"{item['sql']:.1f}",
                f"{item['customer']:.2f}",
                ", ".join(f"{v:,.0f} {c}" for c, v in item["revenue"].items()) or "-",
                str(item["leads_touched"]["customer"]),
            )
        out.print(table)


def _print_feedback(doc: dict[str, Any]) -> None:
    out = Console()
    out.print(
        f"[bold]Sales feedback[/] ({_scope(doc)}): {doc['mqls']} MQL hand-offs, {doc['reviewed']} reviewed, "
        f"acceptance rate {_pct(doc['acceptance_rate'])} ({doc['accepted']} accepted, {doc['rejected']} rejected; "
        f"{doc['rejected_after_acceptance']} rejected after accepting)"
    )
    table = Table(title="Reasons", box=box.SIMPLE_HEAD)
    for col in ("action", "reason", "count", "share"):
        table.add_column(col, justify="right" if col in ("count", "share") else "left")
    for r in doc["reasons"]:
        table.add_row(r["action"], r["reason"], str(r["count"]), _pct(r["share_of_action"]))
    out.print(table)
    if "groups" in doc:
        table = Table(title=f"By {doc['by']}", box=box.SIMPLE_HEAD)
        for col in (doc["by"], "MQLs", "accepted", "rejected", "acceptance", "top reason"):
            table.add_column(col, justify="left" if col in (doc["by"], "top reason") else "right")
        for g in doc["groups"]:
            top = next((r for r in g["reasons"] if r["action"] == "reject"), None)
            table.add_row(
                g["group"],
                str(g["mqls"]),
                str(g["accepted"]),
                str(g["rejected"]),
                _pct(g["acceptance_rate"]),
                f"{top['reason']} ({top['count']})" if top else "-",
            )
        out.print(table)
    hot = doc["hot_rejected"]
    table = Table(
        title=f"Hot leads sales rejected ({hot['total']}; priority {', '.join(hot['hot_priorities'])} at the time)",
        box=box.SIMPLE_HEAD,
    )
    for col in ("lead", "email", "rejected at", "by", "reason", "priority then", "source"):
        table.add_column(col)
    for lead in hot["leads"]:
        table.add_row(
            str(lead["lead_id"]),
            lead["email"] or "",
            lead["at"][:16],
            lead["actor"],
            lead["reason"] or "",
            lead["priority_then"] or "",
            lead["source"] or "",
        )
    out.print(table)


def _print_calibration(doc: dict[str, Any]) -> None:
    table = Table(
        title=f"Calibration by {doc['band']} ({_scope(doc)}; 95% Wilson intervals)", box=box.SIMPLE_HEAD
    )
    for col in (doc["band"], "leads", "-> SQL", "95% CI", "-> customer", "95% CI"):
        table.add_column(col, justify="left" if col == doc["band"] else "right")

    def ci(pair: list[float] | None) -> str:
        return "-" if pair is None else f"{_pct(pair[0])} .. {_pct(pair[1])}"

    for b in doc["bands"]:
        table.add_row(
            b["band"],
            str(b["leads"]),
            _pct(b["sql_rate"]),
            ci(b["sql_ci95"]),
            _pct(b["customer_rate"]),
            ci(b["customer_ci95"]),
        )
    Console().print(table)
    if not doc["predictive_available"]:
        err.print(
            "no predictive score yet: deciles appear with --by predictive_decile once a model is active"
        )


PRINTERS = {
    Report.FUNNEL: _print_funnel,
    Report.VELOCITY: _print_velocity,
    Report.ATTRIBUTION: _print_attribution,
    Report.FEEDBACK: _print_feedback,
    Report.CALIBRATION: _print_calibration,
}
