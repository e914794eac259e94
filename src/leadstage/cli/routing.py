"""``leadstage routing ...``, ``leadstage leads assign`` and ``leadstage tick``: who gets which MQL, the
hand-off queue, first-response SLAs and the time-based rules."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from leadstage.adapters.scoring_yaml import load_yaml
from leadstage.bootstrap import Container
from leadstage.cli.app import STATE, AsOpt, JsonOpt, app, emit_json, err, leads_app
from leadstage.domain.business_hours import WEEKDAYS
from leadstage.domain.errors import ValidationError
from leadstage.services import leads as lead_service
from leadstage.services import routing as routing_service
from leadstage.services import tick as tick_service

routing_app = typer.Typer(
    help="Routing MQLs to owners: rules, teams, the hand-off queue, response SLAs.", no_args_is_help=True
)
app.add_typer(routing_app, name="routing")
teams_app = typer.Typer(help="Sales teams (declared in the routing document).", no_args_is_help=True)
app.add_typer(teams_app, name="teams")


def yaml_loader(text: str, name: str) -> tuple[Any, Any]:
    return load_yaml(text, source=name)


def route_now(c: Container, *, quiet: bool = False) -> routing_service.RouteReport:
    """Route the open MQLs without an owner (after scoring, imports, promotions); says what it did."""
    with c.uow(write=True) as uow:
        report = routing_service.route_pending(uow, at=c.clock.now())
        uow.commit()
    for warning in report.warnings:
        err.print(f"[yellow]warning[/]: routing: {warning}")
    if not quiet and report.document is not None and report.considered:
        err.print(
            f"routing: {report.routed} MQLs assigned, {report.queued} waiting in team queues, "
            f"{report.unassigned} in the unassigned queue"
        )
    return report


def _read(path: Path) -> str:
    if not path.is_file():
        raise ValidationError(f"{path}: no such routing file", field="file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{path}: not UTF-8 text ({exc})", field="file") from None


@routing_app.command("set")
def routing_set(
    file: Annotated[Path, typer.Argument(help="Routing YAML: territories, teams, ordered rules.")],
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate a routing document and make it the active version (an invalid one stores nothing)."""
    c = STATE.get()
    text = _read(file)
    with c.uow(write=True) as uow:
        actor = lead_service.resolve_actor(uow, as_user)
        stored = routing_service.set_routing(
            uow, text, source=str(file), load=yaml_loader, actor=actor, at=c.clock.now()
        )
        uow.commit()
    report = route_now(c, quiet=as_json)
    result = {
        "version": stored.version,
        "name": stored.name,
        "teams": list(stored.document.teams),
        "rules": len(stored.document.rules),
        "routed": report.as_dict(),
    }
    if as_json:
        emit_json(result)
    else:
        err.print(
            f"routing {stored.name!r} is active as version {stored.version}: {len(stored.document.teams)} teams, "
            f"{len(stored.document.rules)} rules"
        )


def _hours(week: list[list[list[int]]]) -> str:
    parts = []
    for day, spans in zip(WEEKDAYS, week, strict=True):
        if spans:
            text = ",".join(f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}" for a, b in spans)
            parts.append(f"{day} {text}")
    return "; ".join(parts)


@routing_app.command("show")
def routing_show(as_json: JsonOpt = False) -> None:
    """Show the active routing: teams, members, territories and the ordered rules."""
    c = STATE.get()
    with c.uow() as uow:
        doc = routing_service.show_routing(uow)
    if as_json:
        emit_json(doc)
        return
    out = Console()
    out.print(f"[bold]Routing {doc['name']}[/] version {doc['version']} (set by {doc['created_by']})")
    for name, team in doc["teams"].items():
        capacity = team["daily_capacity"] if team["daily_capacity"] is not None else "unlimited"
        out.print(
            f"\n[bold]team {name}[/]: manager {team['manager'] or '-'}, {team['timezone']}, "
            f"{_hours(team['week'])}; first response within {team['first_response_minutes']} business "
            f"minutes; {capacity} hand-offs a day; {team['queued']} waiting"
            + ("; re-routes on breach" if team["reroute_on_breach"] else "")
        )
        if team["holidays"]:
            out.print("holidays: " + ", ".join(team["holidays"]))
        members = Table()
        for col in ("member", "weight", "max open", "max/day", "territories", "away until"):
            members.add_column(col)
        for m in team["members"]:
            members.add_row(
                m["username"],
                f"{m['weight']:g}",
                str(m["max_open"] if m["max_open"] is not None else "-"),
                str(m["max_per_day"] if m["max_per_day"] is not None else "-"),
                ", ".join(m["territories"]) or "any",
                m["out_of_office_until"] or "",
            )
        out.print(members)
    if doc["territories"]:
        out.print(
            "\nterritories: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in doc["territories"].items())
        )
    rules = Table(title="rules, first match wins")
    for col in ("#", "name", "segment", "territory", "filter", "to"):
        rules.add_column(col)
    for i, r in enumerate(doc["rules"], start=1):
        rules.add_row(
            str(i),
            r["name"],
            r["segment"] or "",
            ", ".join(r["territories"]),
            r["filter"] or "",
            f"team {r['team']}" if r["team"] else f"user {r['user']}",
        )
    out.print(rules)
    out.print(f"unassigned queue: {doc['unassigned_queue']} leads (`leadstage routing queue --team none`)")


