"""Routing MQLs to owners (R15, R16): the routing document, rule matching and member choice.

One YAML document declares territories, teams (manager, time zone, business hours, holidays, first
response SLA, daily hand-off capacity, members with weights, capacities, territories and time away)
and the ordered rules. :func:`parse_document` validates all of it before anything is stored; every
error names the line and key (the adapter supplies ``locate``) and what it names must exist (users,
segments; filters are checked by the caller's ``check_filter``).

Deciding is pure: :func:`plan` takes the unrouted MQLs (best first), which rules each matches (computed
set-based by storage), the members' current loads and each team's hand-offs today, and returns one
:class:`Decision` per lead: an owner with the rule and the candidates considered (each with why it was
or was not chosen), or a place in a queue with the reason.

Weighted round-robin is a deficit count: the next lead goes to the eligible member with the fewest
hand-offs today per unit of weight (ties: fewer open MQLs, then whoever was assigned longest ago). It
needs no stored pointer, so it survives restarts and concurrent routers and is the same on every run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from typing import Any

from leadstage.domain.business_hours import (
    BusinessCalendar,
    Week,
    calendar,
    parse_duration_minutes,
    parse_week,
    zone,
)
from leadstage.domain.errors import ValidationError
from leadstage.domain.stages import Role

#: History actions of routing (not transitions of the table: stage and status stay as they are).
ASSIGN = "assign"
SLA_BREACH = "sla_breach"

#: Why an assignment was made.
KIND_RULE = "rule"
KIND_ACCOUNT_OWNER = "account_owner"
KIND_SLA_REROUTE = "sla_reroute"
KIND_MANUAL = "manual"

GRADES = "ABCD"
DEFAULT_FIRST_RESPONSE_MINUTES = 240

Locate = Callable[[tuple[Any, ...]], int | None]

_DOC_KEYS = {"name", "territories", "teams", "rules"}
_TEAM_KEYS = {
    "manager",
    "timezone",
    "hours",
    "holidays",
    "first_response",
    "daily_capacity",
    "reroute_on_breach",
    "members",
}
_MEMBER_KEYS = {"weight", "max_open", "max_per_day", "territories", "out_of_office_until"}
_RULE_KEYS = {"name", "segment", "territory", "filter", "team", "user"}


@dataclass(frozen=True)
class MemberPolicy:
    username: str
    team: str
    weight: float = 1.0
    max_open: int | None = None  # open MQLs (open or working) at most
    max_per_day: int | None = None  # new leads per local day at most
    territories: tuple[str, ...] = ()
    out_of_office_until: date | None = None  # away before this date; back on it

    def away(self, today: date) -> bool:
        return self.out_of_office_until is not None and today < self.out_of_office_until


@dataclass(frozen=True)
class TeamPolicy:
    name: str
    manager: str | None
    timezone: str
    week: Week
    holidays: tuple[date, ...] = ()
    first_response_minutes: int = DEFAULT_FIRST_RESPONSE_MINUTES
    daily_capacity: int | None = None
    reroute_on_breach: bool = False
    members: tuple[MemberPolicy, ...] = ()

    @cached_property
    def calendar(self) -> BusinessCalendar:
        return calendar(self.timezone, self.week, self.holidays)


@dataclass(frozen=True)
class RoutingRule:
    name: str
    team: str | None = None
    user: str | None = None
    segment: str | None = None
    territories: tuple[str, ...] = ()
    filter: str | None = None

    @property
    def conditions(self) -> str:
        parts = []
        if self.segment:
            parts.append(f"segment {self.segment}")
        if self.territories:
            parts.append("territory " + "/".join(self.territories))
        if self.filter:
            parts.append(f"filter {self.filter}")
        return " and ".join(parts) or "every lead"


@dataclass(frozen=True)
class RoutingDocument:
    name: str
    territories: Mapping[str, tuple[str, ...]]  # territory -> countries as written
    teams: Mapping[str, TeamPolicy]
    rules: tuple[RoutingRule, ...]

    def territory_of(self, country: str | None) -> str | None:
        """The first territory listing the country (case-insensitive), or None."""
        if not country:
            return None
        wanted = country.strip().casefold()
        for name, countries in self.territories.items():
            if any(c.casefold() == wanted for c in countries):
                return name
        return None

    def member(self, username: str) -> MemberPolicy | None:
        for team in self.teams.values():
            for m in team.members:
                if m.username == username:
                    return m
        return None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "territories": {k: list(v) for k, v in self.territories.items()},
            "teams": {
                t.name: {
                    "manager": t.manager,
                    "timezone": t.timezone,
                    "week": [[list(i) for i in day] for day in t.week],
                    "holidays": [d.isoformat() for d in t.holidays],
                    "first_response_minutes": t.first_response_minutes,
                    "daily_capacity": t.daily_capacity,
                    "reroute_on_breach": t.reroute_on_breach,
                    "members": [
                        {
                            "username": m.username,
                            "weight": m.weight,
                            "max_open": m.max_open,
                            "max_per_day": m.max_per_day,
                            "territories": list(m.territories),
                            "out_of_office_until": m.out_of_office_until.isoformat()
                            if m.out_of_office_until
                            else None,
                        }
                        for m in t.members
                    ],
                }
                for t in self.teams.values()
            },
            "rules": [
                {
                    "name": r.name,
                    "team": r.team,
                    "user": r.user,
                    "segment": r.segment,
                    "territories": list(r.territories),
                    "filter": r.filter,
                }
                for r in self.rules
            ],
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> RoutingDocument:
        teams = {}
        for name, t in data["teams"].items():
            teams[name] = TeamPolicy(
                name=name,
                manager=t["manager"],
                timezone=t["timezone"],
                week=tuple(tuple((int(a), int(b)) for a, b in day) for day in t["week"]),
                holidays=tuple(date.fromisoformat(d) for d in t["holidays"]),
                first_response_minutes=int(t["first_response_minutes"]),
                daily_capacity=t["daily_capacity"],
                reroute_on_breach=bool(t["reroute_on_breach"]),
                members=tuple(
                    MemberPolicy(
                        username=m["username"],
                        team=name,
                        weight=float(m["weight"]),
                        max_open=m["max_open"],
                        max_per_day=m["max_per_day"],
                        territories=tuple(m["territories"]),
                        out_of_office_until=date.fromisoformat(m["out_of_office_until"])
                        if m["out_of_office_until"]
                        else None,
                    )
                    for m in t["members"]
                ),
            )
        return RoutingDocument(
            name=data["name"],
            territories={k: tuple(v) for k, v in data["territories"].items()},
            teams=teams,
            rules=tuple(
                RoutingRule(
                    name=r["name"],
                    team=r["team"],
                    user=r["user"],
                    segment=r["segment"],
                    territories=tuple(r["territories"]),
                    filter=r["filter"],
                )
                for r in data["rules"]
            ),
        )


# ---- parsing -------------------------------------------------------------------------------------------


class _Reader:
    def __init__(self, source: str, locate: Locate) -> None:
        self.source, self.locate = source, locate

    def fail(self, path: tuple[Any, ...], message: str) -> ValidationError:
        line = self.locate(path)
        key = ".".join(str(p) for p in path) or "(document)"
        where = f"line {line}, " if line else ""
        return ValidationError(f"{self.source}: {where}{key}: {message}", field=key)

    def mapping(self, value: Any, path: tuple[Any, ...], keys: set[str] | None = None) -> Mapping[Any, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(path, "must be a mapping of keys to values")
        if keys is not None:
            for key in value:
                if key not in keys:
                    raise self.fail((*path, key), f"unknown key; one of {', '.join(sorted(keys))}")
        return value

    def names(self, value: Any, path: tuple[Any, ...]) -> tuple[str, ...]:
        if value is None:
            return ()
        items = value if isinstance(value, list) else [value]
        out = []
        for i, item in enumerate(items):
            if not isinstance(item, str | int | float) or isinstance(item, bool) or not str(item).strip():
                raise self.fail((*path, i) if isinstance(value, list) else path, "must be a name")
            out.append(str(item).strip())
        return tuple(out)

    def count(self, value: Any, path: tuple[Any, ...]) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(path, f"must be a whole number of at least 0, got {value!r}")
        return value

    def day(self, value: Any, path: tuple[Any, ...]) -> date:
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value).strip())
        except ValueError:
            raise self.fail(path, f"must be a date YYYY-MM-DD, got {value!r}") from None

    def wrap(self, path: tuple[Any, ...], call: Callable[[], Any]) -> Any:
        try:
            return call()
        except ValidationError as exc:
            detail = str(exc)
            if exc.field and detail.startswith(f"{exc.field}: "):
                detail = detail[len(exc.field) + 2 :]
            sub = tuple(p for p in (exc.field or "").split(".")[1:] if p)
            raise self.fail((*path, *sub), detail) from None


@dataclass(frozen=True)
class Directory:
    """What a routing document may name: users (name -> role, active) and segments."""

    users: Mapping[str, tuple[str, bool]]
    segments: frozenset[str]


def parse_document(
    data: Any,
    locate: Locate,
    *,
    source: str,
    directory: Directory,
    check_filter: Callable[[str], None],
) -> RoutingDocument:
    """Validate a routing document (see the module docstring); nothing is stored here."""
    r = _Reader(source, locate)
    if not isinstance(data, Mapping):
        raise r.fail((), "a routing document is a mapping with teams and rules")
    r.mapping(data, (), _DOC_KEYS)
    name = str(data.get("name") or "routing")
    territories: dict[str, tuple[str, ...]] = {}
    owner_of_country: dict[str, str] = {}
    for tname, countries in r.mapping(data.get("territories"), ("territories",)).items():
        path = ("territories", tname)
        listed = r.names(countries, path)
        if not listed:
            raise r.fail(path, "list at least one country")
        for country in listed:
            other = owner_of_country.get(country.casefold())
            if other is not None and other != str(tname):
                raise r.fail(path, f"{country!r} is already in territory {other!r}")
            owner_of_country[country.casefold()] = str(tname)
        territories[str(tname)] = listed
    raw_teams = r.mapping(data.get("teams"), ("teams",))
    if not raw_teams:
        raise r.fail(("teams",), "declare at least one team")
    teams: dict[str, TeamPolicy] = {}
    team_of_user: dict[str, str] = {}
    for tname, raw in raw_teams.items():
        teams[str(tname)] = _team(r, str(tname), raw, directory, territories, team_of_user)
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise r.fail(("rules",), "give the ordered rules as a list (at least one)")
    rules = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_rules):
        rule = _rule(r, i, raw, directory, territories, teams, team_of_user, check_filter)
        if rule.name in seen:
            raise r.fail(("rules", i, "name"), f"rule name {rule.name!r} is used twice")
        seen.add(rule.name)
        rules.append(rule)
    return RoutingDocument(name=name, territories=territories, teams=teams, rules=tuple(rules))


def _team(
    r: _Reader,
    name: str,
    raw: Any,
    directory: Directory,
    territories: Mapping[str, tuple[str, ...]],
    team_of_user: dict[str, str],
) -> TeamPolicy:
    path: tuple[Any, ...] = ("teams", name)
    spec = r.mapping(raw, path, _TEAM_KEYS)
    manager = spec.get("manager")
    if manager is not None:
        manager = str(manager)
        known = directory.users.get(manager)
        if known is None:
            raise r.fail((*path, "manager"), f"no user {manager!r} (see `leadstage users list`)")
        if known[0] not in (Role.SALES_MANAGER.value, Role.ADMIN.value):
            raise r.fail((*path, "manager"), f"{manager!r} is a {known[0]}, not a sales_manager")
    tz_name = spec.get("timezone")
    r.wrap((*path, "timezone"), lambda: zone(str(tz_name) if tz_name is not None else ""))
    if "hours" not in spec:
        raise r.fail((*path, "hours"), "give the business hours, e.g. mon-fri: 09:00-17:00")
    week: Week = r.wrap((*path, "hours"), lambda: parse_week(spec["hours"], field="hours"))
    raw_holidays = spec.get("holidays") or []
    if not isinstance(raw_holidays, list):
        raise r.fail((*path, "holidays"), "must be a list of dates YYYY-MM-DD")
    holidays = tuple(sorted({r.day(d, (*path, "holidays", i)) for i, d in enumerate(raw_holidays)}))
    first = spec.get("first_response", f"{DEFAULT_FIRST_RESPONSE_MINUTES}m")
    minutes = r.wrap((*path, "first_response"), lambda: parse_duration_minutes(first, field="first_response"))
    capacity = r.count(spec.get("daily_capacity"), (*path, "daily_capacity"))
    reroute = spec.get("reroute_on_breach", False)
    if not isinstance(reroute, bool):
        raise r.fail((*path, "reroute_on_breach"), "must be true or false")
    raw_members = spec.get("members")
    if isinstance(raw_members, list):  # a plain list of user names
        raw_members = {str(m): {} for m in raw_members}
    members_spec = r.mapping(raw_members, (*path, "members"))
    if not members_spec:
        raise r.fail((*path, "members"), "list the team's members")
    members = []
    for username, raw_member in members_spec.items():
        mpath = (*path, "members", username)
        username = str(username)
        known = directory.users.get(username)
        if known is None:
            raise r.fail(mpath, f"no user {username!r} (see `leadstage users list`)")
        if known[0] not in (Role.SALES_REP.value, Role.SALES_MANAGER.value):
            raise r.fail(mpath, f"{username!r} is a {known[0]}; only sales reps and managers take leads")
        if not known[1]:
            raise r.fail(mpath, f"{username!r} is deactivated")
        if username in team_of_user:
            raise r.fail(mpath, f"{username!r} is already a member of team {team_of_user[username]!r}")
        team_of_user[username] = name
        m = r.mapping(raw_member, mpath, _MEMBER_KEYS)
        weight = m.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight <= 1000:
            raise r.fail((*mpath, "weight"), f"must be a number above 0 (at most 1000), got {weight!r}")
        member_territories = r.names(m.get("territories"), (*mpath, "territories"))
        for i, terr in enumerate(member_territories):
            if terr not in territories:
                known_t = ", ".join(territories) or "none declared"
                raise r.fail((*mpath, "territories", i), f"no territory {terr!r} (territories: {known_t})")
        away = m.get("out_of_office_until")
        members.append(
            MemberPolicy(
                username=username,
                team=name,
                weight=float(weight),
                max_open=r.count(m.get("max_open"), (*mpath, "max_open")),
                max_per_day=r.count(m.get("max_per_day"), (*mpath, "max_per_day")),
                territories=member_territories,
                out_of_office_until=None if away is None else r.day(away, (*mpath, "out_of_office_until")),
            )
        )
    return TeamPolicy(
        name=name,
        manager=manager,
        timezone=str(tz_name).strip(),
        week=week,
        holidays=holidays,
        first_response_minutes=minutes,
        daily_capacity=capacity,
        reroute_on_breach=reroute,
        members=tuple(members),
    )


def _rule(
    r: _Reader,
    i: int,
    raw: Any,
    directory: Directory,
    territories: Mapping[str, tuple[str, ...]],
    teams: Mapping[str, TeamPolicy],
    team_of_user: Mapping[str, str],
    check_filter: Callable[[str], None],
) -> RoutingRule:
    path: tuple[Any, ...] = ("rules", i)
    spec = r.mapping(raw, path, _RULE_KEYS)
    name = str(spec.get("name") or f"rule {i + 1}")
    team, user = spec.get("team"), spec.get("user")
    if (team is None) == (user is None):
        raise r.fail(path, "name exactly one target: team or user")
    if team is not None and str(team) not in teams:
        raise r.fail((*path, "team"), f"no team {team!r} in this document (teams: {', '.join(teams)})")
    if user is not None:
        user = str(user)
        if user not in directory.users:
            raise r.fail((*path, "user"), f"no user {user!r} (see `leadstage users list`)")
        if user not in team_of_user:
            raise r.fail((*path, "user"), f"{user!r} is in no team of this document; add them to one")
    segment = spec.get("segment")
    if segment is not None and str(segment) not in directory.segments:
        known = ", ".join(sorted(directory.segments)[:20]) or "none yet"
        raise r.fail((*path, "segment"), f"no segment {segment!r} (segments: {known})")
    rule_territories = r.names(spec.get("territory"), (*path, "territory"))
    for terr in rule_territories:
        if terr not in territories:
            known_t = ", ".join(territories) or "none declared"
            raise r.fail((*path, "territory"), f"no territory {terr!r} (territories: {known_t})")
    flt = spec.get("filter")
    if flt is not None:
        flt = str(flt).strip()
        if not flt:
            raise r.fail((*path, "filter"), "is empty")
        r.wrap((*path, "filter"), lambda: check_filter(flt))
    return RoutingRule(
        name=name,
        team=None if team is None else str(team),
        user=user,
        segment=None if segment is None else str(segment),
        territories=rule_territories,
        filter=flt,
    )


# ---- deciding ------------------------------------------------------------------------------------------


def priority_key(
    priority: str | None, engagement: float | None, since: float, lead_id: int
) -> tuple[Any, ...]:
    """Best first: priority A1 .. D4 (none last), then engagement, then who waited longest."""
    if priority and len(priority) >= 2 and priority[0] in GRADES and priority[1:].isdigit():
        grade, level = GRADES.index(priority[0]), int(priority[1:])
    else:
        grade, level = len(GRADES), 99
    return (grade, level, -(engagement or 0.0), since, lead_id)


@dataclass(frozen=True)
class LeadFacts:
    """What routing reads about an unrouted MQL."""

    lead_id: int
    version: int
    cycle: int
    priority: str | None
    engagement_score: float | None
    since: float  # Unix seconds it became an MQL (or was last updated): ties wait in arrival order
    country: str | None
    account_owner: str | None = None  # user name of the account's owner, when it has an active one


@dataclass
class MemberLoad:
    user_id: int
    username: str
    active: bool = True
    open_mqls: int = 0
    today: int = 0  # leads handed over to them since their team's local midnight
    last_assigned: float = 0.0  # Unix seconds


@dataclass(frozen=True)
class Candidate:
    username: str
    chosen: bool
    why: str

    def as_json(self) -> dict[str, Any]:
        return {"user": self.username, "chosen": self.chosen, "why": self.why}


@dataclass(frozen=True)
class Decision:
    lead_id: int
    version: int
    cycle: int
    team: str | None
    user: str | None  # None: the lead waits in ``team``'s queue (or the unassigned queue)
    kind: str
    rule: str | None
    reason: str
    candidates: tuple[Candidate, ...] = ()
    counted: bool = True  # counts towards the team's daily hand-off capacity

    @property
    def queued(self) -> bool:
        return self.user is None


def _member_block(
    m: MemberPolicy, load: MemberLoad, today: date, territory: str | None, *, any_territory: bool = False
) -> str | None:
    if not load.active:
        return "deactivated"
    if m.away(today):
        assert m.out_of_office_until is not None
        return f"out of office until {m.out_of_office_until.isoformat()}"
    if m.max_open is not None and load.open_mqls >= m.max_open:
        return f"at capacity: {load.open_mqls} open MQLs (max {m.max_open})"
    if m.max_per_day is not None and load.today >= m.max_per_day:
        return f"daily limit reached: {load.today} new today (max {m.max_per_day})"
    if m.territories and not any_territory and territory not in m.territories:
        return f"territory {territory or 'unknown'} not theirs ({', '.join(m.territories)})"
    return None


def choose_member(
    team: TeamPolicy,
    loads: Mapping[str, MemberLoad],
    *,
    today: date,
    territory: str | None,
    exclude: Iterable[str] = (),
) -> tuple[MemberPolicy | None, tuple[Candidate, ...]]:
    """The member the next lead goes to, and every member considered with why.

    Members with territories take only leads of their territories while one of them is free; when no
    territory member is free (or the lead's territory is nobody's), any free member of the team may.
    """
    excluded = set(exclude)
    blocked: dict[str, str] = {}
    for m in team.members:
        if m.username in excluded:
            blocked[m.username] = "excluded (already had this lead)"
            continue
        why = _member_block(m, loads[m.username], today, territory)
        if why is not None:
            blocked[m.username] = why
    eligible = [m for m in team.members if m.username not in blocked]
    if not eligible:
        # nobody of the territory is free: anyone free of the team, ignoring territories
        loose = [
            m
            for m in team.members
            if m.username not in excluded
            and _member_block(m, loads[m.username], today, None, any_territory=True) is None
        ]
        if loose:
            for m in loose:
                blocked[m.username] = blocked[m.username] + "; no territory member free, considered anyway"
            eligible = loose
    if not eligible:
        return None, tuple(Candidate(m.username, False, blocked[m.username]) for m in team.members)

    def turn(m: MemberPolicy) -> tuple[float, float, float, str]:
        load = loads[m.username]
        return (load.today / m.weight, load.open_mqls / m.weight, load.last_assigned, m.username)

    chosen = min(eligible, key=turn)
    out = []
    for m in team.members:
        load = loads[m.username]
        share = f"{load.today} today at weight {m.weight:g}, {load.open_mqls} open MQLs"
        if m is chosen:
            loose_note = "; no territory member was free" if m.username in blocked else ""
            out.append(Candidate(m.username, True, f"next in turn: {share}{loose_note}"))
        elif m in eligible:
            out.append(Candidate(m.username, False, f"eligible, later in turn: {share}"))
        else:
            out.append(Candidate(m.username, False, blocked[m.username]))
    return chosen, tuple(out)


@dataclass
class TeamDay:
    """A team's hand-offs so far today (its local day) and its capacity."""

    today: date
    handed: int = 0
    capacity: int | None = None

    @property
    def full(self) -> bool:
        return self.capacity is not None and self.handed >= self.capacity


