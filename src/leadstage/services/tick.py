"""``leadstage tick``: evaluate every time-based rule once (SLA breaches, the hand-off queue, ...).

The tick is a list of evaluators, :data:`EVALUATORS`, run in order. Each runs in its own unit of work
under the routing lock, so two ticks at once (two ``serve`` processes, ``serve`` and a cron job) take
turns instead of acting twice; each is idempotent, so running the tick twice changes nothing the
second time. A failing evaluator is reported and rolled back; the others still run.

To add a rule evaluated on a schedule, write ``def evaluate_x(uow, now) -> Mapping[str, int]``
(counts of what it did; the caller commits) and append it to :data:`EVALUATORS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadstage.services import disqualification, routing
from leadstage.services.ports import UnitOfWork, UnitOfWorkFactory

Evaluator = Callable[[UnitOfWork, datetime], Mapping[str, Any]]


def _sla(uow: UnitOfWork, now: datetime) -> Mapping[str, Any]:
    return routing.evaluate_responses(uow, now=now).as_dict()


def _handoff(uow: UnitOfWork, now: datetime) -> Mapping[str, Any]:
    report = routing.route_pending(uow, at=now, lock=False)
    return {k: v for k, v in report.as_dict().items() if k != "skipped" or v is not None}


def _follow_ups(uow: UnitOfWork, now: datetime) -> Mapping[str, Any]:
    return {"tasks_created": disqualification.follow_ups_due(uow, now=now)}


#: The time-based rules, in order: first-response SLAs first (a breach may re-route), then routing and
#: the daily release of each team's queue, then the follow-ups of disqualified leads whose date has come
#: (their re-check dates need no evaluator: a resurfacing person is judged against it when they arrive).
EVALUATORS: list[tuple[str, Evaluator]] = [
    ("sla", _sla),
    ("handoff", _handoff),
    ("follow_ups", _follow_ups),
]


@dataclass
class TickReport:
    at: datetime
    results: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "results": {k: dict(v) for k, v in self.results.items()},
            "errors": dict(self.errors),
            "skipped": list(self.skipped),
        }


def tick(
    uow_factory: UnitOfWorkFactory,
    *,
    now: datetime,
    holder: str = "tick",
    evaluators: list[tuple[str, Evaluator]] | None = None,
) -> TickReport:
    """Run every evaluator once, each in its own transaction under the routing lock."""
    report = TickReport(at=now)
    for name, evaluate in evaluators if evaluators is not None else EVALUATORS:
        with uow_factory() as uow:
            if not uow.routing.lock(routing.ROUTING_LOCK, holder=holder, at=now):
                report.skipped.append(name)
                continue
            try:
                result = evaluate(uow, now)
            except Exception as exc:  # reported; the other evaluators still run
                uow.rollback()
                report.errors[name] = f"{type(exc).__name__}: {exc}"
                continue
            uow.commit()
        report.results[name] = result
    return report
