"""Routing use cases (R15, R16): set and show the routing document, route MQLs, re-route by hand,
the hand-off queue, and first-response SLAs.

``route_pending`` is the one routing step. It is idempotent and set-based: it reads every open MQL
without an owner in one query, asks storage which of them pass each rule's segment and filter (one
query per rule), lets the pure planner (``domain/routing.py``) decide best first, writes each
assignment with the lead's version (a lead changed meanwhile is left for the next run), and rewrites
the queue of leads that wait. Callers run it after anything that can make an MQL: ``score run``,
``import``, ``leads transition ... promote_mql``, ``tick`` and ``demo``.

Routing runs under a lock (``uow.routing.lock``) so that two routers (a ``tick`` in ``serve`` and a
``score run``) never hand the same lead out twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from leadstage.domain.errors import (
    ConcurrencyConflict,
    NotFound,
    PermissionDenied,
    RuleViolation,
    ValidationError,
)
from leadstage.domain.routing import (
    ASSIGN,
    KIND_MANUAL,
    KIND_SLA_REROUTE,
    SLA_BREACH,
    Candidate,
    Decision,
    Directory,
    Locate,
    MemberLoad,
    RoutingDocument,
    TeamDay,
    choose_member,
    parse_document,
    plan,
)
from leadstage.domain.stages import Actor, HistoryEntry, Role, Stage, Status
from leadstage.domain.tasks import Task, TaskKind
from leadstage.services import audit
from leadstage.services import segments as segment_service
from leadstage.services.leads import resolve_lead
from leadstage.services.ports import (
    AssignmentRecord,
    NewAssignment,
    PendingResponse,
    QueuedLead,
    StoredRouting,
    UnitOfWork,
    UserRecord,
)

ROUTING_LOCK = "routing"
Loader = Callable[[str, str], tuple[Any, Locate]]
SLA_OPEN_STATUSES = ("open", "working")


# ---- the document --------------------------------------------------------------------------------------


def directory(uow: UnitOfWork) -> Directory:
    return Directory(
        users={u.username: (u.role, u.active) for u in uow.users.all()},
        segments=frozenset(s.name for s in uow.segments.all()),
    )


def _check_filter(uow: UnitOfWork, expr: str) -> None:
    segment_service.parse(uow, expr)


def validate_document(uow: UnitOfWork, text: str, *, source: str, load: Loader) -> RoutingDocument:
    """Parse and check a routing document against this database (users, segments, filters)."""
    if not text.strip():
        raise ValidationError(f"{source}: the routing document is empty", field="file")
    data, locate = load(text, source)
    return parse_document(
        data,
        locate,
        source=source,
        directory=directory(uow),
        check_filter=lambda expr: _check_filter(uow, expr),
    )


def set_routing(
    uow: UnitOfWork, text: str, *, source: str, load: Loader, actor: Actor, at: datetime
) -> StoredRouting:
    """Validate, then store the document as the new active version; the caller commits.

    Admins and sales managers may set routing. Nothing is stored when anything is wrong.
    """
    document = validate_document(uow, text, source=source, load=load)
    if actor.role not in (Role.ADMIN, Role.SALES_MANAGER):
        raise PermissionDenied(
            f"{actor.name} ({actor.role.value}) may not set routing; admins and sales managers may"
        )
    if not uow.routing.lock(ROUTING_LOCK, holder=actor.name, at=at):
        raise ConcurrencyConflict("routing is being changed or run by another process; try again")
    user_ids = {u.username: u.id for u in uow.users.all()}
    uow.routing.save(document, source=text, user_ids=user_ids, created_by=actor.name, at=at)
    stored = uow.routing.active()
    assert stored is not None
    audit.record(
        uow,
        actor,
        "routing.set",
        at=at,
        target=stored.name,
        version=stored.version,
        teams=sorted(document.teams),
    )
    return stored


def active_document(uow: UnitOfWork) -> StoredRouting:
    stored = uow.routing.active()
    if stored is None:
        raise NotFound("no routing document yet: write one and run `leadstage routing set FILE`")
    return stored


def show_routing(uow: UnitOfWork) -> dict[str, Any]:
    """The active document (teams, members, territories, ordered rules) and the queues' sizes."""
    stored = active_document(uow)
    counts = uow.routing.queue_counts()
    doc = stored.document.as_json()
    for name, team in doc["teams"].items():
        team["queued"] = counts.get(name, 0)
    return {
        "version": stored.version,
        "name": stored.name,
        "created_by": stored.created_by,
        "created_at": stored.created_at.isoformat(),
        **doc,
        "unassigned_queue": counts.get(None, 0),
    }


