"""What activating a scoring model would do now, shown before it is activated (issue 9 section 7).

A new model can call for many promotions at once. Before it is stored, :func:`preview_activation` scores
every lead with it (reading only) and counts the leads it would promote to MQL now, beside the teams'
hand-off capacity left today: promotions beyond it are not pushed on sales but wait, best first, in the
teams' ranked queues (routing hands them over on the following days).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadstage.domain.scoring import ScoringModel
from leadstage.services import routing, scoring
from leadstage.services.ports import UnitOfWork


@dataclass
class ActivationPreview:
    would_promote: int
    capacity_left_today: int | None  # hand-offs the teams can still take today; None: no daily limit
    teams: list[dict[str, Any]] = field(default_factory=list)
    routing: bool = True  # False: no routing rules, new MQLs wait unassigned

    @property
    def handed_over_today(self) -> int:
        """At most this many of the new MQLs go to sales today (routing rules decide which team)."""
        if not self.routing:
            return 0
        if self.capacity_left_today is None:
            return self.would_promote
        return min(self.would_promote, self.capacity_left_today)

    @property
    def waiting(self) -> int:
        return self.would_promote - self.handed_over_today

    def as_dict(self) -> dict[str, Any]:
        return {
            "would_promote": self.would_promote,
            "capacity_left_today": self.capacity_left_today,
            "handed_over_today": self.handed_over_today,
            "waiting": self.waiting,
            "routing": self.routing,
            "teams": self.teams,
        }

    def describe(self) -> str:
        if not self.would_promote:
            return "activating it promotes no lead now"
        first = f"activating it promotes {self.would_promote} leads to MQL now"
        if not self.routing:
            return (
                first + "; there are no routing rules, so they wait unassigned (`routing queue --team none`)"
            )
        if self.capacity_left_today is None:
            return first + "; the teams have no daily hand-off limit: all go to sales at once"
        return (
            f"{first}; the teams can take {self.capacity_left_today} more hand-offs today: up to "
            f"{self.handed_over_today} go to sales, {self.waiting} wait in the ranked queue (`routing queue`)"
        )


def preview_activation(uow: UnitOfWork, model: ScoringModel, *, at: datetime) -> ActivationPreview:
    """Count the promotions ``model`` calls for now and the hand-off capacity left today; writes nothing."""
    would = scoring.count_promotions(uow, model, at=at)
    if uow.routing.active() is None:
        return ActivationPreview(would_promote=would, capacity_left_today=None, routing=False)
    teams = [
        {
            "team": t["name"],
            "daily_capacity": t["daily_capacity"],
            "handed_today": t["handed_today"],
            "queued": t["queued"],
        }
        for t in routing.team_overview(uow, at=at)
    ]
    limited = [t for t in teams if t["daily_capacity"] is not None]
    left = (
        sum(max(0, t["daily_capacity"] - t["handed_today"]) for t in limited)
        if teams and len(limited) == len(teams)
        else None
    )
    return ActivationPreview(would_promote=would, capacity_left_today=left, teams=teams)
