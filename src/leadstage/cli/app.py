"""The ``leadstage`` command line (DESIGN.md "Public interfaces").

Exit codes, mapped in one place (:func:`exit_code_for`): 0 success; 2 bad input (usage, an unreadable
file, an invalid mapping, a missing or unknown field, reason code or lead); 3 refused by a rule (role,
transition, qualification policy, a concurrent change that won); 1 anything else.
"""

from __future__ import annotations

import gc
import importlib
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from pydantic import ValidationError as SettingsError
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from leadstage.adapters.db.engine import (
    DatabaseTooNew,
    current_revision,
    head_revision,
    is_known_revision,
    upgrade,
)
from leadstage.adapters.files import CsvRejectSink, FileProblem, RecordWriter, load_mapping, open_source
from leadstage.adapters.scoring_yaml import load_yaml
from leadstage.adapters.security import hash_password
from leadstage.bootstrap import Container, build
from leadstage.config import Settings
from leadstage.domain.errors import (
    ConcurrencyConflict,
    NotFound,
    PermissionDenied,
    RuleViolation,
    ValidationError,
)
from leadstage.domain.segments import FilterSyntaxError
from leadstage.domain.stages import BULK_ROLES, Stage, Status, TransitionRequest
from leadstage.services import audit, ingest, scoring
from leadstage.services import exports as export_service
from leadstage.services import leads as lead_service
from leadstage.services import segments as segment_service
from leadstage.services import users as user_service
from leadstage.services.ports import ImportReport, LeadFilter

err = Console(stderr=True, soft_wrap=True)


class NotInitialised(Exception):
    """The database has no schema yet, or an older one."""


@dataclass
class State:
    db: str | None = None
    container: Container | None = None

    def get(self, *, require_schema: bool = True) -> Container:
        if self.container is None:
            settings = Settings(database_url=self.db) if self.db else Settings()
            self.container = build(settings)
            if require_schema:
                current = current_revision(self.container.engine)
                if current is None:
                    raise NotInitialised(
                        f"the database {settings.database_url} has no leadstage schema yet: "
                        "run `leadstage init` first"
                    )
                if current != head_revision() and not is_known_revision(current):
                    raise DatabaseTooNew(
                        f"the database is at schema {current}, written by a newer leadstage; "
                        "upgrade leadstage to use it"
                    )
                if current != head_revision():
                    raise NotInitialised(
                        f"the database is at schema {current}; run `leadstage init` to upgrade it"
                    )
        return self.container


STATE = State()

app = typer.Typer(
    name="leadstage",
    help="Lead qualification workspace: capture, identity, lifecycle, hand-off.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
import_app = typer.Typer(
    help="Import leads, accounts or activities from CSV, NDJSON or Parquet.", no_args_is_help=True
)
export_app = typer.Typer(
    help="Export leads, activities or history to CSV, NDJSON or Parquet.", no_args_is_help=True
)
leads_app = typer.Typer(help="List, show, move and merge leads.", no_args_is_help=True)
users_app = typer.Typer(help="Users and roles.", no_args_is_help=True)
app.add_typer(import_app, name="import")
app.add_typer(export_app, name="export")
app.add_typer(leads_app, name="leads")
app.add_typer(users_app, name="users")
segments_app = typer.Typer(help="Segments: named, saved filters over leads.", no_args_is_help=True)
app.add_typer(segments_app, name="segments")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
AsOpt = Annotated[
    str | None, typer.Option("--as", help="Act as this user (default: the built-in administrator).")
]


@app.callback()
def _global(
    db: Annotated[
        str | None,
        typer.Option(
            "--db", help="Database URL or SQLite file (else LEADSTAGE_DATABASE_URL, else ./leadstage.db)."
        ),
    ] = None,
) -> None:
    STATE.db = db
    STATE.container = None


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, ensure_ascii=False, default=str, indent=2) + "\n")


def emit_listing(
    items: Sequence[Mapping[str, Any]], columns: Sequence[str], title: str, *, as_json: bool
) -> None:
    """A list command's answer: ``{"total", "items"}`` with ``--json``, else a table of these columns."""
    if as_json:
        emit_json({"total": len(items), "items": items})
        return
    table = Table(title=title)
    for name in columns:
        table.add_column(name)
    for item in items:
        table.add_row(*("" if item.get(name) is None else str(item[name]) for name in columns))
    Console().print(table)