def set_away(uow: UnitOfWork, username: str, until: date | None, *, actor: Actor) -> None:
    """Mark a member out of office until a date (``None``: back); the caller commits."""
    user = uow.users.get_by_username(username)
    if user is None:
        raise NotFound(f"no user {username!r} (see `leadstage users list`)")
    allowed = (
        actor.role is Role.ADMIN
        or actor.user_id == user.id
        or (actor.role is Role.SALES_MANAGER and actor.team is not None and actor.team == user.team)
    )
    if not allowed:
        raise PermissionDenied(f"{actor.name} ({actor.role.value}) may not change {username}'s availability")
    if not uow.routing.set_out_of_office(user.id, until):
        raise ValidationError(
            f"{username!r} is in no routing team (see `leadstage routing show`)", field="user"
        )


def team_overview(uow: UnitOfWork, *, at: datetime) -> list[dict[str, Any]]:
    """Each team of the active document with today's hand-offs, its queue and each member's load."""
    stored = active_document(uow)
    doc = stored.document
    loads, days, _users = _loads(uow, doc, at)
    queued_by_team = uow.routing.queue_counts()
    out = []
    for team in doc.teams.values():
        day = days[team.name]
        out.append(
            {
                "name": team.name,
                "manager": team.manager,
                "timezone": team.timezone,
                "first_response_minutes": team.first_response_minutes,
                "daily_capacity": team.daily_capacity,
                "handed_today": day.handed,
                "queued": queued_by_team.get(team.name, 0),
                "reroute_on_breach": team.reroute_on_breach,
                "members": [
                    {
                        "user": m.username,
                        "weight": m.weight,
                        "open_mqls": loads[m.username].open_mqls if m.username in loads else 0,
                        "today": loads[m.username].today if m.username in loads else 0,
                        "max_open": m.max_open,
                        "max_per_day": m.max_per_day,
                        "territories": list(m.territories),
                        "out_of_office_until": m.out_of_office_until.isoformat()
                        if m.out_of_office_until
                        else None,
                        "away": m.away(day.today),
                    }
                    for m in team.members
                ],
            }
        )
    return out


# ---- routing -------------------------------------------------------------------------------------------


@dataclass
class RouteReport:
    document: int | None = None
    considered: int = 0
    routed: int = 0
    queued: int = 0
    unassigned: int = 0
    conflicts: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)
    skipped: str | None = None
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _members(uow: UnitOfWork, names: set[str]) -> dict[str, UserRecord]:
    out = {}
    for name in names:
        user = uow.users.get_by_username(name)
        if user is not None:
            out[name] = user
    return out


def _loads(
    uow: UnitOfWork, doc: RoutingDocument, at: datetime, extra: frozenset[str] | set[str] = frozenset()
) -> tuple[dict[str, MemberLoad], dict[str, TeamDay], dict[str, UserRecord]]:
    """Members' current loads and each team's hand-offs today (their local day)."""
    since: dict[str, datetime] = {}
    days: dict[str, TeamDay] = {}
    for team in doc.teams.values():
        cal = team.calendar
        start = cal.start_of_day(at)
        days[team.name] = TeamDay(
            today=cal.local_date(at),
            handed=uow.routing.handed_since(team.name, start),
            capacity=team.daily_capacity,
        )
        for m in team.members:
            since[m.username] = start
    for name in extra:
        since.setdefault(name, at.replace(hour=0, minute=0, second=0, microsecond=0))
    users = _members(uow, set(since))
    raw = uow.routing.loads({n: u.id for n, u in users.items()}, since)
    loads = {}
    for name, user in users.items():
        open_mqls, today, last = raw.get(name, (0, 0, 0.0))
        loads[name] = MemberLoad(
            user_id=user.id,
            username=name,
            active=user.active,
            open_mqls=open_mqls,
            today=today,
            last_assigned=last,
        )
    return loads, days, users


