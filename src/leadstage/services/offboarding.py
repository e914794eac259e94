"""People leave (issue 9 section 7): ``users deactivate NAME`` keeps their history, blocks their login and
tokens at once, and hands their open work on by the routing rules.

* Open MQLs they had not started on (``mql/open``) lose their owner and are routed again by the rules
  (the same step that routes new MQLs: capacity, queues and SLA clocks apply).
* Leads they were working (``mql/working``, ``sql``, ``opportunity``) go to their team's manager (from the
  active routing document), who decides; without one they wait unassigned (``leads list --owner none``).
* Their open tasks follow their leads; tasks without a lead go to the same manager or wait unassigned.
Every change is a history row (``reassign``) naming why.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from leadstage.domain.errors import NotFound, PermissionDenied, ValidationError
from leadstage.domain.stages import Actor, HistoryEntry, Role, Stage, Status
from leadstage.domain.tasks import TaskStatus
from leadstage.services import audit, routing
from leadstage.services.ports import LeadFilter, TaskQuery, UnitOfWork

REASSIGN = "reassign"
OPEN_STAGES = frozenset({Stage.LEAD, Stage.MQL, Stage.SQL, Stage.OPPORTUNITY})


@dataclass
class OffboardingReport:
    user: str
    rerouted: int = 0
    to_manager: int = 0
    unassigned: int = 0
    tasks_moved: int = 0
    manager: str | None = None
    routed_now: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def deactivate_user(uow: UnitOfWork, username: str, *, actor: Actor, at: datetime) -> OffboardingReport:
    """Deactivate a user and hand their open leads and tasks on; the caller commits."""
    if actor.role is not Role.ADMIN:
        raise PermissionDenied("only an administrator deactivates users")
    user = uow.users.get_by_username(username)
    if user is None:
        raise NotFound(f"no user {username!r} (see `leadstage users list`)")
    if not user.active:
        raise ValidationError(f"user {username!r} is already deactivated", field="name")
    uow.users.set_active(user.id, False)
    uow.access.end_sessions(user.id)
    manager = _manager_of(uow, user.team, leaving=user.username)
    manager_id = None
    if manager is not None:
        found = uow.users.get_by_username(manager)
        manager_id = found.id if found is not None and found.active else None
    report = OffboardingReport(user=user.username, manager=manager if manager_id else None)
    _total, leads = uow.leads.search(LeadFilter(owner_id=user.id))
    new_owner: dict[int, int | None] = {}
    for lead in leads:
        assert lead.id is not None
        if lead.stage not in OPEN_STAGES or lead.status is Status.DISQUALIFIED:
            continue  # customers keep their account owner on record; history stays as it was
        fresh_mql = lead.stage is Stage.MQL and lead.status is Status.OPEN
        target = None if fresh_mql else manager_id
        uow.leads.update(replace(lead, owner_id=target, updated_at=at))
        uow.leads.add_history(
            lead.id,
            HistoryEntry(
                action=REASSIGN,
                from_stage=lead.stage,
                from_status=lead.status,
                to_stage=lead.stage,
                to_status=lead.status,
                actor=actor.name,
                at=at,
                cycle=lead.cycle,
                reason="owner_deactivated",
                note=f"{user.username} was deactivated; "
                + (
                    "routed again by the rules"
                    if fresh_mql
                    else f"handed to {manager}"
                    if target
                    else "waiting unassigned"
                ),
            ),
        )
        new_owner[lead.id] = target
        if fresh_mql:
            report.rerouted += 1
        elif target is not None:
            report.to_manager += 1
        else:
            report.unassigned += 1
    for task in uow.tasks.find(TaskQuery(statuses=(TaskStatus.OPEN,), owner_id=user.id)):
        assert task.id is not None
        owner = new_owner.get(task.lead_id, manager_id) if task.lead_id is not None else manager_id
        uow.tasks.reassign(task.id, owner)
        report.tasks_moved += 1
    if report.rerouted:
        report.routed_now = routing.route_pending(uow, at=at).as_dict()
    audit.record(
        uow,
        actor,
        "user.deactivate",
        at=at,
        target=user.username,
        **{k: v for k, v in report.as_dict().items() if k != "routed_now"},
    )
    return report


def _manager_of(uow: UnitOfWork, team: str | None, *, leaving: str) -> str | None:
    stored = uow.routing.active()
    if stored is None or team is None:
        return None
    policy = stored.document.teams.get(team)
    if policy is None or policy.manager == leaving:
        return None
    return policy.manager