# ---- init ----------------------------------------------------------------------------------------------


@app.command()
def init(as_json: JsonOpt = False) -> None:
    """Create or upgrade the database schema."""
    c = STATE.get(require_schema=False)
    before, after = upgrade(c.engine)
    installed = install_default_model(c)
    keys_file, keys_created = _init_keyring(c)
    result = {
        "database": c.settings.database_url,
        "schema_before": before,
        "schema": after,
        "created": before is None,
        "upgraded": before is not None and before != after,
        "default_scoring_model": installed,
        "secret_file": keys_file,
        "secret_created": keys_created,
    }
    if as_json:
        emit_json(result)
    else:
        what = "created" if before is None else ("upgraded" if before != after else "already up to date")
        err.print(f"database {c.settings.database_url}: schema {after} ({what})")
        if installed:
            err.print("default scoring model installed and active (see `leadstage score explain ID`)")
        if keys_created:
            err.print(
                f"session signing key generated in {keys_file} (mode 600; keep it out of backups' reach)"
            )
        elif keys_file is None:
            err.print(
                "[yellow]warning[/]: no session signing key file: set LEADSTAGE_SECRET_FILE (required for "
                "PostgreSQL) and run `leadstage init` again before `leadstage serve`"
            )


def _init_keyring(c: Container) -> tuple[str | None, bool]:
    """The session signing key file, generated when missing: (its path or None when unknown, created)."""
    from leadstage.adapters.keyring import KeyringProblem

    try:
        path = c.keyring_path()
    except KeyringProblem:
        return None, False
    created = c.ensure_keyring()
    c.session_keys()  # an existing file must be readable and private
    return str(path), created


def install_default_model(c: Container) -> bool:
    """Install the built-in segments, and the default scoring model when no model is active yet."""
    from leadstage.adapters.scoring_yaml import default_model_source
    from leadstage.services import scoring

    with c.uow(write=True) as uow:
        segment_service.install_builtin_segments(uow, at=c.clock.now())
        uow.commit()
        if uow.scoring.active_model() is not None:
            return False
        scoring.activate_model(
            uow,
            default_model_source(),
            name="default scoring model",
            load=lambda text, name: load_yaml(text, source=name),
            actor=lead_service.BUILTIN_ADMIN,
            at=c.clock.now(),
        )
        uow.commit()
    return True


# ---- imports -------------------------------------------------------------------------------------------


class RichProgress:
    def __init__(self, progress: Progress, task: Any) -> None:
        self.progress, self.task = progress, task

    def advance(self, *, rows: int, bytes_read: int) -> None:
        self.progress.update(self.task, completed=bytes_read)


@contextmanager
def progress_bar(label: str, total: int) -> Iterator[RichProgress]:
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=False, disable=not err.is_terminal) as progress:
        task = progress.add_task(label, total=total)
        yield RichProgress(progress, task)
        progress.update(task, completed=total)


#: rows of an activity file read (and, for a large file, prepared in the read-ahead process) at a time: two
#: pieces in flight, one being stored and one being prepared, take less memory than two whole transactions'
#: worth; a transaction holds whole pieces until it has at least ``import_batch_rows`` rows
READ_ROWS = 25_000


@contextmanager
def few_collections() -> Iterator[None]:
    """Run a bulk command with the cyclic garbage collector at a slower pace.

    An import builds millions of short-lived objects that reference counting frees; at the default pace
    (a pass every 700 allocations, full passes over everything alive) the collector took about a sixth of
    an import's time. What start-up built is set aside (``gc.freeze``) and passes come every 100,000
    allocations; cycles are still collected, so memory stays bounded.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _bulk_actor(c: Container, as_user: str | None, verb: str) -> str:
    """The acting user's name when their role may import or export (checked before any file is read)."""
    with c.uow() as uow:
        actor = lead_service.resolve_actor(uow, as_user)
    if actor.role not in BULK_ROLES:
        raise PermissionDenied(
            f"role {actor.role.value} may not {verb}; administrators, marketing and sales managers may"
        )
    return actor.name