def _awaits_response(stage: Stage, status: Status) -> bool:
    """Only an MQL (open, or accepted and being worked) waits for a first response."""
    return stage is Stage.MQL and status.value in SLA_OPEN_STATUSES


def _deadline(doc: RoutingDocument, team: str | None, at: datetime) -> datetime | None:
    policy = doc.teams.get(team) if team else None
    if policy is None:
        return None
    return policy.calendar.add_minutes(at, policy.first_response_minutes)


def _entry(
    *,
    cycle: int,
    stage: str,
    status: str,
    actor: str,
    at: datetime,
    kind: str,
    note: str,
    data: Mapping[str, Any],
) -> HistoryEntry:
    return HistoryEntry(
        action=ASSIGN,
        from_stage=Stage(stage),
        from_status=Status(status),
        to_stage=Stage(stage),
        to_status=Status(status),
        actor=actor,
        at=at,
        cycle=cycle,
        reason=kind,
        note=note,
        data=dict(data),
    )


def route_pending(uow: UnitOfWork, *, at: datetime, actor: str = "system", lock: bool = True) -> RouteReport:
    """Route every open MQL without an owner (see the module docstring); the caller commits."""
    report = RouteReport()
    if lock and not uow.routing.lock(ROUTING_LOCK, holder=actor, at=at):
        report.skipped = "another routing run holds the lock"
        return report
    stored = uow.routing.active()
    if stored is None:
        report.skipped = "no routing document (leadstage routing set FILE)"
        return report
    doc = stored.document
    report.document = stored.version
    leads = uow.routing.unrouted()
    report.considered = len(leads)
    if not leads:
        uow.routing.replace_queue([], at=at)
        return report
    ids = [lead.lead_id for lead in leads]
    matches: dict[int, frozenset[int]] = {}
    for index, rule in enumerate(doc.rules):
        filters = []
        try:
            if rule.segment:
                filters.append(segment_service.segment_filter(uow, rule.segment))
            if rule.filter:
                filters.append(segment_service.parse(uow, rule.filter))
        except (NotFound, ValidationError) as exc:
            matches[index] = frozenset()  # its segment was deleted or no longer reads: it matches nothing
            report.warnings.append(f"rule {rule.name!r} matches nothing: {exc}")
            continue
        matches[index] = (
            frozenset(ids) if not filters else frozenset(uow.routing.matching(filters, ids, as_of=at))
        )
    owners = {lead.account_owner for lead in leads if lead.account_owner}
    loads, days, users = _loads(uow, doc, at, owners)
    decisions = plan(doc, leads, matches, loads=loads, days=days, now_ts=at.timestamp())
    queue: list[QueuedLead] = []
    positions: dict[str | None, int] = {}
    by_id = {lead.lead_id: lead for lead in leads}
    writes: list[tuple[Decision, tuple[NewAssignment, HistoryEntry]]] = []
    for d in decisions:
        if d.user is None:
            positions[d.team] = positions.get(d.team, 0) + 1
            queue.append(
                QueuedLead(
                    lead_id=d.lead_id,
                    team=d.team,
                    rule=d.rule,
                    reason=d.reason,
                    position=positions[d.team],
                    priority=by_id[d.lead_id].priority,
                    queued_at=at,
                )
            )
            if d.team is None:
                report.unassigned += 1
            else:
                report.queued += 1
            continue
        writes.append((d, _assignment(d, users[d.user], doc=doc, version=stored.version, actor=actor, at=at)))
    results = uow.routing.assign_many([(new, d.version, history) for d, (new, history) in writes])
    for (d, _w), assignment_id in zip(writes, results, strict=True):
        if assignment_id is None:
            report.conflicts += 1
            continue
        report.routed += 1
        key = d.rule or d.kind
        report.by_rule[key] = report.by_rule.get(key, 0) + 1
    uow.routing.replace_queue(queue, at=at)
    return report


