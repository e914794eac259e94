"""Lifecycle stages, statuses, roles and the one transition table (DOMAIN.md R6, R13, R14).

Every stage change goes through :func:`plan_transition`, which checks, in this order:

1. the input: the action is known and the fields it needs are present and well-formed
   (``ValidationError``: CLI exit 2);
2. the actor: the role may take this action on this lead (``PermissionDenied``), checked before the
   lead's state so that a user who may not act learns nothing about it;
3. the state: the action is allowed from the lead's stage and status (``InvalidTransition``, naming
   the actions that are allowed from there);
4. the policy: for ``qualify_sql``, the qualification policy passed (``PolicyNotMet``).

The result is a :class:`TransitionOutcome`: the new state and the history entry to keep. It never
mutates anything and never reads a clock: the caller passes ``at``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from leadstage.domain.errors import (
    InvalidTransition,
    MissingField,
    PermissionDenied,
    PolicyNotMet,
    UnknownAction,
    UnknownReasonCode,
    ValidationError,
)


class Stage(StrEnum):
    LEAD = "lead"
    MQL = "mql"
    SQL = "sql"
    OPPORTUNITY = "opportunity"
    CUSTOMER = "customer"
    EVANGELIST = "evangelist"

    @property
    def rank(self) -> int:
        return STAGE_ORDER.index(self)


STAGE_ORDER: tuple[Stage, ...] = tuple(Stage)


class Status(StrEnum):
    OPEN = "open"
    WORKING = "working"
    NURTURE = "nurture"
    DISQUALIFIED = "disqualified"


class Role(StrEnum):
    ADMIN = "admin"
    MARKETING = "marketing"
    SALES_REP = "sales_rep"
    SALES_MANAGER = "sales_manager"
    VIEWER = "viewer"
    SYSTEM = "system"


SALES_ROLES = frozenset({Role.SALES_REP, Role.SALES_MANAGER})
#: Roles that bring data in and take it out in bulk (imports and exports).
BULK_ROLES = frozenset({Role.ADMIN, Role.MARKETING, Role.SALES_MANAGER})
#: Roles that save and delete segments (shared views of the lead base).
SEGMENT_EDITORS = frozenset({Role.ADMIN, Role.MARKETING, Role.SALES_MANAGER})


class Action(StrEnum):
    PROMOTE_MQL = "promote_mql"
    ACCEPT = "accept"
    REJECT = "reject"
    QUALIFY_SQL = "qualify_sql"
    OPEN_OPPORTUNITY = "open_opportunity"
    WIN = "win"
    LOSE = "lose"
    RECYCLE = "recycle"
    ADVOCATE = "advocate"
    DISQUALIFY = "disqualify"
    REOPEN = "reopen"


class HistoryKind(StrEnum):
    """History entries that are not transitions of the table."""

    CREATE = "create"
    MERGE = "merge"
    FORGET = "forget"  # personal data erased (services.privacy)


class Need(StrEnum):
    """What an action needs besides the actor."""

    REASON = "reason"
    NOTE = "note"
    REASON_AND_NOTE = "reason_and_note"
    CRITERIA_OR_MANUAL = "criteria_or_manual"
    QUALIFICATION = "qualification"
    OPPORTUNITY = "opportunity"
    CLOSE = "close"
    ADVOCACY_OR_NOTE = "advocacy_or_note"


ANY_STATUS: frozenset[Status] = frozenset(Status)


@dataclass(frozen=True)
class Rule:
    """One row of the transition table."""

    action: Action
    from_stages: frozenset[Stage]
    from_statuses: frozenset[Status]
    to_stage: Stage | None  # None: the stage stays as it is
    to_status: Status
    roles: frozenset[Role]
    needs: Need | None = None
    new_cycle_from: frozenset[Status] = frozenset()  # a new cycle starts when leaving one of these statuses
    always_new_cycle: bool = False


def _s(*items: Stage) -> frozenset[Stage]:
    return frozenset(items)


def _st(*items: Status) -> frozenset[Status]:
    return frozenset(items)


def _r(*items: Role) -> frozenset[Role]:
    return frozenset({Role.ADMIN, *items})


S, St, R = Stage, Status, Role

#: The transition table of DOMAIN.md, one row per action. Admin may do everything.
TRANSITIONS: Mapping[Action, Rule] = {
    rule.action: rule
    for rule in (
        Rule(
            Action.PROMOTE_MQL,
            _s(S.LEAD),
            _st(St.OPEN, St.NURTURE),
            S.MQL,
            St.OPEN,
            _r(R.SYSTEM, R.MARKETING),
            Need.CRITERIA_OR_MANUAL,
            new_cycle_from=_st(St.NURTURE),
        ),
        Rule(Action.ACCEPT, _s(S.MQL), _st(St.OPEN), S.MQL, St.WORKING, _r(*SALES_ROLES)),
        Rule(
            Action.REJECT,
            _s(S.MQL),
            _st(St.OPEN, St.WORKING),
            S.LEAD,
            St.NURTURE,
            _r(*SALES_ROLES),
            Need.REASON,
        ),
        Rule(
            Action.QUALIFY_SQL,
            _s(S.MQL),
            _st(St.WORKING),
            S.SQL,
            St.WORKING,
            _r(*SALES_ROLES),
            Need.QUALIFICATION,
        ),
        Rule(
            Action.OPEN_OPPORTUNITY,
            _s(S.SQL),
            _st(St.WORKING),
            S.OPPORTUNITY,
            St.WORKING,
            _r(*SALES_ROLES),
            Need.OPPORTUNITY,
        ),
        Rule(
            Action.WIN, _s(S.OPPORTUNITY), _st(St.WORKING), S.CUSTOMER, St.OPEN, _r(*SALES_ROLES), Need.CLOSE
        ),
        Rule(
            Action.LOSE, _s(S.OPPORTUNITY), _st(St.WORKING), S.LEAD, St.NURTURE, _r(*SALES_ROLES), Need.REASON
        ),
        Rule(
            Action.RECYCLE,
            _s(S.SQL, S.OPPORTUNITY),
            _st(St.WORKING),
            S.LEAD,
            St.NURTURE,
            _r(*SALES_ROLES),
            Need.REASON,
        ),
        Rule(
            Action.ADVOCATE,
            _s(S.CUSTOMER),
            _st(St.OPEN),
            S.EVANGELIST,
            St.OPEN,
            _r(R.SYSTEM, *SALES_ROLES, R.MARKETING),
            Need.ADVOCACY_OR_NOTE,
        ),
        Rule(
            Action.DISQUALIFY,
            _s(S.LEAD, S.MQL, S.SQL, S.OPPORTUNITY),
            _st(St.OPEN, St.WORKING, St.NURTURE),
            None,
            St.DISQUALIFIED,
            _r(R.MARKETING, *SALES_ROLES),
            Need.REASON_AND_NOTE,
        ),
        Rule(
            Action.REOPEN,
            _s(S.LEAD, S.MQL, S.SQL, S.OPPORTUNITY),
            _st(St.DISQUALIFIED),
            S.LEAD,
            St.OPEN,
            _r(R.SYSTEM, R.MARKETING, *SALES_ROLES),
            Need.REASON,
            always_new_cycle=True,
        ),
    )
}

#: Marketing may disqualify only at these stages; sales at any stage the table allows.
MARKETING_DISQUALIFY_STAGES = _s(S.LEAD, S.MQL)

#: Reason codes per action (the default taxonomy; DOMAIN.md R17, R18, R11).
SALES_REJECTION_REASONS: tuple[str, ...] = (
    "not_icp",
    "no_need",
    "bad_timing",
    "no_budget",
    "not_decision_maker",
    "student_or_job_seeker",
    "competitor",
    "invalid_contact",
    "duplicate",
    "unresponsive",
    "other",
)
LOSS_REASONS: tuple[str, ...] = (
    "price",
    "competitor",
    "no_decision",
    "no_budget",
    "bad_timing",
    "product_fit",
    "unresponsive",
    "other",
)
REOPEN_REASONS: tuple[str, ...] = ("recheck_due", "fit_changed", "resurfaced", "manual")
REASON_CODES: Mapping[Action, tuple[str, ...]] = {
    Action.PROMOTE_MQL: ("criteria_met", "manual"),
    Action.REJECT: SALES_REJECTION_REASONS,
    Action.DISQUALIFY: SALES_REJECTION_REASONS,
    Action.RECYCLE: SALES_REJECTION_REASONS,
    Action.LOSE: LOSS_REASONS,
    Action.REOPEN: REOPEN_REASONS,
}
#: Reason codes that are only valid with a note explaining them.
REASONS_NEEDING_NOTE = frozenset({"other", "manual"})

ADVOCACY_ACTIVITY_TYPES = frozenset({"referral_made", "review", "case_study", "nps_response"})


@dataclass(frozen=True)
class LeadState:
    """What the transition table looks at."""

    stage: Stage
    status: Status
    cycle: int
    furthest_stage: Stage
    owner_id: int | None = None
    owner_team: str | None = None

    @property
    def label(self) -> str:
        return f"{self.stage.value}/{self.status.value}"


@dataclass(frozen=True)
class Actor:
    """Who acts: a user (with role and team) or the system."""

    name: str
    role: Role
    user_id: int | None = None
    team: str | None = None

    @staticmethod
    def system() -> Actor:
        return Actor(name="system", role=Role.SYSTEM)


@dataclass(frozen=True)
class TransitionRequest:
    """An action with the fields some actions need; see :class:`Need`."""

    action: str
    reason: str | None = None
    note: str | None = None
    amount: str | Decimal | None = None
    currency: str | None = None
    close_date: str | date | None = None
    criteria: Sequence[str] = ()
    advocacy_activity: str | None = None


@dataclass(frozen=True)
class HistoryEntry:
    """One row of a lead's history: a transition or another recorded event."""

    action: str
    from_stage: Stage | None
    from_status: Status | None
    to_stage: Stage
    to_status: Status
    actor: str
    at: datetime
    cycle: int
    reason: str | None = None
    note: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