def plan(
    doc: RoutingDocument,
    leads: Sequence[LeadFacts],
    matches: Mapping[int, frozenset[int]],
    *,
    loads: Mapping[str, MemberLoad],
    days: Mapping[str, TeamDay],
    now_ts: float,
) -> list[Decision]:
    """Route the leads, best first (see the module docstring). ``matches[rule index]`` holds the ids
    of the leads that pass the rule's segment and filter (territories are checked here)."""
    decisions = []
    for lead in sorted(leads, key=lambda f: priority_key(f.priority, f.engagement_score, f.since, f.lead_id)):
        decision = _decide(doc, lead, matches, loads, days)
        if decision.user is not None:
            load = loads[decision.user]
            load.today += 1
            load.open_mqls += 1
            load.last_assigned = now_ts
            if decision.team is not None and decision.counted:
                days[decision.team].handed += 1
        decisions.append(decision)
    return decisions


def _decision(lead: LeadFacts, **fields: Any) -> Decision:
    return Decision(lead_id=lead.lead_id, version=lead.version, cycle=lead.cycle, **fields)


def _decide(
    doc: RoutingDocument,
    lead: LeadFacts,
    matches: Mapping[int, frozenset[int]],
    loads: Mapping[str, MemberLoad],
    days: Mapping[str, TeamDay],
) -> Decision:
    territory = doc.territory_of(lead.country)
    if lead.account_owner is not None:
        owner = doc.member(lead.account_owner)
        team = doc.teams[owner.team] if owner else None
        today = days[team.name].today if team else None
        load = loads.get(lead.account_owner)
        if owner is None or load is None or today is None or (not owner.away(today) and load.active):
            return _decision(
                lead,
                team=owner.team if owner else None,
                user=lead.account_owner,
                kind=KIND_ACCOUNT_OWNER,
                rule=None,
                reason=f"the account's owner {lead.account_owner} keeps its leads",
                candidates=(Candidate(lead.account_owner, True, "owns the lead's account"),),
                counted=False,
            )
    for index, rule in enumerate(doc.rules):
        if lead.lead_id not in matches.get(index, frozenset()):
            continue
        if rule.territories and territory not in rule.territories:
            continue
        return _to_target(doc, rule, lead, territory, loads, days)
    return _decision(
        lead,
        team=None,
        user=None,
        kind=KIND_RULE,
        rule=None,
        reason=f"no rule matches (territory {territory or 'unknown'}): waits in the unassigned queue",
    )