def _assignment(
    d: Decision,
    user: UserRecord,
    *,
    doc: RoutingDocument,
    version: int,
    actor: str,
    at: datetime,
) -> tuple[NewAssignment, HistoryEntry]:
    new = NewAssignment(
        lead_id=d.lead_id,
        cycle=d.cycle,
        team=d.team,
        user_id=user.id,
        username=user.username,
        kind=d.kind,
        rule=d.rule,
        reason=d.reason,
        candidates=[c.as_json() for c in d.candidates],
        actor=actor,
        at=at,
        counted=d.counted,
        document_version=version,
        sla_due_at=_deadline(doc, d.team, at),
    )
    history = _entry(
        cycle=d.cycle,
        stage="mql",
        status="open",
        actor=actor,
        at=at,
        kind=d.kind,
        note=f"assigned to {user.username}: {d.reason}",
        data={"to": user.username, "team": d.team, "rule": d.rule},
    )
    return new, history


# ---- manual re-routing ---------------------------------------------------------------------------------


def assign_lead(
    uow: UnitOfWork,
    ref: str | int,
    *,
    user: str | None,
    team: str | None,
    actor: Actor,
    at: datetime,
    note: str | None = None,
    expected_version: int | None = None,
) -> AssignmentRecord:
    """Give a lead to a user, or to the next free member of a team; the caller commits.

    An admin may re-route any lead; a sales manager leads that are unowned or owned in their team, and
    only to their team. A lead changed by someone else since it was read is a ``ConcurrencyConflict``
    and nothing is written.
    """
    if (user is None) == (team is None):
        raise ValidationError("name exactly one target: a user, or --team TEAM", field="user")
    stored = uow.routing.active()
    doc = stored.document if stored else None
    target = uow.users.get_by_username(user) if user else None
    if user is not None and target is None:
        raise NotFound(f"no user {user!r} (see `leadstage users list`)")
    if team is not None and (doc is None or team not in doc.teams):
        known = ", ".join(doc.teams) if doc else "none: no routing document yet"
        raise ValidationError(f"--team: no team {team!r} (teams: {known})", field="team")
    if target is not None and target.role not in (
        Role.SALES_REP.value,
        Role.SALES_MANAGER.value,
        Role.ADMIN.value,
    ):
        raise ValidationError(f"{target.username!r} is a {target.role}; leads go to sales", field="user")
    if target is not None and not target.active:
        raise ValidationError(f"{target.username!r} is deactivated", field="user")
    if actor.role not in (Role.ADMIN, Role.SALES_MANAGER):
        raise PermissionDenied(
            f"{actor.name} ({actor.role.value}) may not re-route leads; a sales manager of the lead's team or an "
            "admin may"
        )
    lead = resolve_lead(uow, ref)
    assert lead.id is not None
    target_team = team if team is not None else (target.team if target else None)
    if actor.role is Role.SALES_MANAGER:
        theirs = lead.owner_id is None or (actor.team is not None and lead.state.owner_team == actor.team)
        if not theirs or target_team != actor.team:
            raise PermissionDenied(
                f"{actor.name} (sales_manager of {actor.team or 'no team'}) may re-route only their team's "
                "leads, to their team"
            )
    if expected_version is not None and lead.version != expected_version:
        raise ConcurrencyConflict(f"lead {lead.id} is at version {lead.version}, not {expected_version}")
    candidates: tuple[Candidate, ...]
    if team is not None:
        assert doc is not None
        loads, days, users = _loads(uow, doc, at)
        policy = doc.teams[team]
        exclude = [u for u, rec in users.items() if rec.id == lead.owner_id]
        chosen, candidates = choose_member(
            policy, loads, today=days[team].today, territory=None, exclude=exclude
        )
        if chosen is None:
            why = "; ".join(f"{c.username}: {c.why}" for c in candidates)
            raise RuleViolation(f"no member of team {team} is free ({why})")
        target = users[chosen.username]
        reason = f"re-routed by {actor.name} to team {team}: weighted round-robin"
    else:
        assert target is not None
        candidates = (Candidate(target.username, True, f"chosen by {actor.name}"),)
        reason = f"re-routed by {actor.name}"
    if note:
        reason += f" ({note})"
    previous = uow.users.get(lead.owner_id) if lead.owner_id else None
    member_team = doc.member(target.username).team if doc and doc.member(target.username) else target_team  # type: ignore[union-attr]
    new = NewAssignment(
        lead_id=lead.id,
        cycle=lead.cycle,
        team=member_team,
        user_id=target.id,
        username=target.username,
        kind=KIND_MANUAL,
        rule=None,
        reason=reason,
        candidates=[c.as_json() for c in candidates],
        actor=actor.name,
        at=at,
        counted=False,
        document_version=stored.version if stored else None,
        sla_due_at=_deadline(doc, member_team, at)
        if doc and _awaits_response(lead.stage, lead.status)
        else None,
    )
    history = _entry(
        cycle=lead.cycle,
        stage=lead.stage.value,
        status=lead.status.value,
        actor=actor.name,
        at=at,
        kind=KIND_MANUAL,
        note=f"assigned to {target.username}: {reason}",
        data={"to": target.username, "from": previous.username if previous else None, "team": member_team},
    )
    if uow.routing.assign(new, version=lead.version, history=history) is None:
        raise ConcurrencyConflict(
            f"lead {lead.id} was changed by someone else (version {lead.version} is stale); nothing was written, "
            "reload it and try again"
        )
    current = uow.routing.current(lead.id)
    assert current is not None
    return current


