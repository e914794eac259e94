"""Disqualification that remembers (DOMAIN.md R18-R20, issue 4 section 8).

* :func:`on_transition` runs after every transition: a ``disqualify`` keeps a record with the reason's
  strategy (an alternative-offer task for the owner, the nurture track, follow-up and re-check dates);
  a ``reopen`` ends it and cancels its follow-up tasks.
* :func:`follow_ups_due` (run by ``tick``) creates the periodic follow-up task of every strategy whose
  date has come, once (keyed), and schedules the next one until the strategy ends.
* :func:`handle_resurfaced` decides for disqualified people who show up again (form, import row,
  activity): reopened with a note when the re-check date passed or their fit changed, else kept
  disqualified with the resurfacing recorded in their history.

This module does not import ``services.leads`` (which calls :func:`on_transition`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from leadstage.domain.disqualification import (
    DEFAULT_STRATEGIES,
    Disqualification,
    Remedy,
    decide_resurfaced,
    next_follow_up,
    plan_disqualification,
)
from leadstage.domain.leads import Lead
from leadstage.domain.stages import Action, Actor, HistoryEntry, Status, TransitionRequest, plan_transition
from leadstage.domain.tasks import Task, TaskKind
from leadstage.services.ports import UnitOfWork

#: History action of a disqualified person showing up again while staying disqualified.
RESURFACED = "resurfaced"
#: Task kinds a disqualification creates; a reopen cancels the ones still open.
DISQUALIFICATION_TASKS = (TaskKind.ALTERNATIVE_OFFER, TaskKind.FOLLOW_UP)
#: Days the owner has to offer an alternative.
ALTERNATIVE_DUE_DAYS = 2


def fit_facts(uow: UnitOfWork, lead_id: int) -> dict[str, Any]:
    """What fit looked like for this lead: its fit grade under the active model and its title and company."""
    rows = uow.scoring.lead_rows(ids=[lead_id])
    if not rows:
        return {}
    row = rows[0]
    return {
        "fit_grade": row.fit_grade,
        "job_title": row.facts.get("job_title"),
        "company": row.facts.get("company"),
    }


def on_transition(uow: UnitOfWork, lead: Lead, entry: HistoryEntry, *, at: datetime) -> None:
    """Keep or end the lead's disqualification record after a transition (the caller commits)."""
    assert lead.id is not None
    if entry.action == Action.DISQUALIFY.value:
        reason = entry.reason or "other"
        strategy = DEFAULT_STRATEGIES.get(reason, DEFAULT_STRATEGIES["other"])
        record = plan_disqualification(
            lead_id=lead.id,
            cycle=lead.cycle,
            reason=reason,
            note=entry.note,
            actor=entry.actor,
            at=at,
            strategy=strategy,
            fit_snapshot=fit_facts(uow, lead.id),
        )
        uow.disqualifications.end_active(lead.id, reason="superseded", at=at)
        record_id = uow.disqualifications.add(record)
        if Remedy.ALTERNATIVE in strategy.remedies:
            uow.tasks.add(
                Task(
                    kind=TaskKind.ALTERNATIVE_OFFER,
                    title=f"Offer an alternative: {strategy.alternative or 'what else fits their need'}",
                    due_at=at + timedelta(days=ALTERNATIVE_DUE_DAYS),
                    created_at=at,
                    created_by="system",
                    lead_id=lead.id,
                    owner_id=lead.owner_id,
                    key=f"alternative:{record_id}",
                    data={"reason": reason},
                )
            )
    elif entry.action == Action.REOPEN.value:
        uow.disqualifications.end_active(lead.id, reason="reopened", at=at)
        uow.tasks.cancel_open(lead.id, DISQUALIFICATION_TASKS, by=entry.actor, at=at)


