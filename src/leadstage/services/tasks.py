"""Tasks per owner with due dates: follow-ups, alternative offers, SLA items, re-checks (issue 4, section 9)."""

from __future__ import annotations

from datetime import datetime, time, timedelta, tzinfo

from leadstage.domain.errors import NotFound, PermissionDenied, ValidationError
from leadstage.domain.stages import Actor, Role
from leadstage.domain.tasks import Task, TaskStatus
from leadstage.services.ports import TaskQuery, UnitOfWork

#: ``--due`` words: what is due by the end of today / this week (overdue included), or only overdue.
DUE_WORDS = ("today", "overdue", "week")


def due_window(due: str | None, *, now: datetime, zone: tzinfo) -> tuple[datetime | None, datetime | None]:
    """``(due_from, due_before)`` for a ``--due`` value: a word of :data:`DUE_WORDS` or a date YYYY-MM-DD.

    Days are the days of ``zone`` (the workspace's time zone). ``today`` and ``week`` include what is
    overdue: a sales rep's list for today is everything that needs doing by tonight. A date gives the
    tasks due on that day only.
    """
    if due is None:
        return None, None
    word = due.strip().lower()
    local = now.astimezone(zone)
    midnight = datetime.combine(local.date(), time(), tzinfo=zone)
    if word == "today":
        return None, midnight + timedelta(days=1)
    if word == "overdue":
        return None, now
    if word == "week":
        return None, midnight + timedelta(days=7 - local.weekday())
    try:
        day = datetime.fromisoformat(word).date()
    except ValueError:
        raise ValidationError(
            f"--due must be one of {', '.join(DUE_WORDS)} or a date YYYY-MM-DD, got {due!r}", field="due"
        ) from None
    start = datetime.combine(day, time(), tzinfo=zone)
    return start, start + timedelta(days=1)


def list_tasks(
    uow: UnitOfWork,
    *,
    owner: str | None,
    due: str | None,
    now: datetime,
    zone: tzinfo,
    include_closed: bool = False,
    limit: int | None = None,
) -> list[Task]:
    """Open tasks (all tasks with ``include_closed``), for one owner (``none`` for the unassigned ones)."""
    due_from, due_before = due_window(due, now=now, zone=zone)
    owner_id: int | None = None
    if owner is not None and owner.lower() != "none":
        user = uow.users.get_by_username(owner)
        if user is None:
            raise NotFound(f"no user {owner!r} (see `leadstage users list`)")
        owner_id = user.id
    statuses = tuple(TaskStatus) if include_closed else (TaskStatus.OPEN,)
    query = TaskQuery(
        statuses=statuses,
        owner_id=owner_id,
        unassigned=owner is not None and owner.lower() == "none",
        due_from=due_from,
        due_before=due_before,
        limit=limit,
    )
    return uow.tasks.find(query)


def close_task(uow: UnitOfWork, task_id: int, *, actor: Actor, at: datetime, cancel: bool = False) -> Task:
    """Mark a task done (or cancelled). Its owner, their manager, marketing for unowned tasks, or an admin."""
    task = uow.tasks.get(task_id)
    if task is None:
        raise NotFound(f"no task {task_id}")
    if not _may_close(uow, task, actor):
        raise PermissionDenied(f"{actor.name} ({actor.role.value}) may not close task {task_id}: not theirs")
    if task.status is not TaskStatus.OPEN:
        raise ValidationError(f"task {task_id} is already {task.status.value}", field="task")
    status = TaskStatus.CANCELLED if cancel else TaskStatus.DONE
    uow.tasks.complete(task_id, status=status, by=actor.name, at=at)
    closed = uow.tasks.get(task_id)
    assert closed is not None
    return closed


def _may_close(uow: UnitOfWork, task: Task, actor: Actor) -> bool:
    if actor.role in (Role.ADMIN, Role.SYSTEM):
        return True
    if task.owner_id is None:
        return actor.role is not Role.VIEWER
    if task.owner_id == actor.user_id:
        return True
    if actor.role is Role.SALES_MANAGER and actor.team is not None:
        owner = uow.users.get(task.owner_id)
        return owner is not None and owner.team == actor.team
    return False