# ---- queue, assignments, explanations ------------------------------------------------------------------


def queued(uow: UnitOfWork, team: str | None = None, *, limit: int | None = None) -> list[QueuedLead]:
    """The leads waiting, per team, best first (``team='none'``: the unassigned queue)."""
    if team is not None and team.lower() == "none":
        return uow.routing.queue(unassigned=True, limit=limit)
    if team is not None:
        stored = uow.routing.active()
        if stored is None or team not in stored.document.teams:
            known = ", ".join(stored.document.teams) if stored else "none: no routing document yet"
            raise ValidationError(f"--team: no team {team!r} (teams: {known})", field="team")
    return uow.routing.queue(team, limit=limit)


def assignment_json(a: AssignmentRecord) -> dict[str, Any]:
    return {
        "id": a.id,
        "lead_id": a.lead_id,
        "cycle": a.cycle,
        "team": a.team,
        "user": a.username,
        "kind": a.kind,
        "rule": a.rule,
        "reason": a.reason,
        "candidates": a.candidates,
        "actor": a.actor,
        "at": a.at.isoformat(),
        "current": a.current,
        "sla": {
            "due_at": a.sla_due_at.isoformat() if a.sla_due_at else None,
            "state": a.sla_state,
            "responded_at": a.responded_at.isoformat() if a.responded_at else None,
            "response_business_minutes": a.response_minutes,
            "breached_at": a.breached_at.isoformat() if a.breached_at else None,
        },
    }


def queued_json(q: QueuedLead) -> dict[str, Any]:
    return {
        "lead_id": q.lead_id,
        "team": q.team,
        "position": q.position,
        "priority": q.priority,
        "rule": q.rule,
        "reason": q.reason,
        "queued_at": q.queued_at.isoformat(),
        "email": q.email,
        "name": q.name,
        "company": q.company,
    }