def follow_ups_due(uow: UnitOfWork, *, now: datetime, batch: int = 5_000) -> int:
    """Create the follow-up task of every strategy whose date has come; returns how many were created."""
    created = 0
    while True:
        due = uow.disqualifications.due_follow_ups(now, limit=batch)
        if not due:
            return created
        owners = _owners(uow, [d.lead_id for d in due])
        tasks = []
        for record in due:
            assert record.id is not None
            assert record.next_follow_up_at is not None
            number = record.follow_ups_done + 1
            tasks.append(
                Task(
                    kind=TaskKind.FOLLOW_UP,
                    title=f"Follow up ({record.reason}, #{number}): have their needs changed?",
                    due_at=record.next_follow_up_at,
                    created_at=now,
                    created_by="system",
                    lead_id=record.lead_id,
                    owner_id=owners.get(record.lead_id),
                    key=f"follow-up:{record.id}:{number}",
                    data={"reason": record.reason, "disqualified_at": record.at.isoformat()},
                )
            )
            next_at, _ended = next_follow_up(record)
            uow.disqualifications.advance_follow_up(record.id, done=number, next_at=next_at)
        created += uow.tasks.add_many(tasks)
        if len(due) < batch:
            return created


def _owners(uow: UnitOfWork, lead_ids: list[int]) -> dict[int, int | None]:
    return {lead.id: lead.owner_id for lead in uow.leads.find_many(ids=lead_ids) if lead.id is not None}


@dataclass
class ResurfaceReport:
    reopened: list[int] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {"reopened": len(self.reopened), "kept_disqualified": len(self.kept)}


def handle_resurfaced(
    uow: UnitOfWork, lead_ids: Iterable[int], *, via: str | Mapping[int, str], at: datetime
) -> ResurfaceReport:
    """Recognise disqualified people among these leads, who just showed up again, and decide for each."""
    report = ResurfaceReport()
    records = uow.disqualifications.active_for(lead_ids)
    if not records:
        return report
    for lead in uow.leads.find_many(ids=sorted(records)):
        assert lead.id is not None
        if lead.status is not Status.DISQUALIFIED:
            continue
        record = records[lead.id]
        how = via if isinstance(via, str) else via.get(lead.id, "activity")
        decision = decide_resurfaced(record, fit_now=fit_facts(uow, lead.id), via=how, at=at)
        if decision.reopen:
            request = TransitionRequest(
                action=Action.REOPEN.value, reason=decision.reason, note=decision.note
            )
            outcome = plan_transition(lead.state, request, actor=Actor.system(), at=at)
            updated = uow.leads.update(lead.with_state(outcome.state, at=at))
            uow.leads.add_history(lead.id, outcome.entry)
            on_transition(uow, updated, outcome.entry, at=at)
            report.reopened.append(lead.id)
        else:
            uow.leads.add_history(
                lead.id,
                HistoryEntry(
                    action=RESURFACED,
                    from_stage=lead.stage,
                    from_status=lead.status,
                    to_stage=lead.stage,
                    to_status=lead.status,
                    actor="system",
                    at=at,
                    cycle=lead.cycle,
                    reason=record.reason,
                    note=decision.note,
                    data={
                        "via": how,
                        "disqualified_at": record.at.isoformat(),
                        "disqualified_by": record.actor,
                    },
                ),
            )
            report.kept.append(lead.id)
    return report


def disqualification_facts(record: Disqualification | None) -> dict[str, Any] | None:
    """The lead's latest disqualification, for ``leads show``."""
    if record is None:
        return None
    return {
        "summary": record.summary(),
        "reason": record.reason,
        "note": record.note,
        "by": record.actor,
        "at": record.at.isoformat(),
        "active": record.active,
        "strategy": record.strategy.describe(),
        "remedies": sorted(r.value for r in record.strategy.remedies),
        "recheck_at": record.recheck_at.isoformat() if record.recheck_at else None,
        "next_follow_up_at": record.next_follow_up_at.isoformat() if record.next_follow_up_at else None,
        "follow_ups_done": record.follow_ups_done,
        "ended_at": record.ended_at.isoformat() if record.ended_at else None,
        "ended_reason": record.ended_reason,
    }
