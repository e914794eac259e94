"""Tasks: stored once per key, listed per owner and due window, closed only by who may."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from leadstage.bootstrap import Container
from leadstage.domain.errors import NotFound, PermissionDenied, ValidationError
from leadstage.domain.stages import Actor, Role
from leadstage.domain.tasks import Task, TaskKind, TaskStatus
from leadstage.services import tasks as task_service
from leadstage.services import users as user_service

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def _task(title: str, due: datetime, owner_id: int | None, key: str | None = None) -> Task:
    return Task(
        kind=TaskKind.FOLLOW_UP,
        title=title,
        due_at=due,
        created_at=NOW,
        created_by="system",
        owner_id=owner_id,
        key=key,
    )


def _users(container: Container) -> tuple[int, int, int]:
    with container.uow() as uow:
        ids = tuple(
            user_service.add_user(uow, username=name, role=role, team="emea", password_hash=None, at=NOW).id
            for name, role in (("ana", "sales_rep"), ("ben", "sales_rep"), ("max", "sales_manager"))
        )
        uow.commit()
    return ids  # type: ignore[return-value]


def test_a_keyed_task_is_stored_once_and_lists_filter_by_owner_and_due(container: Container) -> None:
    ana, ben, _ = _users(container)
    with container.uow() as uow:
        assert uow.tasks.add(_task("call back", NOW + timedelta(hours=2), ana, key="k1")) is not None
        assert uow.tasks.add(_task("call back again", NOW + timedelta(hours=3), ana, key="k1")) is None
        added = uow.tasks.add_many(
            [
                _task("overdue", NOW - timedelta(days=1), ana, key="k2"),
                _task("next week", NOW + timedelta(days=9), ana, key="k3"),
                _task("dup in batch", NOW, ana, key="k3"),
                _task("ben's", NOW + timedelta(hours=1), ben),
                _task("queue", NOW + timedelta(hours=1), None),
            ]
        )
        assert added == 4
        uow.commit()
    with container.uow() as uow:
        today = task_service.list_tasks(uow, owner="ana", due="today", now=NOW, zone=BERLIN)
        assert [t.title for t in today] == ["overdue", "call back"]
        assert today[0].overdue(NOW)
        assert not today[1].overdue(NOW)
        assert [
            t.title for t in task_service.list_tasks(uow, owner="ana", due="overdue", now=NOW, zone=BERLIN)
        ] == ["overdue"]
        day = (NOW + timedelta(days=9)).date().isoformat()
        assert [t.title for t in task_service.list_tasks(uow, owner=None, due=day, now=NOW, zone=BERLIN)] == [
            "next week"
        ]
        assert [
            t.title for t in task_service.list_tasks(uow, owner="none", due=None, now=NOW, zone=BERLIN)
        ] == ["queue"]
        assert len(task_service.list_tasks(uow, owner=None, due=None, now=NOW, zone=BERLIN)) == 5
        with pytest.raises(ValidationError, match="--due"):
            task_service.list_tasks(uow, owner=None, due="tomorrowish", now=NOW, zone=BERLIN)
        with pytest.raises(NotFound):
            task_service.list_tasks(uow, owner="nobody", due=None, now=NOW, zone=BERLIN)


def test_only_the_owner_their_manager_or_an_admin_closes_a_task(container: Container) -> None:
    ana, ben, boss = _users(container)
    with container.uow() as uow:
        task_id = uow.tasks.add(_task("call", NOW, ana))
        uow.commit()
    assert task_id is not None
    bens = Actor(name="ben", role=Role.SALES_REP, user_id=ben, team="emea")
    manager = Actor(name="max", role=Role.SALES_MANAGER, user_id=boss, team="emea")
    with container.uow() as uow:
        with pytest.raises(PermissionDenied):
            task_service.close_task(uow, task_id, actor=bens, at=NOW)
        done = task_service.close_task(uow, task_id, actor=manager, at=NOW)
        uow.commit()
    assert done.status is TaskStatus.DONE
    assert done.completed_by == "max"
    with container.uow() as uow, pytest.raises(ValidationError, match="already done"):
        task_service.close_task(uow, task_id, actor=manager, at=NOW)