@teams_app.command("list")
def teams_list(as_json: JsonOpt = False) -> None:
    """Teams with their manager, hours, today's hand-offs against capacity, queue and members' loads."""
    c = STATE.get()
    with c.uow() as uow:
        teams = routing_service.team_overview(uow, at=c.clock.now())
    if as_json:
        emit_json({"total": len(teams), "items": teams})
        return
    out = Console()
    for team in teams:
        capacity = team["daily_capacity"] if team["daily_capacity"] is not None else "unlimited"
        out.print(
            f"[bold]{team['name']}[/]: manager {team['manager'] or '-'}, {team['timezone']}; "
            f"{team['handed_today']} of {capacity} handed over today, {team['queued']} waiting; first "
            f"response within {team['first_response_minutes']} business minutes"
        )
        table = Table()
        for col in ("member", "weight", "open MQLs", "today", "territories", "available"):
            table.add_column(col)
        for m in team["members"]:
            table.add_row(
                m["user"],
                f"{m['weight']:g}",
                f"{m['open_mqls']}" + (f" / {m['max_open']}" if m["max_open"] is not None else ""),
                f"{m['today']}" + (f" / {m['max_per_day']}" if m["max_per_day"] is not None else ""),
                ", ".join(m["territories"]) or "any",
                f"away until {m['out_of_office_until']}" if m["away"] else "yes",
            )
        out.print(table)