def explain_lead(uow: UnitOfWork, ref: str | int) -> dict[str, Any]:
    """A lead's owner, every assignment with the rule and candidates, and its place in a queue."""
    lead = resolve_lead(uow, ref)
    assert lead.id is not None
    waiting = uow.routing.queue(lead_id=lead.id)
    return {
        "lead_id": lead.id,
        "stage": lead.stage.value,
        "status": lead.status.value,
        "owner": uow.users.get(lead.owner_id).username if lead.owner_id else None,  # type: ignore[union-attr]
        "assignments": [assignment_json(a) for a in uow.routing.history(lead.id)],
        "queue": queued_json(waiting[0]) if waiting else None,
    }


# ---- response SLAs -------------------------------------------------------------------------------------


@dataclass
class SlaReport:
    checked: int = 0
    met: int = 0
    breached: int = 0
    rerouted: int = 0
    closed: int = 0
    tasks: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def evaluate_responses(uow: UnitOfWork, *, now: datetime, actor: str = "system") -> SlaReport:
    """Settle every pending first-response deadline: met by a sales activity, breached when due and
    unanswered (flagged, a task for the team's manager, re-routed when the team says so), closed when
    the lead left the MQL stage or changed owner. Set-based read; idempotent; the caller commits."""
    report = SlaReport()
    stored = uow.routing.active()
    doc = stored.document if stored else None
    pending = uow.routing.pending_responses()
    report.checked = len(pending)
    breaches: list[tuple[PendingResponse, bool]] = []
    for p in pending:
        policy = doc.teams.get(p.team) if doc and p.team else None
        if p.first_sales_at is not None:
            minutes = policy.calendar.minutes_between(p.at, p.first_sales_at) if policy else None
            late = p.first_sales_at > p.sla_due_at
            state = "breached" if late else "met"
            if uow.routing.set_sla_state(
                p.assignment_id,
                state=state,
                at=p.sla_due_at if late else None,
                responded_at=p.first_sales_at,
                minutes=minutes,
            ):
                if late:
                    breaches.append((p, False))
                else:
                    report.met += 1
            continue
        if p.stage != "mql" or p.status not in SLA_OPEN_STATUSES or p.owner_id != p.user_id:
            if uow.routing.set_sla_state(
                p.assignment_id, state="closed", at=None, responded_at=None, minutes=None
            ):
                report.closed += 1
            continue
        if p.sla_due_at <= now and uow.routing.set_sla_state(
            p.assignment_id, state="breached", at=now, responded_at=None, minutes=None
        ):
            breaches.append((p, True))
    if breaches:
        report.breached = len(breaches)
        report.tasks = _flag_breaches(uow, breaches, doc, now=now, actor=actor)
        report.rerouted = _reroute(uow, breaches, doc, stored, now=now, actor=actor)
    return report


def _flag_breaches(
    uow: UnitOfWork,
    breaches: list[tuple[PendingResponse, bool]],
    doc: RoutingDocument | None,
    *,
    now: datetime,
    actor: str,
) -> int:
    """A history row per breach and one keyed task for the team's manager (set-based); tasks stored."""
    managers: dict[str, int | None] = {}
    for team in doc.teams.values() if doc else ():
        user = uow.users.get_by_username(team.manager) if team.manager else None
        managers[team.name] = user.id if user else None
    rows: list[tuple[int, HistoryEntry]] = []
    tasks: list[Task] = []
    for p, unanswered in breaches:
        what = "no first response" if unanswered else "first response came late"
        rows.append(
            (
                p.lead_id,
                HistoryEntry(
                    action=SLA_BREACH,
                    from_stage=Stage(p.stage),
                    from_status=Status(p.status),
                    to_stage=Stage(p.stage),
                    to_status=Status(p.status),
                    actor=actor,
                    at=now,
                    cycle=p.cycle,
                    reason="unanswered" if unanswered else "late",
                    note=f"{what} from {p.username} by {p.sla_due_at.isoformat()}",
                    data={"assignment_id": p.assignment_id, "user": p.username, "team": p.team},
                ),
            )
        )
        tasks.append(
            Task(
                kind=TaskKind.SLA_BREACH,
                title=f"SLA breach: lead {p.lead_id}, {what} from {p.username}",
                due_at=now,
                created_at=now,
                created_by=actor,
                lead_id=p.lead_id,
                owner_id=managers.get(p.team) if p.team else None,
                key=f"sla:{p.lead_id}:{p.cycle}:{p.assignment_id}",
                data={
                    "assignment_id": p.assignment_id,
                    "user": p.username,
                    "team": p.team,
                    "due_at": p.sla_due_at.isoformat(),
                },
            )
        )
    uow.bulk.insert_history(rows)
    return uow.tasks.add_many(tasks)


