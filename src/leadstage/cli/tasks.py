"""``leadstage tasks``: follow-ups, alternative offers, SLA items and re-checks per owner."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from leadstage.cli.app import STATE, AsOpt, JsonOpt, app, emit_json, err
from leadstage.domain.tasks import Task
from leadstage.services import leads as lead_service
from leadstage.services import tasks as task_service

tasks_app = typer.Typer(help="Tasks per owner with due dates.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")


def task_document(task: Task, *, now: Any) -> dict[str, Any]:
    return {
        "id": task.id,
        "kind": task.kind.value,
        "title": task.title,
        "lead_id": task.lead_id,
        "owner": task.owner,
        "status": task.status.value,
        "due_at": task.due_at.isoformat(),
        "overdue": task.overdue(now),
        "created_by": task.created_by,
        "created_at": task.created_at.isoformat(),
        "completed_by": task.completed_by,
        "completed_at": task.completed_at.isoformat() if task.completed_at else None,
        "data": dict(task.data),
    }


@tasks_app.command("list")
def tasks_list(
    owner: Annotated[
        str | None, typer.Option(help="Owner's user name, or 'none' for tasks nobody owns yet.")
    ] = None,
    due: Annotated[
        str | None,
        typer.Option(
            help="today (due by tonight, overdue included), week, overdue, or a date YYYY-MM-DD (that day)."
        ),
    ] = None,
    include_closed: Annotated[bool, typer.Option("--all", help="Done and cancelled tasks too.")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many tasks.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List open tasks, soonest due first."""
    c = STATE.get()
    now = c.clock.now()
    with c.uow() as uow:
        items = task_service.list_tasks(
            uow,
            owner=owner,
            due=due,
            now=now,
            zone=c.settings.tz,
            include_closed=include_closed,
            limit=limit,
        )
    docs = [task_document(task, now=now) for task in items]
    if as_json:
        emit_json({"total": len(docs), "items": docs})
        return
    table = Table(title=f"{len(docs)} tasks")
    for name in ("id", "due", "kind", "lead", "owner", "title", "status"):
        table.add_column(name)
    for task, doc in zip(items, docs, strict=True):
        local_due = task.due_at.astimezone(c.settings.tz).strftime("%Y-%m-%d %H:%M")
        table.add_row(
            str(task.id),
            f"[red]{local_due} overdue[/red]" if doc["overdue"] else local_due,
            task.kind.value,
            str(task.lead_id or ""),
            task.owner or "(unassigned)",
            task.title,
            task.status.value,
        )
    Console().print(table)


@tasks_app.command("done")
def tasks_done(
    task_id: Annotated[int, typer.Argument(metavar="TASK_ID")],
    cancel: Annotated[bool, typer.Option("--cancel", help="Cancel instead of marking done.")] = False,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Mark a task done (or cancelled)."""
    c = STATE.get()
    with c.uow(write=True) as uow:
        actor = lead_service.resolve_actor(uow, as_user)
        task = task_service.close_task(uow, task_id, actor=actor, at=c.clock.now(), cancel=cancel)
        uow.commit()
    if as_json:
        emit_json(task_document(task, now=c.clock.now()))
    else:
        err.print(f"task {task.id} {task.status.value}")