@routing_app.command("queue")
def routing_queue(
    team: Annotated[
        str | None, typer.Option(help="One team's queue; 'none' for the unassigned queue.")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many leads.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Leads waiting for hand-off, per team, in the order they will be handed over."""
    c = STATE.get()
    with c.uow() as uow:
        items = routing_service.queued(uow, team, limit=limit)
    docs = [routing_service.queued_json(q) for q in items]
    if as_json:
        emit_json({"total": len(docs), "items": docs})
        return
    table = Table(title=f"{len(docs)} leads waiting")
    for col in ("team", "#", "lead", "priority", "email", "company", "why"):
        table.add_column(col)
    for d in docs:
        table.add_row(
            d["team"] or "(unassigned)",
            str(d["position"]),
            str(d["lead_id"]),
            d["priority"] or "",
            d["email"] or "",
            d["company"] or "",
            d["reason"],
        )
    Console().print(table)


@routing_app.command("sla")
def routing_sla(
    team: Annotated[str | None, typer.Option(help="Only this team.")] = None,
    state: Annotated[str | None, typer.Option(help="pending, met, breached or closed.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Current owners with their first-response deadline and whether it was met, soonest due first."""
    c = STATE.get()
    now = c.clock.now()
    with c.uow() as uow:
        items = routing_service.sla_overview(uow, team=team, state=state, limit=limit, now=now)
    if as_json:
        emit_json({"total": len(items), "items": items})
        return
    table = Table(title=f"{len(items)} assignments")
    for col in ("lead", "owner", "team", "assigned", "due", "state", "response (business min)"):
        table.add_column(col)
    for d in items:
        sla = d["sla"]
        due = sla["due_at"] or ""
        table.add_row(
            str(d["lead_id"]),
            d["user"],
            d["team"] or "",
            d["at"][:16],
            f"[red]{due[:16]} overdue[/red]" if d["overdue"] else due[:16],
            sla["state"] or "-",
            f"{sla['response_business_minutes']:.0f}" if sla["response_business_minutes"] is not None else "",
        )
    Console().print(table)


@routing_app.command("explain")
def routing_explain(
    ref: Annotated[str, typer.Argument(metavar="ID", help="Internal id, external id or email.")],
    as_json: JsonOpt = False,
) -> None:
    """Why a lead has its owner: every assignment with the rule and the candidates considered."""
    c = STATE.get()
    with c.uow() as uow:
        doc = routing_service.explain_lead(uow, ref)
    if as_json:
        emit_json(doc)
        return
    out = Console()
    out.print(
        f"[bold]Lead {doc['lead_id']}[/] ({doc['stage']}/{doc['status']}): owner {doc['owner'] or 'none'}"
    )
    if doc["queue"]:
        q = doc["queue"]
        out.print(f"waiting: #{q['position']} in {q['team'] or 'the unassigned'} queue: {q['reason']}")
    for a in doc["assignments"]:
        out.print(
            f"\n{a['at'][:16]} {a['kind']} -> [bold]{a['user']}[/] ({a['team'] or 'no team'}) by {a['actor']}"
            + ("" if a["current"] else " [dim](superseded)[/dim]")
        )
        out.print(f"  {a['reason']}")
        if a["sla"]["due_at"]:
            out.print(f"  first response due {a['sla']['due_at'][:16]}: {a['sla']['state']}")
        for cand in a["candidates"]:
            mark = "chosen" if cand["chosen"] else "skipped"
            out.print(f"  - {cand['user']}: {mark}, {cand['why']}")


@routing_app.command("away")
def routing_away(
    user: Annotated[str, typer.Argument(metavar="USER")],
    until: Annotated[
        str | None, typer.Option(help="Out of office until this date YYYY-MM-DD (back on it).")
    ] = None,
    back: Annotated[bool, typer.Option("--back", help="Available again now.")] = False,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Mark a team member out of office until a date (no leads routed to them meanwhile), or back."""
    if (until is None) == (not back):
        raise ValidationError("give --until YYYY-MM-DD or --back", field="until")
    day: date | None = None
    if until is not None:
        try:
            day = date.fromisoformat(until.strip())
        except ValueError:
            raise ValidationError(
                f"--until must be a date YYYY-MM-DD, got {until!r}", field="until"
            ) from None
    c = STATE.get()
    with c.uow(write=True) as uow:
        actor = lead_service.resolve_actor(uow, as_user)
        routing_service.set_away(uow, user, day, actor=actor)
        uow.commit()
    if as_json:
        emit_json({"user": user, "out_of_office_until": day.isoformat() if day else None})
    else:
        err.print(f"{user} is out of office until {day.isoformat()}" if day else f"{user} is available")


@leads_app.command("assign")
def leads_assign(
    ref: Annotated[str, typer.Argument(metavar="ID")],
    user: Annotated[str | None, typer.Argument(metavar="[USER]", help="The new owner.")] = None,
    team: Annotated[str | None, typer.Option(help="Give it to the next free member of this team.")] = None,
    note: Annotated[str | None, typer.Option(help="Why (kept with the assignment).")] = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-route a lead to a user or a team (a sales manager of its team, or an admin)."""
    c = STATE.get()
    with c.uow(write=True) as uow:
        actor = lead_service.resolve_actor(uow, as_user)
        record = routing_service.assign_lead(
            uow, ref, user=user, team=team, actor=actor, at=c.clock.now(), note=note
        )
        uow.commit()
    if as_json:
        emit_json(routing_service.assignment_json(record))
    else:
        due = f"; first response due {record.sla_due_at.isoformat()[:16]}" if record.sla_due_at else ""
        err.print(f"lead {record.lead_id} assigned to {record.username}{due}")


@app.command()
def tick(as_json: JsonOpt = False) -> None:
    """Evaluate the time-based rules once: API batches' activities a server did not follow up (scoring,
    touches, credits), response SLAs, the daily hand-off queue release, disqualified leads' follow-ups,
    webhook and mail delivery."""
    c = STATE.get()
    report = tick_service.tick(
        c.uow, now=c.clock.now(), holder="leadstage tick", evaluators=c.tick_evaluators()
    )
    doc = report.as_dict()
    if as_json:
        emit_json(doc)
    else:
        for name, counts in doc["results"].items():
            err.print(
                f"{name}: " + ", ".join(f"{k} {v}" for k, v in counts.items() if not isinstance(v, dict))
            )
        for name in doc["skipped"]:
            err.print(f"{name}: skipped, another tick holds the lock")
    if report.errors:
        for name, problem in report.errors.items():
            err.print(f"[red]{name} failed[/]: {problem}")
        raise typer.Exit(1)