def _to_target(
    doc: RoutingDocument,
    rule: RoutingRule,
    lead: LeadFacts,
    territory: str | None,
    loads: Mapping[str, MemberLoad],
    days: Mapping[str, TeamDay],
) -> Decision:
    if rule.user is not None:
        member = doc.member(rule.user)
        assert member is not None
        team = doc.teams[member.team]
    else:
        assert rule.team is not None
        team = doc.teams[rule.team]
        member = None
    day = days[team.name]
    matched = f"rule {rule.name!r} ({rule.conditions})"
    if day.full:
        return _decision(
            lead,
            team=team.name,
            user=None,
            kind=KIND_RULE,
            rule=rule.name,
            reason=f"{matched}: team {team.name} reached its daily hand-off capacity "
            f"({day.capacity}); waits in its queue, ranked by priority",
        )
    if member is not None:
        why = _member_block(member, loads[member.username], day.today, territory, any_territory=True)
        if why is not None:
            return _decision(
                lead,
                team=team.name,
                user=None,
                kind=KIND_RULE,
                rule=rule.name,
                reason=f"{matched}: {member.username} is {why}; waits in team {team.name}'s queue",
                candidates=(Candidate(member.username, False, why),),
            )
        return _decision(
            lead,
            team=team.name,
            user=member.username,
            kind=KIND_RULE,
            rule=rule.name,
            reason=f"{matched} names {member.username}",
            candidates=(Candidate(member.username, True, "named by the rule"),),
        )
    chosen, candidates = choose_member(team, loads, today=day.today, territory=territory)
    if chosen is None:
        return _decision(
            lead,
            team=team.name,
            user=None,
            kind=KIND_RULE,
            rule=rule.name,
            reason=f"{matched}: no member of team {team.name} is free; waits in its queue",
            candidates=candidates,
        )
    return _decision(
        lead,
        team=team.name,
        user=chosen.username,
        kind=KIND_RULE,
        rule=rule.name,
        reason=f"{matched}: team {team.name}, weighted round-robin",
        candidates=candidates,
    )
