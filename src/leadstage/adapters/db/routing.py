"""Routing documents, teams, assignments, the hand-off queue and SLA state in SQL; never commits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError

from leadstage.adapters.db import tables as t
from leadstage.adapters.db.repositories import chunks, history_values, history_written
from leadstage.adapters.db.segments import compile_filter
from leadstage.domain.activities import SALES_ACTIVITY_TYPES, decoded_properties
from leadstage.domain.errors import ConcurrencyConflict
from leadstage.domain.routing import LeadFacts, RoutingDocument
from leadstage.domain.segments import Filter
from leadstage.domain.stages import HistoryEntry
from leadstage.services.ports import (
    AssignmentRecord,
    NewAssignment,
    PendingResponse,
    QueuedLead,
    StoredRouting,
)

COUNTRY_PROPERTIES = ("Country", "country")


class SqlRoutingRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name

    # ---- lock ------------------------------------------------------------------------------------------

    def lock(self, name: str, *, holder: str, at: datetime) -> bool:
        """Write the lock row first: SQLite then holds its write lock, PostgreSQL the row lock, until the
        transaction ends; a second holder waits (SQLite: up to the busy timeout, then False)."""
        make = pg_insert if self.dialect == "postgresql" else sqlite_insert
        stmt = make(t.locks).values(name=name, holder=holder, at=at)
        stmt = stmt.on_conflict_do_update(index_elements=["name"], set_={"holder": holder, "at": at})
        try:
            self.conn.execute(stmt)
        except OperationalError as exc:
            if "locked" in str(exc.orig) or "busy" in str(exc.orig):
                return False
            raise
        return True

    # ---- documents, teams, members ---------------------------------------------------------------------

    def active(self) -> StoredRouting | None:
        row = self.conn.execute(
            select(t.routing_documents).where(t.routing_documents.c.active.is_(True))
        ).first()
        if row is None:
            return None
        definition = dict(row.definition)
        away = {
            r.username: r.out_of_office_until
            for r in self.conn.execute(
                select(t.users.c.username, t.routing_members.c.out_of_office_until).join(
                    t.users, t.users.c.id == t.routing_members.c.user_id
                )
            )
        }
        for team in definition["teams"].values():
            for member in team["members"]:
                if member["username"] in away:
                    until = away[member["username"]]
                    member["out_of_office_until"] = until.isoformat() if until else None
        return StoredRouting(
            version=int(row.version),
            name=row.name,
            source=row.source,
            document=RoutingDocument.from_json(definition),
            created_by=row.created_by,
            created_at=row.created_at,
        )

    def save(
        self,
        document: RoutingDocument,
        *,
        source: str,
        user_ids: Mapping[str, int],
        created_by: str,
        at: datetime,
    ) -> int:
        last = self.conn.execute(select(func.max(t.routing_documents.c.version))).scalar()
        version = int(last or 0) + 1
        self.conn.execute(update(t.routing_documents).values(active=False))
        self.conn.execute(
            insert(t.routing_documents).values(
                version=version,
                name=document.name,
                source=source,
                definition=document.as_json(),
                active=True,
                created_by=created_by,
                created_at=at,
            )
        )
        self.conn.execute(delete(t.teams))
        self.conn.execute(delete(t.routing_members))
        for team in document.teams.values():
            self.conn.execute(
                insert(t.teams).values(
                    name=team.name,
                    manager_id=user_ids.get(team.manager) if team.manager else None,
                    timezone=team.timezone,
                    hours=[[list(i) for i in day] for day in team.week],
                    holidays=[d.isoformat() for d in team.holidays],
                    first_response_minutes=team.first_response_minutes,
                    daily_capacity=team.daily_capacity,
                    reroute_on_breach=team.reroute_on_breach,
                    updated_at=at,
                )
            )
            rows = [
                {
                    "user_id": user_ids[m.username],
                    "team": team.name,
                    "weight": m.weight,
                    "max_open": m.max_open,
                    "max_per_day": m.max_per_day,
                    "territories": list(m.territories),
                    "out_of_office_until": m.out_of_office_until,
                }
                for m in team.members
            ]
            self.conn.execute(insert(t.routing_members), rows)
            members = [user_ids[m.username] for m in team.members]
            self.conn.execute(update(t.users).where(t.users.c.id.in_(members)).values(team=team.name))
            if team.manager:
                self.conn.execute(
                    update(t.users).where(t.users.c.id == user_ids[team.manager]).values(team=team.name)
                )
        return version

    def set_out_of_office(self, user_id: int, until: date | None) -> bool:
        result = self.conn.execute(
            update(t.routing_members)
            .where(t.routing_members.c.user_id == user_id)
            .values(out_of_office_until=until)
        )
        return bool(result.rowcount)

    # ---- what routing reads ----------------------------------------------------------------------------

    def unrouted(self) -> list[LeadFacts]:
        leads, accounts, users, queue = t.leads, t.accounts, t.users, t.routing_queue
        q = (
            select(
                leads.c.id,
                leads.c.version,
                leads.c.cycle,
                leads.c.priority,
                leads.c.engagement_score,
                leads.c.updated_at,
                leads.c.properties,
                accounts.c.country,
                users.c.username,
                queue.c.queued_at,
            )
            .select_from(
                leads.outerjoin(accounts, accounts.c.id == leads.c.account_id)
                .outerjoin(users, and_(users.c.id == accounts.c.owner_id, users.c.active.is_(True)))
                .outerjoin(queue, queue.c.lead_id == leads.c.id)
            )
            .where(leads.c.stage == "mql", leads.c.status == "open", leads.c.owner_id.is_(None))
        )
        out = []
        for r in self.conn.execute(q):
            country = r.country
            if not country:
                props = decoded_properties(r.properties)
                for key in COUNTRY_PROPERTIES:
                    value = props.get(key)
                    if isinstance(value, str) and value.strip():
                        country = value
                        break
            since = r.queued_at or r.updated_at
            out.append(
                LeadFacts(
                    lead_id=int(r.id),
                    version=int(r.version),
                    cycle=int(r.cycle),
                    priority=r.priority,
                    engagement_score=r.engagement_score,
                    since=since.timestamp(),
                    country=country,
                    account_owner=r.username,
                )
            )
        return out

    def matching(self, filters: Sequence[Filter], ids: Sequence[int], *, as_of: datetime) -> set[int]:
        conds = [compile_filter(f, dialect=self.dialect, as_of=as_of) for f in filters]
        found: set[int] = set()
        for chunk in chunks(list(ids), 900):
            q = select(t.leads.c.id).where(t.leads.c.id.in_(chunk), *conds)
            found.update(int(r[0]) for r in self.conn.execute(q))
        return found

    def loads(
        self, user_ids: Mapping[str, int], since: Mapping[str, datetime]
    ) -> dict[str, tuple[int, int, float]]:
        if not user_ids:
            return {}
        ids = list(user_ids.values())
        by_id = {v: k for k, v in user_ids.items()}
        open_q = (
            select(t.leads.c.owner_id, func.count())
            .where(
                t.leads.c.owner_id.in_(ids),
                t.leads.c.stage == "mql",
                t.leads.c.status.in_(("open", "working")),
            )
            .group_by(t.leads.c.owner_id)
        )
        open_counts = {int(r[0]): int(r[1]) for r in self.conn.execute(open_q)}
        a = t.assignments
        last = {
            int(r[0]): r[1]
            for r in self.conn.execute(
                select(a.c.user_id, func.max(a.c.at)).where(a.c.user_id.in_(ids)).group_by(a.c.user_id)
            )
        }
        today: dict[int, int] = {}
        for start in set(since.values()):
            names = [n for n, s in since.items() if s == start and n in user_ids]
            q = (
                select(a.c.user_id, func.count())
                .where(
                    a.c.user_id.in_([user_ids[n] for n in names]),
                    a.c.at >= start,
                    a.c.kind != "manual",
                )
                .group_by(a.c.user_id)
            )
            today.update({int(r[0]): int(r[1]) for r in self.conn.execute(q)})
        out = {}
        for uid in ids:
            stamp = last.get(uid)
            if isinstance(stamp, str):  # SQLite's max() comes back as text
                stamp = datetime.fromisoformat(stamp).replace(tzinfo=UTC)
            out[by_id[uid]] = (
                open_counts.get(uid, 0),
                today.get(uid, 0),
                stamp.timestamp() if stamp else 0.0,
            )
        return out

    def handed_since(self, team: str, since: datetime) -> int:
        a = t.assignments
        q = (
            select(func.count())
            .select_from(a)
            .where(a.c.team == team, a.c.at >= since, a.c.counted.is_(True))
        )
        return int(self.conn.execute(q).scalar_one())

    # ---- writes ----------------------------------------------------------------------------------------

    def assign(self, new: NewAssignment, *, version: int, history: HistoryEntry) -> int | None:
        return self.assign_many([(new, version, history)])[0]

    def assign_many(self, items: Sequence[tuple[NewAssignment, int, HistoryEntry]]) -> list[int | None]:
        """Each lead's owner where its version is still the one read (one statement built once, run per
        lead), then the superseded assignments, the new ones, their history rows and the queue set-based."""
        done: list[int | None] = [None] * len(items)
        won: list[int] = []
        for i, (new, version, _h) in enumerate(items):
            params = {
                "_id": new.lead_id,
                "_v": version,
                "_owner": new.user_id,
                "_nv": version + 1,
                "_at": new.at,
            }
            try:
                result = self.conn.execute(_UPDATE_OWNER, params)
            except OperationalError as exc:
                # SQLite refuses to upgrade a read snapshot another writer made stale (SQLITE_BUSY_SNAPSHOT)
                if "locked" not in str(exc.orig):
                    raise
                raise ConcurrencyConflict(
                    f"lead {new.lead_id} was changed by someone else while you were working on it; "
                    "nothing was written, try again"
                ) from None
            if result.rowcount == 1:
                won.append(i)
        if not won:
            return done
        a = t.assignments
        lead_ids = [items[i][0].lead_id for i in won]
        for chunk in chunks(lead_ids, 900):
            self.conn.execute(
                update(a)
                .where(a.c.lead_id.in_(chunk), a.c.current.is_(True))
                .values(current=False, sla_state=_close_pending(a))
            )
        self.conn.execute(insert(a), [_assignment_values(items[i][0]) for i in won])
        ids: dict[int, int] = {}
        for chunk in chunks(lead_ids, 900):
            q = select(a.c.lead_id, a.c.id).where(a.c.lead_id.in_(chunk), a.c.current.is_(True))
            ids.update({int(r[0]): int(r[1]) for r in self.conn.execute(q)})
        history = []
        for i in won:
            new, _version, entry = items[i]
            done[i] = ids[new.lead_id]
            values = history_values(new.lead_id, entry)
            values["data"] = {**entry.data, "assignment_id": ids[new.lead_id]}
            history.append(values)
        self.conn.execute(insert(t.lead_history), history)
        history_written(self.conn, [(new.lead_id, entry) for new, _version, entry in (items[i] for i in won)])
        for chunk in chunks(lead_ids, 900):
            self.conn.execute(delete(t.routing_queue).where(t.routing_queue.c.lead_id.in_(chunk)))
        return done

    def replace_queue(self, entries: Sequence[QueuedLead], *, at: datetime) -> None:
        q = t.routing_queue
        since = {int(r[0]): r[1] for r in self.conn.execute(select(q.c.lead_id, q.c.queued_at))}
        self.conn.execute(delete(q))
        rows = [
            {
                "lead_id": e.lead_id,
                "team": e.team,
                "rule": e.rule,
                "reason": e.reason,
                "position": e.position,
                "priority": e.priority,
                "queued_at": since.get(e.lead_id) or e.queued_at,
            }
            for e in entries
        ]
        for chunk in chunks(rows, 5_000):
            self.conn.execute(insert(q), chunk)

    def queue(
        self,
        team: str | None = None,
        *,
        unassigned: bool = False,
        limit: int | None = None,
        lead_id: int | None = None,
    ) -> list[QueuedLead]:
        q, leads = t.routing_queue, t.leads
        stmt = select(q, leads.c.email, leads.c.first_name, leads.c.last_name, leads.c.company).select_from(
            q.join(leads, leads.c.id == q.c.lead_id)
        )
        if lead_id is not None:
            stmt = stmt.where(q.c.lead_id == lead_id)
        if unassigned:
            stmt = stmt.where(q.c.team.is_(None))
        elif team is not None:
            stmt = stmt.where(q.c.team == team)
        stmt = stmt.order_by(q.c.team, q.c.position)
        if limit is not None:
            stmt = stmt.limit(limit)
        return [
            QueuedLead(
                lead_id=int(r.lead_id),
                team=r.team,
                rule=r.rule,
                reason=r.reason,
                position=int(r.position),
                priority=r.priority,
                queued_at=r.queued_at,
                email=r.email,
                name=" ".join(p for p in (r.first_name, r.last_name) if p) or None,
                company=r.company,
            )
            for r in self.conn.execute(stmt)
        ]

    def queue_counts(self) -> dict[str | None, int]:
        q = t.routing_queue
        return {r[0]: int(r[1]) for r in self.conn.execute(select(q.c.team, func.count()).group_by(q.c.team))}

    # ---- assignments and SLAs --------------------------------------------------------------------------

    def _records(self, where: Any, limit: int | None = None, order: Any = None) -> list[AssignmentRecord]:
        a = t.assignments
        q = select(a).where(where).order_by(*(order if order is not None else (a.c.at, a.c.id)))
        if limit is not None:
            q = q.limit(limit)
        return [
            AssignmentRecord(
                id=int(r.id),
                lead_id=int(r.lead_id),
                cycle=int(r.cycle),
                team=r.team,
                user_id=r.user_id,
                username=r.username,
                kind=r.kind,
                rule=r.rule,
                reason=r.reason,
                candidates=list(r.candidates or []),
                actor=r.actor,
                at=r.at,
                current=bool(r.current),
                sla_due_at=r.sla_due_at,
                sla_state=r.sla_state,
                responded_at=r.responded_at,
                response_minutes=r.response_minutes,
                breached_at=r.breached_at,
            )
            for r in self.conn.execute(q)
        ]

    def current(self, lead_id: int) -> AssignmentRecord | None:
        a = t.assignments
        rows = self._records(and_(a.c.lead_id == lead_id, a.c.current.is_(True)))
        return rows[-1] if rows else None

    def history(self, lead_id: int) -> list[AssignmentRecord]:
        return self._records(t.assignments.c.lead_id == lead_id)

    def current_assignments(
        self, *, team: str | None = None, sla_state: str | None = None, limit: int | None = None
    ) -> list[AssignmentRecord]:
        a = t.assignments
        conds: list[Any] = [a.c.current.is_(True)]
        if team is not None:
            conds.append(a.c.team == team)
        if sla_state is not None:
            conds.append(a.c.sla_state == sla_state)
        return self._records(and_(*conds), limit=limit, order=(a.c.sla_due_at, a.c.id))

    def pending_responses(self) -> list[PendingResponse]:
        a, leads, acts = t.assignments, t.leads, t.activities
        first_sales = (
            select(func.min(acts.c.occurred_at))
            .where(
                acts.c.lead_id == a.c.lead_id,
                acts.c.type.in_(sorted(SALES_ACTIVITY_TYPES)),
                acts.c.occurred_at >= a.c.at,
            )
            .scalar_subquery()
        )
        q = (
            select(
                a.c.id,
                a.c.lead_id,
                a.c.cycle,
                a.c.team,
                a.c.user_id,
                a.c.username,
                a.c.at,
                a.c.sla_due_at,
                first_sales.label("first_sales_at"),
                leads.c.stage,
                leads.c.status,
                leads.c.owner_id,
                leads.c.version,
            )
            .select_from(a.join(leads, leads.c.id == a.c.lead_id))
            .where(a.c.sla_state == "pending")
            .order_by(a.c.sla_due_at, a.c.id)
        )
        out = []
        for r in self.conn.execute(q):
            first = r.first_sales_at
            if isinstance(first, str):
                first = datetime.fromisoformat(first)
            if first is not None and first.tzinfo is None:
                first = first.replace(tzinfo=UTC)
            out.append(
                PendingResponse(
                    assignment_id=int(r.id),
                    lead_id=int(r.lead_id),
                    cycle=int(r.cycle),
                    team=r.team,
                    user_id=r.user_id,
                    username=r.username,
                    at=r.at,
                    sla_due_at=r.sla_due_at,
                    first_sales_at=first,
                    stage=r.stage,
                    status=r.status,
                    owner_id=r.owner_id,
                    version=int(r.version),
                )
            )
        return out

    def set_sla_state(
        self,
        assignment_id: int,
        *,
        state: str,
        at: datetime | None,
        responded_at: datetime | None,
        minutes: float | None,
    ) -> bool:
        params = {
            "_id": assignment_id,
            "_state": state,
            "_breached": at if state == "breached" else None,
            "_responded": responded_at,
            "_minutes": minutes if responded_at is not None else None,
        }
        return bool(self.conn.execute(_SET_SLA, params).rowcount)

    def assigned_users(self, lead_ids: Sequence[int]) -> dict[tuple[int, int], set[str]]:
        a = t.assignments
        out: dict[tuple[int, int], set[str]] = {}
        for chunk in chunks(list(lead_ids), 900):
            q = select(a.c.lead_id, a.c.cycle, a.c.username).where(a.c.lead_id.in_(chunk))
            for lead_id, cycle, username in self.conn.execute(q):
                out.setdefault((int(lead_id), int(cycle)), set()).add(username)
        return out

    def add_history(self, lead_id: int, entry: HistoryEntry) -> None:
        self.conn.execute(insert(t.lead_history), history_values(lead_id, entry))
        history_written(self.conn, [(lead_id, entry)])


_UPDATE_OWNER = (
    update(t.leads)
    .where(t.leads.c.id == bindparam("_id"), t.leads.c.version == bindparam("_v"))
    .values(owner_id=bindparam("_owner"), version=bindparam("_nv"), updated_at=bindparam("_at"))
)


_SET_SLA = (
    update(t.assignments)
    .where(t.assignments.c.id == bindparam("_id"), t.assignments.c.sla_state == "pending")
    .values(
        sla_state=bindparam("_state"),
        breached_at=bindparam("_breached"),
        responded_at=bindparam("_responded"),
        response_minutes=bindparam("_minutes"),
    )
)


def _assignment_values(new: NewAssignment) -> dict[str, Any]:
    return {
        "lead_id": new.lead_id,
        "cycle": new.cycle,
        "team": new.team,
        "user_id": new.user_id,
        "username": new.username,
        "kind": new.kind,
        "rule": new.rule,
        "reason": new.reason,
        "candidates": [dict(c) for c in new.candidates],
        "actor": new.actor,
        "at": new.at,
        "current": True,
        "counted": new.counted,
        "document_version": new.document_version,
        "sla_due_at": new.sla_due_at,
        "sla_state": "pending" if new.sla_due_at is not None else None,
        "responded_at": None,
        "response_minutes": None,
        "breached_at": None,
    }


def _close_pending(a: Any) -> Any:
    """A superseded assignment's pending SLA is closed (the new owner gets their own)."""
    return case((a.c.sla_state == "pending", "closed"), else_=a.c.sla_state)