def entry_fields(entry: HistoryEntry) -> dict[str, Any]:
    """A history entry as plain values (stages and statuses as their names; ``at`` stays a datetime)."""
    return {
        "action": entry.action,
        "from_stage": entry.from_stage.value if entry.from_stage else None,
        "from_status": entry.from_status.value if entry.from_status else None,
        "to_stage": entry.to_stage.value,
        "to_status": entry.to_status.value,
        "actor": entry.actor,
        "reason": entry.reason,
        "note": entry.note,
        "at": entry.at,
        "cycle": entry.cycle,
        "data": dict(entry.data),
    }


@dataclass(frozen=True)
class TransitionOutcome:
    state: LeadState
    entry: HistoryEntry
    new_cycle: bool


@dataclass(frozen=True)
class QualificationCheck:
    """The result of the qualification policy, computed from the lead's qualification record."""

    passed: bool
    missing: tuple[str, ...] = ()
    summary: str = ""


def parse_action(name: str) -> Action:
    try:
        return Action(name.strip().lower())
    except ValueError:
        known = ", ".join(a.value for a in Action)
        raise UnknownAction(f"unknown action {name!r}; known actions: {known}", field="action") from None


def _validated_fields(rule: Rule, request: TransitionRequest, actor: Actor) -> dict[str, Any]:
    """Check that the request carries what the action needs; return the normalised data to keep."""
    data: dict[str, Any] = {}
    reason = (request.reason or "").strip() or None
    note = (request.note or "").strip() or None
    codes = REASON_CODES.get(rule.action)
    if reason is not None and codes is not None and reason not in codes:
        raise UnknownReasonCode(
            f"unknown reason code {reason!r} for {rule.action.value}; known: {', '.join(codes)}",
            field="reason",
        )
    needs = rule.needs
    if needs in (Need.REASON, Need.REASON_AND_NOTE) and reason is None:
        raise MissingField(
            f"{rule.action.value} needs a reason code (--reason); one of: {', '.join(codes or ())}",
            field="reason",
        )
    if needs is Need.REASON_AND_NOTE and note is None:
        raise MissingField(f"{rule.action.value} needs a note (--note) explaining the reason", field="note")
    if (
        reason in REASONS_NEEDING_NOTE
        and note is None
        and not (rule.action is Action.PROMOTE_MQL and actor.role is Role.SYSTEM)
    ):
        raise MissingField(f"reason {reason!r} needs a note (--note)", field="note")
    if needs is Need.CRITERIA_OR_MANUAL:
        if actor.role is Role.SYSTEM:
            if not request.criteria:
                raise MissingField("automatic promotion must name the MQL criteria met", field="criteria")
            data["criteria"] = list(request.criteria)
            reason = reason or "criteria_met"
        elif reason != "manual":
            raise MissingField("a manual promotion needs reason code 'manual' and a note", field="reason")
    if needs is Need.OPPORTUNITY:
        data["amount"] = str(_amount(request.amount, "amount"))
        data["currency"] = _currency(request.currency)
        data["expected_close"] = _date(request.close_date, "close_date").isoformat()
    if needs is Need.CLOSE:
        data["closed_amount"] = str(_amount(request.amount, "amount"))
        if request.currency:
            data["currency"] = _currency(request.currency)
        data["closed_on"] = _date(request.close_date, "close_date").isoformat()
    if needs is Need.ADVOCACY_OR_NOTE:
        if request.advocacy_activity:
            if request.advocacy_activity not in ADVOCACY_ACTIVITY_TYPES:
                raise ValidationError(
                    f"{request.advocacy_activity!r} is not an advocacy activity; one of "
                    f"{', '.join(sorted(ADVOCACY_ACTIVITY_TYPES))}",
                    field="advocacy_activity",
                )
            data["advocacy_activity"] = request.advocacy_activity
        elif note is None:
            raise MissingField("advocate needs an advocacy activity or a note (--note)", field="note")
    data["_reason"] = reason
    data["_note"] = note
    return data