def _import(
    kind: str,
    file: Path,
    map_file: Path | None,
    id_column: str | None,
    as_json: bool,
    as_user: str | None = None,
) -> None:
    c = STATE.get()
    actor = _bulk_actor(c, as_user, "import")
    spec = load_mapping(map_file)
    encoding = str((spec or {}).get("encoding") or "utf-8")
    # activities are read in pieces of at most READ_ROWS and committed every import_batch_rows rows
    batch_rows = min(c.settings.import_batch_rows, READ_ROWS) if kind == "activities" else 2_000
    source = open_source(file, encoding=encoding, batch_rows=batch_rows)
    ingest.build_mapping(
        kind, source.columns, spec, id_column=id_column, spec_name=str(map_file) if map_file else "map"
    )  # validate before writing anything
    rejects = CsvRejectSink(file, source.columns)
    try:
        with few_collections(), progress_bar(f"import {kind}", source.size_bytes) as bar:
            ctx = c.import_context(
                progress=bar, actor="import" if as_user is None else actor, read_ahead=True
            )
            report: ImportReport
            if kind == "leads":
                report = ingest.import_leads(source, spec, ctx=ctx, rejects=rejects, id_column=id_column)
            elif kind == "accounts":
                report = ingest.import_accounts(source, spec, ctx=ctx, rejects=rejects)
            else:
                report = ingest.import_activities(source, spec, ctx=ctx, rejects=rejects, id_column=id_column)
    finally:
        rejects.close()
    report.rejects_file = str(rejects.path) if rejects.count else None
    if kind in ("leads", "activities"):  # new MQLs are routed at once; sales activities meet SLAs on tick
        from leadstage.cli.routing import route_now

        route_now(c, quiet=as_json)
    from leadstage.cli.model import score_with_active_model

    score_with_active_model(c)  # new and changed leads get the active predictive model's score
    if as_json:
        emit_json(report.as_dict())
        return
    err.print(
        f"{kind}: {report.rows_read} rows read, {report.created} created, {report.updated} updated, "
        f"{report.unchanged} already known, {report.rejected} rejected ({report.seconds:.1f} s)"
    )
    for warning in report.warnings[:10]:
        err.print(f"[yellow]warning[/]: {warning}")
    if report.rejects_file:
        err.print(f"rejected rows with reasons: {report.rejects_file}")


FileArg = Annotated[Path, typer.Argument(help="CSV, NDJSON (.ndjson/.jsonl) or Parquet file.")]
MapOpt = Annotated[
    Path | None, typer.Option("--map", help="MAP.yaml: columns, missing_values, id_system, ...")
]
IdColOpt = Annotated[str | None, typer.Option("--id-column", help="Column holding the external id.")]


