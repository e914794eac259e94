"""Disqualification that remembers (DOMAIN.md R18-R20).

A disqualification keeps its reason, who decided and when, and a *strategy*: what happens next. Each
reason code maps to a default strategy; more than one remedy can apply:

* ``remove``: out of the sales pipeline (always; the status ``disqualified`` does it);
* ``alternative``: a task for the owner to offer another way to meet the need;
* ``nurture``: marketing keeps in touch (the lead carries a nurture track that segments select on);
* ``follow_up``: a dated task every N days, and a re-check date after which the person, when they
  resurface, is reopened for qualification; repeats until the lead is reopened or ``max_follow_ups``
  is reached.

A disqualified person who resurfaces (form, import row, activity) is recognised: if the re-check date
has passed or their fit changed, they are reopened (new cycle) with a note saying why; otherwise they
stay disqualified and the resurfacing is recorded. :func:`decide_resurfaced` is that rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from leadstage.domain.stages import SALES_REJECTION_REASONS


class Remedy(StrEnum):
    REMOVE = "remove"
    ALTERNATIVE = "alternative"
    NURTURE = "nurture"
    FOLLOW_UP = "follow_up"


@dataclass(frozen=True)
class Strategy:
    """What happens after a disqualification for one reason code."""

    reason: str
    remedies: frozenset[Remedy]
    follow_up_days: int | None = None  # with FOLLOW_UP: days between follow-ups; also the re-check date
    max_follow_ups: int | None = None  # with FOLLOW_UP: the strategy ends after this many
    alternative: str | None = None  # with ALTERNATIVE: what to offer (the task's title)

    def describe(self) -> str:
        parts = ["removed from the pipeline"]
        if Remedy.ALTERNATIVE in self.remedies:
            parts.append(f"offer an alternative ({self.alternative or 'owner decides'})")
        if Remedy.NURTURE in self.remedies:
            parts.append("nurtured by marketing")
        if Remedy.FOLLOW_UP in self.remedies and self.follow_up_days:
            times = f", up to {self.max_follow_ups} times" if self.max_follow_ups else ""
            parts.append(f"follow up every {self.follow_up_days} days{times}")
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "remedies": sorted(r.value for r in self.remedies),
            "follow_up_days": self.follow_up_days,
            "max_follow_ups": self.max_follow_ups,
            "alternative": self.alternative,
        }


def _strategy(
    reason: str,
    *remedies: Remedy,
    every: int | None = None,
    times: int | None = None,
    alternative: str | None = None,
) -> Strategy:
    return Strategy(reason, frozenset({Remedy.REMOVE, *remedies}), every, times, alternative)


R = Remedy

#: The default strategy per disqualification reason code (the sales rejection taxonomy).
DEFAULT_STRATEGIES: Mapping[str, Strategy] = {
    s.reason: s
    for s in (
        _strategy("not_icp", R.ALTERNATIVE, alternative="point them to a partner or a lighter plan"),
        _strategy("no_need", R.NURTURE, R.FOLLOW_UP, every=180, times=2),
        _strategy("bad_timing", R.NURTURE, R.FOLLOW_UP, every=90, times=4),
        _strategy(
            "no_budget",
            R.NURTURE,
            R.FOLLOW_UP,
            R.ALTERNATIVE,
            every=180,
            times=2,
            alternative="offer a smaller plan",
        ),
        _strategy(
            "not_decision_maker",
            R.ALTERNATIVE,
            R.NURTURE,
            alternative="ask for an introduction to the decision maker",
        ),
        _strategy("student_or_job_seeker", R.ALTERNATIVE, alternative="send the student or careers offer"),
        _strategy("competitor"),
        _strategy("invalid_contact"),
        _strategy("duplicate"),
        _strategy("unresponsive", R.NURTURE, R.FOLLOW_UP, every=60, times=3),
        _strategy("other", R.NURTURE),
    )
}
assert set(DEFAULT_STRATEGIES) == set(SALES_REJECTION_REASONS)


@dataclass(frozen=True)
class Disqualification:
    """One disqualification of a lead, with its strategy and where the follow-ups stand."""

    lead_id: int
    cycle: int
    reason: str
    note: str | None
    actor: str
    at: datetime
    strategy: Strategy
    recheck_at: datetime | None  # resurfacing after this reopens the lead
    next_follow_up_at: datetime | None
    follow_ups_done: int = 0
    fit_snapshot: Mapping[str, Any] | None = None  # what fit looked like when disqualified
    ended_at: datetime | None = None
    ended_reason: str | None = None  # reopened, strategy_done, forgotten
    id: int | None = None

    @property
    def active(self) -> bool:
        return self.ended_at is None

    def summary(self) -> str:
        """``previously disqualified on DATE for REASON by USER``."""
        return f"previously disqualified on {self.at.date().isoformat()} for {self.reason} by {self.actor}"


def plan_disqualification(
    *,
    lead_id: int,
    cycle: int,
    reason: str,
    note: str | None,
    actor: str,
    at: datetime,
    strategy: Strategy,
    fit_snapshot: Mapping[str, Any] | None,
) -> Disqualification:
    """The record to keep when a lead is disqualified, with its first follow-up and re-check dates."""
    follow_up = strategy.follow_up_days if Remedy.FOLLOW_UP in strategy.remedies else None
    first = at + timedelta(days=follow_up) if follow_up else None
    return Disqualification(
        lead_id=lead_id,
        cycle=cycle,
        reason=reason,
        note=note,
        actor=actor,
        at=at,
        strategy=strategy,
        recheck_at=first,
        next_follow_up_at=first,
        fit_snapshot=dict(fit_snapshot) if fit_snapshot is not None else None,
    )


def next_follow_up(record: Disqualification) -> tuple[datetime | None, bool]:
    """After one more follow-up: the next date (None when the strategy ends) and whether it ended."""
    days = record.strategy.follow_up_days
    done = record.follow_ups_done + 1
    limit = record.strategy.max_follow_ups
    if not days or record.next_follow_up_at is None or (limit is not None and done >= limit):
        return None, True
    return record.next_follow_up_at + timedelta(days=days), False


#: Activities that are not the person showing up again: things done to them, or them leaving.
NOT_RESURFACING = frozenset({"email_bounce", "unsubscribe", "email_sent", "call", "meeting"})


def resurfaces(activity_type: str) -> bool:
    """Whether an activity of this type means the person showed up again."""
    return activity_type not in NOT_RESURFACING


#: Fit facts compared to tell whether a resurfacing person's circumstances changed.
FIT_FACTS = ("fit_grade", "job_title", "company")


@dataclass(frozen=True)
class ResurfaceDecision:
    reopen: bool
    reason: str | None  # recheck_due or fit_changed when reopening
    note: str


def fit_changes(before: Mapping[str, Any] | None, now: Mapping[str, Any]) -> list[str]:
    """Readable differences between the fit facts at disqualification and now."""
    if not before:
        return []
    out = []
    for key in FIT_FACTS:
        old, new = before.get(key), now.get(key)
        if new in (None, "") and key in ("job_title", "company"):
            continue  # saying nothing about the title is not a change of title
        if old in (None, "") and key == "fit_grade":
            continue  # not scored then (no active model): nothing to compare with
        if (old or None) != (new or None):
            label = key.replace("_", " ")
            out.append(f"{label} {old or 'none'!s} -> {new or 'none'!s}")
    return out


def decide_resurfaced(
    record: Disqualification, *, fit_now: Mapping[str, Any], via: str, at: datetime
) -> ResurfaceDecision:
    """Whether a disqualified person who shows up again is reopened, and the note that says why."""
    seen = f"resurfaced via {via} on {at.date().isoformat()}"
    if record.recheck_at is not None and at >= record.recheck_at:
        return ResurfaceDecision(
            True,
            "recheck_due",
            f"{seen}; re-check date {record.recheck_at.date().isoformat()} has passed ({record.summary()})",
        )
    changes = fit_changes(record.fit_snapshot, fit_now)
    if changes:
        return ResurfaceDecision(
            True, "fit_changed", f"{seen}; fit changed: {', '.join(changes)} ({record.summary()})"
        )
    until = f" until {record.recheck_at.date().isoformat()}" if record.recheck_at else ""
    return ResurfaceDecision(False, None, f"{seen}; {record.summary()}; kept disqualified{until}")
