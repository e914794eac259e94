"""What activating a scoring or predictive model would do now, shown before it is activated (issue 9
section 7).

A new model can call for many promotions at once. Before it is stored, :func:`preview_activation` scores
every lead with a scoring model (reading only) and counts the leads it would promote to MQL now, beside the
teams' hand-off capacity left today: promotions beyond it are not pushed on sales but wait, best first, in
the teams' ranked queues (routing hands them over on the following days). A predictive model promotes
through the active scoring model's MQL criteria that read the predictive score:
:func:`preview_predictive_activation` scores the open leads with the candidate (in memory) and counts the
leads those criteria would promote with its scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadstage.domain.scoring import Predictive, ScoringModel
from leadstage.domain.stages import Actor
from leadstage.services import predictive, routing, scoring
from leadstage.services.ports import ModelTrainer, UnitOfWork, UnitOfWorkFactory


@dataclass
class ActivationPreview:
    would_promote: int
    capacity_left_today: int | None  # hand-offs the teams can still take today; None: no daily limit
    teams: list[dict[str, Any]] = field(default_factory=list)
    routing: bool = True  # False: no routing rules, new MQLs wait unassigned
    reads_predictive: bool = True  # False: the active scoring model's MQL criteria ignore predictive scores

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
            "reads_predictive": self.reads_predictive,
            "teams": self.teams,
        }

    def describe(self) -> str:
        if not self.reads_predictive:
            return (
                "activating it promotes no lead now: the active scoring model's MQL criteria do not read the "
                "predictive score (add predictive_decile or predictive_score to a criterion to use it)"
            )
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
    return _against_capacity(uow, scoring.count_promotions(uow, model, at=at), at=at)


def preview_predictive_activation(
    uow: UnitOfWork, trainer: ModelTrainer, model_id: int, *, load: scoring.Loader, at: datetime
) -> ActivationPreview:
    """Count the promotions activating predictive model ``model_id`` would cause now (through the active
    scoring model's predictive MQL criteria) and the hand-off capacity left today; writes nothing. The model
    is verified first: a tampered or unknown one is refused as activation would refuse it."""
    record, predictor = predictive.loaded_model(uow, trainer, model_id)
    active = scoring.load_active(uow, load)
    if active is None or not active[1].predictive_criteria:
        return ActivationPreview(0, None, routing=uow.routing.active() is not None, reads_predictive=False)

    def scores_of(lead_ids: Sequence[int]) -> dict[int, Predictive]:
        found = predictive.predictions(uow, predictor, record, lead_ids, at=at)
        return {lead_id: Predictive(p, d) for lead_id, p, d in found}

    would = scoring.count_predictive_promotions(uow, load=load, predictions=scores_of, at=at)
    return _against_capacity(uow, would, at=at)


def _against_capacity(uow: UnitOfWork, would: int, *, at: datetime) -> ActivationPreview:
    """``would`` promotions beside the teams' hand-off capacity left today."""
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


def rescore_and_route(writer: UnitOfWorkFactory, *, load: scoring.Loader, at: datetime) -> dict[str, Any]:
    """After a scoring model is activated: score every lead with it (promoting those its criteria call
    for), then route the new MQLs; those beyond the teams' hand-off capacity wait in the ranked queues."""
    report = scoring.score_all(writer, load=load, at=at)
    with writer() as uow:
        routed = routing.route_pending(uow, at=at)
        uow.commit()
    return {
        "scored": report.leads,
        "changed": report.changed,
        "promoted": report.promoted,
        "routed": routed.routed,
        "queued": routed.queued,
    }


def activate_predictive(
    writer: UnitOfWorkFactory,
    trainer: ModelTrainer,
    model_id: int,
    *,
    load: scoring.Loader,
    at: datetime,
    actor: Actor | None = None,
    runner: predictive.ScoreRunner | None = None,
) -> dict[str, Any]:
    """Activate a predictive model (verified, audited), score every lead with it, promote the leads the
    active scoring model's predictive MQL criteria now call for, and route them as a scoring activation
    does. The CLI, the API and the settings page all activate through here."""
    result = predictive.activate_model(writer, trainer, model_id, at=at, actor=actor, runner=runner)
    result["promoted"] = scoring.promote_on_predictive(writer, load=load, at=at)
    result["routed"] = result["queued"] = 0
    if result["promoted"]:
        with writer() as uow:
            routed = routing.route_pending(uow, at=at)
            uow.commit()
        result["routed"], result["queued"] = routed.routed, routed.queued
    return result