@import_app.command("leads")
def import_leads(
    file: FileArg,
    map_file: MapOpt = None,
    id_column: IdColOpt = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import leads: one lead per person; every other column kept as a typed custom property."""
    _import("leads", file, map_file, id_column, as_json, as_user)


@import_app.command("accounts")
def import_accounts(
    file: FileArg,
    map_file: MapOpt = None,
    id_column: IdColOpt = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import accounts: one per company domain."""
    _import("accounts", file, map_file, id_column, as_json, as_user)


@import_app.command("activities")
def import_activities(
    file: FileArg,
    map_file: MapOpt = None,
    id_column: IdColOpt = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import activities (email|lead_id|external_id, type, occurred_at, source, campaign, content, ...)."""
    _import("activities", file, map_file, id_column, as_json, as_user)


def _export(kind: str, file: Path, as_json: bool, as_user: str | None = None) -> None:
    c = STATE.get()
    actor = _bulk_actor(c, as_user, "export")
    count = export_service.export_records(
        kind, uow_factory=c.uow, open_sink=lambda columns: RecordWriter(file, columns)
    )
    with c.uow(write=True) as uow:
        audit.record(uow, actor, "export", at=c.clock.now(), target=kind, file=str(file), rows=count)
        uow.commit()
    if as_json:
        emit_json({"kind": kind, "file": str(file), "rows": count})
    else:
        err.print(f"exported {count} {kind} rows to {file}")


@export_app.command("leads")
def export_leads(
    file: Annotated[Path, typer.Argument()], as_user: AsOpt = None, as_json: JsonOpt = False
) -> None:
    """Export every lead, with custom properties as columns."""
    _export("leads", file, as_json, as_user)


@export_app.command("activities")
def export_activities(
    file: Annotated[Path, typer.Argument()], as_user: AsOpt = None, as_json: JsonOpt = False
) -> None:
    """Export every activity."""
    _export("activities", file, as_json, as_user)


@export_app.command("history")
def export_history(
    file: Annotated[Path, typer.Argument()], as_user: AsOpt = None, as_json: JsonOpt = False
) -> None:
    """Export the whole stage history."""
    _export("history", file, as_json, as_user)


# ---- leads ---------------------------------------------------------------------------------------------


def _choice(value: str | None, allowed: type[Stage] | type[Status], name: str) -> str | None:
    if value is None:
        return None
    options = [m.value for m in allowed]
    if value not in options:
        raise ValidationError(f"--{name}: unknown {name} {value!r}; one of {', '.join(options)}", field=name)
    return value


@leads_app.command("list")
def leads_list(
    stage: Annotated[
        str | None, typer.Option(help="lead, mql, sql, opportunity, customer, evangelist")
    ] = None,
    status: Annotated[str | None, typer.Option(help="open, working, nurture, disqualified")] = None,
    segment: Annotated[str | None, typer.Option(help="Only members of this segment.")] = None,
    owner: Annotated[
        str | None, typer.Option(help="Owner's user name, or 'none' for the unassigned queue.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="At most this many leads (total still counts all).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List leads (no filter: every lead, whatever its status)."""
    c = STATE.get()
    flt = LeadFilter(
        stage=_choice(stage, Stage, "stage"), status=_choice(status, Status, "status"), limit=limit
    )
    with c.uow() as uow:
        if owner is not None:
            if owner.lower() == "none":
                flt.unassigned = True
            else:
                user = uow.users.get_by_username(owner)
                if user is None:
                    raise ValidationError(f"--owner: no user {owner!r}", field="owner")
                flt.owner_id = user.id
        if segment is not None:
            total, items = segment_service.list_leads_in_segment(uow, segment, flt, as_of=c.clock.now())
        else:
            total, items = lead_service.list_leads(uow, flt)
    if as_json:
        emit_json({"total": total, "items": items})
        return
    table = Table(title=f"{total} leads" + (f" (showing {len(items)})" if len(items) < total else ""))
    for name in ("id", "email", "name", "company", "stage", "status", "cycle", "source"):
        table.add_column(name)
    for it in items:
        table.add_row(
            str(it["id"]),
            it["email"] or "",
            " ".join(p for p in (it["first_name"], it["last_name"]) if p),
            it["company"] or "",
            it["stage"],
            it["status"],
            str(it["cycle"]),
            it["first_source"] or "",
        )
    Console().print(table)


@leads_app.command("show")
def leads_show(
    ref: Annotated[str, typer.Argument(metavar="ID", help="Internal id, external id or email.")],
    as_json: JsonOpt = False,
) -> None:
    """Show one lead: identity, stage, properties, history, activities, possible duplicates."""
    c = STATE.get()
    with c.uow() as uow:
        details = lead_service.lead_details(uow, ref, normalizer=c.identity)
        details["predictive"] = uow.predictive.lead_score(details["id"])  # beside the rule scores
    if as_json:
        emit_json(details)
        return
    out = Console()
    name = " ".join(p for p in (details["first_name"], details["last_name"]) if p) or "(no name)"
    out.print(f"[bold]Lead {details['id']}[/]: {name} <{details['email'] or 'no email'}>")
    out.print(
        f"stage [bold]{details['stage']}[/] / {details['status']}, cycle {details['cycle']}, furthest "
        f"{details['furthest_stage']}; owner {details['owner'] or 'unassigned'}"
    )
    if details["external_ids"]:
        out.print(
            "external ids: " + ", ".join(f"{e['system']}={e['value']}" for e in details["external_ids"])
        )
    if details["account"]:
        out.print(f"account: {details['account']['name']} ({details['account']['domain'] or 'no domain'})")
    assigned = details.get("assignment")
    if assigned and assigned["sla_due_at"]:
        state = assigned["sla_state"] or "open"
        out.print(
            f"routed to {assigned['user']} ({assigned['team'] or 'no team'}) by rule {assigned['rule'] or '-'}; "
            f"first response due {assigned['sla_due_at'][:16].replace('T', ' ')} UTC: [bold]{state}[/]"
        )
    dq = details.get("disqualification")
    if dq:
        if dq["active"]:
            recheck = f"; re-check from {dq['recheck_at'][:10]}" if dq["recheck_at"] else ""
            out.print(
                f"[bold red]{dq['summary']}[/] ({dq['note'] or 'no note'}); strategy: {dq['strategy']}{recheck}"
            )
        else:
            out.print(f"[yellow]{dq['summary']}[/]; {dq['ended_reason']} on {dq['ended_at'][:10]}")
    out.print(
        f"source: first {details['first_source'] or '-'}, latest {details['latest_source'] or '-'}; "
        f"{details['activity_count']} activities"
    )
    scores = details.get("scores") or {}
    if scores.get("priority"):
        out.print(
            f"priority [bold]{scores['priority']}[/] (fit {scores['fit_grade']}, engagement level "
            f"{scores['engagement_level']}; `leadstage score explain {details['id']}` shows why)"
        )
    out.print("actions allowed now: " + (", ".join(details["allowed_actions"]) or "none"))
    if details["properties"]:
        props = Table(title="properties")
        props.add_column("name")
        props.add_column("value")
        for key, value in details["properties"].items():
            props.add_row(key, "" if value is None else str(value))
        out.print(props)
    hist = Table(title="history")
    for col_name in ("at", "cycle", "action", "from", "to", "actor", "reason", "note"):
        hist.add_column(col_name)
    for h in details["history"]:
        hist.add_row(
            h["at"],
            str(h["cycle"]),
            h["action"],
            f"{h['from_stage']}/{h['from_status']}" if h["from_stage"] else "",
            f"{h['to_stage']}/{h['to_status']}",
            h["actor"],
            h["reason"] or "",
            h["note"] or "",
        )
    out.print(hist)
    if details["activities"]:
        acts = Table(title=f"latest activities (of {details['activity_count']})")
        for col_name in ("occurred_at", "type", "source", "campaign", "content"):
            acts.add_column(col_name)
        for a in details["activities"][:20]:
            acts.add_row(
                a["occurred_at"], a["type"], a["source"] or "", a["campaign"] or "", a["content"] or ""
            )
        out.print(acts)
    if details["possible_duplicates"]:
        out.print(
            "[yellow]possible duplicates[/] (merge with `leadstage leads merge`): "
            + ", ".join(f"{d['id']} {d['name']} ({d['similarity']}%)" for d in details["possible_duplicates"])
        )


@leads_app.command("bant")
def leads_bant(
    ref: Annotated[str, typer.Argument(metavar="ID", help="Internal id, external id or email.")],
    budget: Annotated[
        str | None,
        typer.Option(help="confirmed|planned|none|unknown [amount=N] [currency=EUR] [evidence='...']"),
    ] = None,
    authority: Annotated[
        str | None, typer.Option(help="decision_maker|influencer|none [role='CFO'] [evidence='...']")
    ] = None,
    need: Annotated[
        str | None, typer.Option(help="confirmed|unclear|none [pain='...'] [evidence='...']")
    ] = None,
    timeline: Annotated[
        str | None,
        typer.Option(help="a date YYYY-MM-DD or a window ('Q2 2027', '3 months') [evidence='...']"),
    ] = None,
    criteria: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="CRITERION=ANSWER for any framework's criterion (repeatable), e.g. --set 'metrics=confirmed'",
        ),
    ] = None,
    framework: Annotated[
        str | None, typer.Option(help="Framework (default: the owner's team's, else BANT).")
    ] = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record qualification (BANT by default) on the lead's current cycle and show what the policy still needs."""
    answers = {
        k: v
        for k, v in (("budget", budget), ("authority", authority), ("need", need), ("timeline", timeline))
        if v
    }
    for item in criteria or []:
        name, eq, text = item.partition("=")
        if not eq or not name.strip():
            raise ValidationError(f"--set: expected CRITERION=ANSWER, got {item!r}", field="set")
        answers[name.strip().lower()] = text
    c = STATE.get()
    with c.uow(write=True) as uow:
        actor = lead_service.resolve_actor(uow, as_user)
        lead, used, check = lead_service.record_qualification(
            uow, ref, answers, actor=actor, at=c.clock.now(), setup=c.qualification, framework=framework
        )
        uow.commit()
    result = {
        "id": lead.id,
        "framework": used.name,
        "policy": used.policy.describe(),
        "policy_met": check.passed,
        "missing": list(check.missing),
    }
    if as_json:
        emit_json(result)
    elif check.passed:
        err.print(
            f"lead {lead.id}: {used.name} recorded; the policy is met ({check.summary}): qualify_sql may go ahead"
        )
    else:
        err.print(
            f"lead {lead.id}: {used.name} recorded; still missing for qualify_sql: {', '.join(check.missing)}"
        )


@leads_app.command("forget")
def leads_forget(
    ref: Annotated[str, typer.Argument(metavar="ID", help="Internal id, external id or email.")],
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Erase a person's data (a privacy request); a hashed tombstone still recognises them."""
    from leadstage.services import privacy

    c = STATE.get()
    with c.uow(write=True) as uow:
        actor = lead_service.resolve_actor(uow, as_user)
        lead_id = privacy.forget_lead(uow, ref, actor=actor, at=c.clock.now())
        uow.commit()
    if as_json:
        emit_json({"id": lead_id, "forgotten": True})
    else:
        err.print(f"lead {lead_id}: personal data erased; hashed identifiers kept to recognise the person")


@leads_app.command("transition")
def leads_transition(
    ref: Annotated[str, typer.Argument(metavar="ID")],
    action: Annotated[
        str,
        typer.Argument(
            help="promote_mql, accept, reject, qualify_sql, open_opportunity, win, "
            "lose, recycle, advocate, disqualify, reopen"
        ),
    ],
    reason: Annotated[str | None, typer.Option(help="Reason code.")] = None,
    note: Annotated[str | None, typer.Option(help="Free-text note.")] = None,
    amount: Annotated[str | None, typer.Option(help="Opportunity or closed amount.")] = None,
    currency: Annotated[str | None, typer.Option(help="ISO 4217 currency code.")] = None,
    close_date: Annotated[str | None, typer.Option(help="Expected or actual close date, YYYY-MM-DD.")] = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Move a lead through the transition table."""
    c = STATE.get()
    request = TransitionRequest(
        action=action, reason=reason, note=note, amount=amount, currency=currency, close_date=close_date
    )
    with c.uow(write=True) as uow:
        actor = lead_service.resolve_actor(uow, as_user)
        lead, entry = lead_service.transition_lead(
            uow, ref, request, actor=actor, at=c.clock.now(), setup=c.qualification
        )
        uow.commit()
    if entry.action == "promote_mql":  # a new MQL is routed at once
        from leadstage.cli.routing import route_now

        route_now(c, quiet=as_json)
    result = {
        "id": lead.id,
        "stage": lead.stage.value,
        "status": lead.status.value,
        "cycle": lead.cycle,
        "history_entry": lead_service.history_json(entry),
    }
    if as_json:
        emit_json(result)
    else:
        err.print(
            f"lead {lead.id}: {entry.action} -> {lead.stage.value}/{lead.status.value} (cycle {lead.cycle})"
        )


@leads_app.command("merge")
def leads_merge(
    keep: Annotated[str, typer.Argument(metavar="ID")],
    other: Annotated[str, typer.Argument(metavar="OTHER_ID")],
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Merge OTHER_ID into ID: all activities, history and identifiers of both are kept."""
    c = STATE.get()
    with c.uow(write=True) as uow:
        actor = lead_service.resolve_actor(uow, as_user)
        lead = lead_service.merge_leads(uow, keep, other, actor=actor, at=c.clock.now())
        assert lead.id is not None
        # the survivor now owns both leads' activities: score it again from all of them
        scoring.score_leads(
            uow, [lead.id], load=lambda text, name: load_yaml(text, source=name), at=c.clock.now()
        )
        uow.commit()
    if as_json:
        emit_json({"id": lead.id, "merged": other})
    else:
        err.print(f"merged {other} into lead {lead.id}")


# ---- users ---------------------------------------------------------------------------------------------


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument()],
    role: Annotated[str, typer.Option(help=", ".join(user_service.ASSIGNABLE_ROLES))],
    team: Annotated[str | None, typer.Option(help="Team name.")] = None,
    email: Annotated[
        str | None, typer.Option(help="Where notifications go (routed MQLs, SLA breaches).")
    ] = None,
    password: Annotated[
        str | None, typer.Option(help="Password (prompted when omitted on a terminal).")
    ] = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a user with a role (administrators only)."""
    c = STATE.get()
    if password is None and sys.stdin.isatty():
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    if password is not None and len(password) < 8:
        raise ValidationError("--password: at least 8 characters", field="password")
    with c.uow(write=True) as uow:
        user = user_service.add_user(
            uow,
            username=name,
            role=role,
            team=team,
            password_hash=hash_password(password) if password else None,
            at=c.clock.now(),
            email=email,
            actor=lead_service.resolve_actor(uow, as_user),
        )
        uow.commit()
    if as_json:
        emit_json({"id": user.id, "username": user.username, "role": user.role, "team": user.team})
    else:
        err.print(f"user {user.username} ({user.role}) added")


@users_app.command("deactivate")
def users_deactivate(
    name: Annotated[str, typer.Argument(metavar="NAME")], as_user: AsOpt = None, as_json: JsonOpt = False
) -> None:
    """Deactivate a user: history kept, login and tokens blocked, open leads and tasks handed on by the routing rules."""
    from leadstage.services import offboarding

    c = STATE.get()
    with c.uow(write=True) as uow:
        actor = lead_service.resolve_actor(uow, as_user)
        report = offboarding.deactivate_user(uow, name, actor=actor, at=c.clock.now())
        uow.commit()
    if as_json:
        emit_json(report.as_dict())
    else:
        err.print(
            f"{report.user} deactivated: {report.rerouted} MQLs routed again, {report.to_manager} leads to "
            f"{report.manager or 'their manager'}, {report.unassigned} waiting unassigned, {report.tasks_moved} tasks moved"
        )


@users_app.command("list")
def users_list(as_json: JsonOpt = False) -> None:
    """List users."""
    c = STATE.get()
    with c.uow() as uow:
        users = uow.users.all()
    rows = [
        {"id": u.id, "username": u.username, "role": u.role, "team": u.team, "active": u.active}
        for u in users
    ]
    if as_json:
        emit_json({"total": len(rows), "items": rows})
        return
    table = Table(title=f"{len(rows)} users")
    for col_name in ("username", "role", "team", "active"):
        table.add_column(col_name)
    for r in rows:
        table.add_row(
            str(r["username"]), str(r["role"]), str(r["team"] or ""), "yes" if r["active"] else "no"
        )
    Console().print(table)


# ---- segments ------------------------------------------------------------------------------------------

SegmentArg = Annotated[str, typer.Argument(metavar="NAME", help="The segment's name.")]


@segments_app.command("create")
def segments_create(
    name: SegmentArg,
    filter_text: Annotated[
        str,
        typer.Option(
            "--filter",
            help="The filter, e.g. 'stage = mql and fit_grade >= B and activity(webinar_attended, within 30d)'.",
        ),
    ],
    description: Annotated[str | None, typer.Option(help="What the segment is for.")] = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Save a segment; the filter is checked first (an invalid one exits 2 and stores nothing)."""
    c = STATE.get()
    now = c.clock.now()
    with c.uow(write=True) as uow:
        actor = lead_service.resolve_actor(uow, as_user)
        segment_service.require_editor(actor)
        try:
            info = segment_service.create_segment(
                uow, name, filter_text, actor_name=actor.name, at=now, description=description
            )
        except FilterSyntaxError as exc:
            caret = " " * (exc.position - 1) + "^"
            raise ValidationError(f"--filter: {exc}\n  {filter_text}\n  {caret}", field="filter") from None
        info["count"] = uow.segments.count(segment_service.segment_filter(uow, info["name"]), as_of=now)
        uow.commit()
    if as_json:
        emit_json(info)
    else:
        err.print(f"segment {info['name']!r} saved: {info['count']} leads match now")


@segments_app.command("list")
def segments_list(as_json: JsonOpt = False) -> None:
    """List segments with how many leads each holds now."""
    c = STATE.get()
    with c.uow() as uow:
        items = segment_service.list_segments(uow, as_of=c.clock.now())
    if as_json:
        emit_json({"total": len(items), "items": items})
        return
    table = Table(title=f"{len(items)} segments")
    for col_name in ("name", "leads", "filter", "created by"):
        table.add_column(col_name)
    for it in items:
        table.add_row(it["name"], str(it["count"]), it["filter"], it["created_by"])
    Console().print(table)


@segments_app.command("show")
def segments_show(
    name: SegmentArg,
    limit: Annotated[int, typer.Option(min=0, help="Show at most this many members.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Show a segment: its filter, how many leads it holds now, and the first of them."""
    c = STATE.get()
    with c.uow() as uow:
        info = segment_service.show_segment(uow, name, as_of=c.clock.now(), limit=limit)
    if as_json:
        emit_json(info)
        return
    out = Console()
    out.print(f"[bold]Segment {info['name']}[/]: {info['count']} leads")
    out.print(Text(f"filter: {info['filter']}"))
    if info["description"]:
        out.print(Text(info["description"]))
    table = Table(title=f"first {len(info['members'])} of {info['count']}")
    for col_name in ("id", "email", "name", "company", "stage", "status"):
        table.add_column(col_name)
    for it in info["members"]:
        table.add_row(
            str(it["id"]),
            it["email"] or "",
            " ".join(p for p in (it["first_name"], it["last_name"]) if p),
            it["company"] or "",
            it["stage"],
            it["status"],
        )
    out.print(table)


@segments_app.command("delete")
def segments_delete(name: SegmentArg, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Delete a segment (its leads are not touched)."""
    c = STATE.get()
    with c.uow(write=True) as uow:
        segment_service.require_editor(lead_service.resolve_actor(uow, as_user), "delete")
        segment_service.delete_segment(uow, name)
        uow.commit()
    if as_json:
        emit_json({"deleted": name})
    else:
        err.print(f"segment {name!r} deleted")


# ---- errors and entry point ----------------------------------------------------------------------------


def exit_code_for(exc: BaseException) -> int:
    if isinstance(exc, ValidationError | FileProblem | NotFound | SettingsError):
        return 2
    if isinstance(exc, RuleViolation | ConcurrencyConflict):
        return 3
    return 1


def _click_kinds(name: str) -> tuple[type[BaseException], ...]:
    """Typer ships its own copy of click (``typer._click``, with Exit and Abort in ``typer.exceptions``)
    beside click itself: catch whichever is raised."""
    kinds: list[type[BaseException]] = [getattr(click.exceptions, name)]
    for module in ("typer.exceptions", "typer._click.exceptions"):
        try:
            found = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if isinstance(found, type) and issubclass(found, BaseException) and found not in kinds:
            kinds.append(found)
    return tuple(kinds)


_CLICK_EXIT: Any = _click_kinds("Exit")
_CLICK_ABORT: Any = _click_kinds("Abort")
_CLICK_ERROR: Any = _click_kinds("ClickException")


def _error(exc: BaseException) -> None:
    err.print(Text("error: ", style="bold red") + Text(str(exc)))


def main(argv: list[str] | None = None) -> None:
    from leadstage.cli import commands  # noqa: F401  (registers demo, serve and friends)

    audit.CLIENT.set("cli")

    try:
        app(args=argv, standalone_mode=False)
    except _CLICK_EXIT as exc:
        sys.exit(exc.exit_code)
    except _CLICK_ABORT:
        err.print("aborted")
        sys.exit(1)
    except _CLICK_ERROR as exc:
        exc.show()
        sys.exit(2)
    except (NotInitialised, DatabaseTooNew) as exc:
        _error(exc)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted: committed batches are kept; run the same command again to finish")
        sys.exit(130)
    except Exception as exc:
        code = exit_code_for(exc)
        if code == 1 and not isinstance(exc, ConcurrencyConflict):
            err.print_exception(show_locals=False)
        _error(exc)
        sys.exit(code)
    finally:
        if STATE.container is not None:
            STATE.container.close()
    sys.exit(0)
