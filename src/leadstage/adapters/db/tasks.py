"""Tasks in SQL; never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from leadstage.adapters.db import tables as t
from leadstage.adapters.db.repositories import chunks
from leadstage.domain.tasks import Task, TaskKind, TaskStatus
from leadstage.services.ports import TaskQuery


class SqlTaskRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, task: Task) -> int | None:
        """Store a task; a task whose ``key`` is already stored is not stored again (returns None)."""
        values = _values(task)
        if task.key is None:
            return int(self.conn.execute(insert(t.tasks).values(values).returning(t.tasks.c.id)).scalar_one())
        try:
            with self.conn.begin_nested():
                new_id = self.conn.execute(
                    insert(t.tasks).values(values).returning(t.tasks.c.id)
                ).scalar_one()
        except IntegrityError:
            return None
        return int(new_id)

    def add_many(self, tasks: Sequence[Task]) -> int:
        """Store tasks whose keys are not stored yet (in one statement per batch); returns how many."""
        if not tasks:
            return 0
        keys = [task.key for task in tasks if task.key is not None]
        known: set[str] = set()
        for chunk in chunks(keys):
            known.update(
                r[0] for r in self.conn.execute(select(t.tasks.c.key).where(t.tasks.c.key.in_(chunk)))
            )
        fresh: list[dict[str, Any]] = []
        for task in tasks:
            if task.key is not None:
                if task.key in known:
                    continue
                known.add(task.key)
            fresh.append(_values(task))
        if fresh:
            self.conn.execute(insert(t.tasks), fresh)
        return len(fresh)

    def get(self, task_id: int) -> Task | None:
        rows = self._read(t.tasks.c.id == task_id)
        return rows[0] if rows else None

    def find(self, query: TaskQuery) -> list[Task]:
        conds: list[Any] = []
        if query.statuses:
            conds.append(t.tasks.c.status.in_([s.value for s in query.statuses]))
        if query.owner_id is not None:
            conds.append(t.tasks.c.owner_id == query.owner_id)
        if query.unassigned:
            conds.append(t.tasks.c.owner_id.is_(None))
        if query.lead_id is not None:
            conds.append(t.tasks.c.lead_id == query.lead_id)
        if query.due_before is not None:
            conds.append(t.tasks.c.due_at < query.due_before)
        if query.due_from is not None:
            conds.append(t.tasks.c.due_at >= query.due_from)
        if query.kinds:
            conds.append(t.tasks.c.kind.in_([k.value for k in query.kinds]))
        return self._read(and_(*conds) if conds else None, limit=query.limit)

    def count_open(self) -> int:
        q = select(func.count()).select_from(t.tasks).where(t.tasks.c.status == TaskStatus.OPEN.value)
        return int(self.conn.execute(q).scalar_one())

    def complete(self, task_id: int, *, status: TaskStatus, by: str, at: datetime) -> bool:
        """Close an open task; False when it is not open (anymore)."""
        result = self.conn.execute(
            update(t.tasks)
            .where(t.tasks.c.id == task_id, t.tasks.c.status == TaskStatus.OPEN.value)
            .values(status=status.value, completed_by=by, completed_at=at)
        )
        return bool(result.rowcount)

    def reassign(self, task_id: int, owner_id: int | None) -> None:
        self.conn.execute(update(t.tasks).where(t.tasks.c.id == task_id).values(owner_id=owner_id))

    def cancel_open(self, lead_id: int, kinds: Sequence[TaskKind], *, by: str, at: datetime) -> int:
        """Cancel a lead's open tasks of these kinds (their reason is gone); returns how many."""
        result = self.conn.execute(
            update(t.tasks)
            .where(
                t.tasks.c.lead_id == lead_id,
                t.tasks.c.status == TaskStatus.OPEN.value,
                t.tasks.c.kind.in_([k.value for k in kinds]),
            )
            .values(status=TaskStatus.CANCELLED.value, completed_by=by, completed_at=at)
        )
        return int(result.rowcount)

    def _read(self, where: Any, limit: int | None = None) -> list[Task]:
        q = (
            select(t.tasks, t.users.c.username)
            .select_from(t.tasks.outerjoin(t.users, t.users.c.id == t.tasks.c.owner_id))
            .order_by(t.tasks.c.due_at, t.tasks.c.id)
        )
        if where is not None:
            q = q.where(where)
        if limit is not None:
            q = q.limit(limit)
        return [
            Task(
                id=int(r.id),
                kind=TaskKind(r.kind),
                title=r.title,
                due_at=r.due_at,
                created_at=r.created_at,
                created_by=r.created_by,
                lead_id=r.lead_id,
                owner_id=r.owner_id,
                owner=r.username,
                status=TaskStatus(r.status),
                key=r.key,
                completed_at=r.completed_at,
                completed_by=r.completed_by,
                data=r.data or {},
            )
            for r in self.conn.execute(q)
        ]


def _values(task: Task) -> dict[str, Any]:
    return {
        "lead_id": task.lead_id,
        "owner_id": task.owner_id,
        "kind": task.kind.value,
        "title": task.title,
        "status": task.status.value,
        "due_at": task.due_at,
        "key": task.key,
        "data": dict(task.data) or None,
        "created_by": task.created_by,
        "created_at": task.created_at,
        "completed_by": task.completed_by,
        "completed_at": task.completed_at,
    }