def _reroute(
    uow: UnitOfWork,
    breaches: list[tuple[PendingResponse, bool]],
    doc: RoutingDocument | None,
    stored: StoredRouting | None,
    *,
    now: datetime,
    actor: str,
) -> int:
    """Hand each unanswered lead of a team that re-routes on breach to the next member who has not had
    it this cycle (loads read once, kept current in memory); returns how many were re-routed."""
    if doc is None:
        return 0
    todo = [
        p
        for p, unanswered in breaches
        if unanswered and p.team is not None and p.team in doc.teams and doc.teams[p.team].reroute_on_breach
    ]
    if not todo:
        return 0
    loads, days, users = _loads(uow, doc, now)
    had = uow.routing.assigned_users([p.lead_id for p in todo])
    writes: list[tuple[NewAssignment, int, HistoryEntry]] = []
    for p in todo:
        assert p.team is not None
        policy = doc.teams[p.team]
        exclude = had.get((p.lead_id, p.cycle), set()) | {p.username}
        chosen, candidates = choose_member(
            policy, loads, today=days[policy.name].today, territory=None, exclude=exclude
        )
        if chosen is None:
            continue
        load = loads[chosen.username]
        load.today += 1
        load.open_mqls += 1
        load.last_assigned = now.timestamp()
        user = users[chosen.username]
        reason = (
            f"{p.username} missed the first-response deadline {p.sla_due_at.isoformat()}; "
            f"re-routed in team {policy.name}"
        )
        new = NewAssignment(
            lead_id=p.lead_id,
            cycle=p.cycle,
            team=policy.name,
            user_id=user.id,
            username=user.username,
            kind=KIND_SLA_REROUTE,
            rule=None,
            reason=reason,
            candidates=[c.as_json() for c in candidates],
            actor=actor,
            at=now,
            counted=False,
            document_version=stored.version if stored else None,
            sla_due_at=policy.calendar.add_minutes(now, policy.first_response_minutes),
        )
        history = _entry(
            cycle=p.cycle,
            stage=p.stage,
            status=p.status,
            actor=actor,
            at=now,
            kind=KIND_SLA_REROUTE,
            note=f"assigned to {user.username}: {reason}",
            data={"to": user.username, "from": p.username, "team": policy.name},
        )
        writes.append((new, p.version, history))
    return sum(1 for r in uow.routing.assign_many(writes) if r is not None) if writes else 0


def sla_overview(
    uow: UnitOfWork,
    *,
    team: str | None = None,
    state: str | None = None,
    limit: int | None = None,
    now: datetime,
) -> list[dict[str, Any]]:
    """Current assignments with their first-response deadline and state, soonest due first."""
    if state is not None and state not in ("pending", "met", "breached", "closed"):
        raise ValidationError(f"--state: one of pending, met, breached, closed; got {state!r}", field="state")
    out = []
    for a in uow.routing.current_assignments(team=team, sla_state=state, limit=limit):
        doc = assignment_json(a)
        doc["overdue"] = a.sla_state == "pending" and a.sla_due_at is not None and a.sla_due_at <= now
        out.append(doc)
    return out