def check_request(request: TransitionRequest, actor: Actor) -> None:
    """Validate a request's input (action, reason, note, amounts) before it is applied to any lead."""
    _validated_fields(TRANSITIONS[parse_action(request.action)], request, actor)


def _amount(value: str | Decimal | None, name: str) -> Decimal:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise MissingField(f"--{name} is required", field=name)
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        raise ValidationError(f"{name} must be a number, got {value!r}", field=name) from None
    if not amount.is_finite() or amount < 0:
        raise ValidationError(f"{name} must be a non-negative number, got {value!r}", field=name)
    return amount


def _currency(value: str | None) -> str:
    code = (value or "").strip().upper()
    if not code:
        raise MissingField("--currency is required (ISO 4217 code such as EUR)", field="currency")
    if len(code) != 3 or not code.isalpha():
        raise ValidationError(
            f"currency must be a three-letter ISO 4217 code, got {value!r}", field="currency"
        )
    return code


def _date(value: str | date | None, name: str) -> date:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise MissingField(f"--{name.replace('_', '-')} is required (YYYY-MM-DD)", field=name)
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(f"{name} must be a date YYYY-MM-DD, got {value!r}", field=name) from None


def role_may(rule: Rule, actor: Actor, state: LeadState) -> bool:
    """Whether the actor may take this action on a lead in this state (role and ownership)."""
    if actor.role not in rule.roles:
        return False
    if actor.role is Role.MARKETING and rule.action is Action.DISQUALIFY:
        return state.stage in MARKETING_DISQUALIFY_STAGES
    if actor.role is Role.SALES_REP:
        return state.owner_id is None or state.owner_id == actor.user_id
    if actor.role is Role.SALES_MANAGER:
        return state.owner_id is None or (actor.team is not None and state.owner_team == actor.team)
    return True


