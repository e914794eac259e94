"""Tasks: dated work items for a person (follow-ups, alternative offers, SLA breaches, re-checks).

A task belongs to a lead (or to nobody in particular) and to an owner (a user; none while it waits in
a queue). Work that the system creates on a schedule carries a ``key`` that is unique among tasks, so
that running the same evaluation twice (``leadstage tick`` twice, two processes at once) creates it
once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from leadstage.domain.errors import ValidationError


class TaskKind(StrEnum):
    FOLLOW_UP = "follow_up"
    ALTERNATIVE_OFFER = "alternative_offer"
    SLA_BREACH = "sla_breach"
    RECHECK = "recheck"
    CALL = "call"
    OTHER = "other"


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Task:
    kind: TaskKind
    title: str
    due_at: datetime
    created_at: datetime
    created_by: str
    lead_id: int | None = None
    owner_id: int | None = None
    status: TaskStatus = TaskStatus.OPEN
    key: str | None = None
    completed_at: datetime | None = None
    completed_by: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None
    owner: str | None = None  # the owner's user name, filled in by reads

    def overdue(self, now: datetime) -> bool:
        return self.status is TaskStatus.OPEN and self.due_at < now


def parse_task_kind(name: str) -> TaskKind:
    try:
        return TaskKind(name.strip().lower())
    except ValueError:
        known = ", ".join(k.value for k in TaskKind)
        raise ValidationError(f"unknown task kind {name!r}; one of {known}", field="kind") from None