def _authorize(rule: Rule, actor: Actor, state: LeadState) -> None:
    if actor.role not in rule.roles:
        raise PermissionDenied(f"role {actor.role.value} may not {rule.action.value}")
    if not role_may(rule, actor, state):
        if actor.role is Role.MARKETING:
            raise PermissionDenied("marketing may disqualify only leads at the lead or mql stage")
        raise PermissionDenied(
            f"{actor.name} ({actor.role.value}) may not {rule.action.value} this lead: "
            "it is owned by someone outside their reach"
        )


def allowed_actions(state: LeadState, actor: Actor | None = None) -> list[str]:
    """The actions allowed from this state, for this actor when one is given, in table order."""
    out = []
    for rule in TRANSITIONS.values():
        if (
            state.stage in rule.from_stages
            and state.status in rule.from_statuses
            and (actor is None or role_may(rule, actor, state))
        ):
            out.append(rule.action.value)
    return out


def actions_reaching(state: LeadState, stage: Stage) -> list[Action]:
    """The actions of the table that take a lead in this state to ``stage`` (a board's drag and drop)."""
    return [
        rule.action
        for rule in TRANSITIONS.values()
        if state.stage in rule.from_stages
        and state.status in rule.from_statuses
        and (rule.to_stage or state.stage) is stage
        and rule.to_status is not Status.DISQUALIFIED
    ]


def plan_transition(
    state: LeadState,
    request: TransitionRequest,
    *,
    actor: Actor,
    at: datetime,
    qualification: QualificationCheck | None = None,
) -> TransitionOutcome:
    """Apply one row of the table to a state; raise a specific error when it may not happen."""
    action = parse_action(request.action)
    rule = TRANSITIONS[action]
    data = _validated_fields(rule, request, actor)
    _authorize(rule, actor, state)
    to_stage = rule.to_stage or state.stage
    if state.stage not in rule.from_stages or state.status not in rule.from_statuses:
        why = (
            f"{action.value} needs stage {'/'.join(s.value for s in sorted(rule.from_stages, key=_rank))} "
            f"with status {'/'.join(s.value for s in sorted(rule.from_statuses))}"
        )
        raise InvalidTransition(
            state.label, f"{to_stage.value}/{rule.to_status.value}", why, allowed_actions(state, actor)
        )
    if action is Action.QUALIFY_SQL:
        check = qualification or QualificationCheck(
            passed=False, missing=("budget", "authority", "need", "timeline")
        )
        if not check.passed:
            raise PolicyNotMet(
                f"qualification policy not met: missing {', '.join(check.missing)}", check.missing
            )
        if check.summary:
            data["qualification"] = check.summary
    new_cycle = rule.always_new_cycle or state.status in rule.new_cycle_from
    cycle = state.cycle + 1 if new_cycle else state.cycle
    furthest = to_stage if to_stage.rank > state.furthest_stage.rank else state.furthest_stage
    new_state = LeadState(
        stage=to_stage,
        status=rule.to_status,
        cycle=cycle,
        furthest_stage=furthest,
        owner_id=state.owner_id,
        owner_team=state.owner_team,
    )
    reason = data.pop("_reason")
    note = data.pop("_note")
    entry = HistoryEntry(
        action=action.value,
        from_stage=state.stage,
        from_status=state.status,
        to_stage=to_stage,
        to_status=rule.to_status,
        actor=actor.name,
        at=at,
        cycle=cycle,
        reason=reason,
        note=note,
        data=data,
    )
    return TransitionOutcome(state=new_state, entry=entry, new_cycle=new_cycle)


def _rank(stage: Stage) -> int:
    return stage.rank


def initial_state() -> LeadState:
    return LeadState(stage=Stage.LEAD, status=Status.OPEN, cycle=1, furthest_stage=Stage.LEAD)


def creation_entry(*, actor: str, at: datetime, source: str | None = None) -> HistoryEntry:
    """The first history row of every lead: it starts cycle 1 at stage lead/open."""
    data = {"source": source} if source else {}
    return HistoryEntry(
        action=HistoryKind.CREATE.value,
        from_stage=None,
        from_status=None,
        to_stage=Stage.LEAD,
        to_status=Status.OPEN,
        actor=actor,
        at=at,
        cycle=1,
        data=data,
    )


def time_in_stages(entries: Sequence[HistoryEntry], *, as_of: datetime) -> dict[Stage, float]:
    """Seconds spent in each stage, derived from a lead's history in time order (R13)."""
    spent: dict[Stage, float] = {}
    ordered = sorted(entries, key=lambda e: e.at)
    for current, following in zip(ordered, [*ordered[1:], None], strict=True):
        end = following.at if following is not None else as_of
        spent[current.to_stage] = spent.get(current.to_stage, 0.0) + max(
            0.0, (end - current.at).total_seconds()
        )
    return spent
