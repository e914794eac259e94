"""SQL repositories over one connection; they never commit (the unit of work does)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError

from leadstage.adapters.db import report_facts
from leadstage.adapters.db import tables as t
from leadstage.adapters.db.engine import IDENTITY_LOCK
from leadstage.domain.activities import Activity, earliest_by_lead
from leadstage.domain.errors import ConcurrencyConflict
from leadstage.domain.identity import MERGED_EMAIL, normalize_company_name
from leadstage.domain.leads import Account, ExternalId, Identity, Lead, PropertyType
from leadstage.domain.stages import HistoryEntry, HistoryKind, LeadState, Stage, Status, entry_fields
from leadstage.domain.times import from_utc_text, utc_text
from leadstage.services.ports import AccountRow, ActivityRow, LeadFilter, LeadPageFacts, UserRecord

_IDENTITY_COLUMNS = (
    "email",
    "email_normalized",
    "email_valid",
    "phone",
    "phone_e164",
    "phone_valid",
    "first_name",
    "last_name",
    "job_title",
    "company",
)


def chunks(values: Sequence[Any], size: int = 500) -> Iterator[list[Any]]:
    for i in range(0, len(values), size):
        yield list(values[i : i + size])


def page(q: Any, flt: LeadFilter) -> Any:
    """A listing's page: ordered by id (either way), after the cursor, offset and limited."""
    lead_id = t.leads.c.id
    if flt.after_id is not None:
        q = q.where(lead_id < flt.after_id if flt.descending else lead_id > flt.after_id)
    q = q.order_by(lead_id.desc() if flt.descending else lead_id).offset(flt.offset)
    return q if flt.limit is None else q.limit(flt.limit)


def insert_ignoring(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], unique: list[str]
) -> int:
    """Insert rows, skipping those whose ``unique`` columns are stored already; returns how many went in.

    ``INSERT ... ON CONFLICT DO NOTHING`` on both databases: a duplicate is not an error, so no savepoint
    is needed per row.
    """
    insert_for = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    added = 0
    for row in rows:
        stmt = insert_for(table).values(**row).on_conflict_do_nothing(index_elements=unique)
        added += len(conn.execute(stmt.returning(*table.primary_key.columns)).all())  # rowcount is -1 here
    return added


def _time(value: Any) -> datetime:
    """A time read by raw SQL: a datetime on PostgreSQL, canonical UTC text on SQLite."""
    return value if isinstance(value, datetime) else from_utc_text(str(value))


def in_chunks(values: Sequence[Any], mark: str, size: int = 900) -> Iterator[tuple[tuple[Any, ...], str]]:
    """Values in chunks that fit one ``IN (...)``, each with its placeholders (``?, ?`` or ``%s, %s``)."""
    for chunk in chunks(values, size):
        yield tuple(chunk), ", ".join([mark] * len(chunk))


_STATE_COLUMNS = (
    "account_id",
    "owner_id",
    "stage",
    "status",
    "cycle",
    "furthest_stage",
    "first_source",
    "latest_source",
    "first_touch_at",
    "last_touch_at",
    "properties",
    "fingerprint",
    "created_at",
    "updated_at",
    "version",
)


def _lead_values(lead: Lead) -> dict[str, Any]:
    ident = lead.identity
    values: dict[str, Any] = {name: getattr(ident, name) for name in _IDENTITY_COLUMNS}
    values.update(
        account_id=lead.account_id,
        owner_id=lead.owner_id,
        stage=lead.state.stage.value,
        status=lead.state.status.value,
        cycle=lead.state.cycle,
        furthest_stage=lead.state.furthest_stage.value,
        first_source=lead.first_source,
        latest_source=lead.latest_source,
        first_touch_at=lead.first_touch_at,
        last_touch_at=lead.last_touch_at,
        properties=lead.properties,
        fingerprint=lead.fingerprint,
        created_at=lead.created_at,
        updated_at=lead.updated_at,
    )
    return values


_UPDATE_LEAD = (
    update(t.leads)
    .where(t.leads.c.id == bindparam("_id"), t.leads.c.version == bindparam("_version"))
    .values({name: bindparam(name) for name in (*_IDENTITY_COLUMNS, *_STATE_COLUMNS)})
)


_LEAD_COLUMNS = [t.leads.c[name] for name in ("id", *_IDENTITY_COLUMNS, *_STATE_COLUMNS)]
_LEAD_SELECT = select(*_LEAD_COLUMNS, t.users.c.team.label("owner_team")).select_from(
    t.leads.outerjoin(t.users, t.users.c.id == t.leads.c.owner_id)
)
_BY_ID = _LEAD_SELECT.where(t.leads.c.id == bindparam("v"))
_PAGE = (
    select(
        *_LEAD_COLUMNS,
        t.users.c.team.label("owner_team"),
        t.users.c.username.label("owner"),
        t.accounts.c.name.label("account_name"),
        t.accounts.c.domain,
        t.accounts.c.industry,
        t.accounts.c.employees,
        t.accounts.c.annual_revenue,
        t.accounts.c.country,
        t.accounts.c.properties.label("account_properties"),
        t.leads.c.fit_grade,
        t.leads.c.engagement_level,
        t.leads.c.priority,
        select(func.count())
        .select_from(t.activities)
        .where(t.activities.c.lead_id == t.leads.c.id)
        .scalar_subquery()
        .label("activity_count"),
        # what else there is to read, so that a lead without it costs no statement
        exists().where(t.lead_external_ids.c.lead_id == t.leads.c.id).label("has_external_ids"),
        exists().where(t.disqualifications.c.lead_id == t.leads.c.id).label("has_disqualification"),
        exists()
        .where(t.assignments.c.lead_id == t.leads.c.id, t.assignments.c.current.is_(True))
        .label("has_assignment"),
    )
    .select_from(
        t.leads.outerjoin(t.accounts, t.accounts.c.id == t.leads.c.account_id).outerjoin(
            t.users, t.users.c.id == t.leads.c.owner_id
        )
    )
    .where(t.leads.c.id == bindparam("v"))
)
_HISTORY_OF_ONE = (
    select(t.lead_history)
    .where(t.lead_history.c.lead_id == bindparam("v"))
    .order_by(t.lead_history.c.at, t.lead_history.c.id)
)
_BY_EMAIL = _LEAD_SELECT.where(t.leads.c.email_normalized == bindparam("v"))
_BY_PHONE = _LEAD_SELECT.where(t.leads.c.phone_e164 == bindparam("v")).order_by(t.leads.c.id).limit(1)
_BY_FINGERPRINT = _LEAD_SELECT.where(t.leads.c.fingerprint == bindparam("v"))
_BY_EXT_ANY = _LEAD_SELECT.where(
    t.leads.c.id.in_(
        select(t.lead_external_ids.c.lead_id).where(t.lead_external_ids.c.value == bindparam("v"))
    )
).order_by(t.leads.c.id)
_BY_EXT = _LEAD_SELECT.where(
    t.leads.c.id.in_(
        select(t.lead_external_ids.c.lead_id).where(
            t.lead_external_ids.c.value == bindparam("v"), t.lead_external_ids.c.system == bindparam("system")
        )
    )
).order_by(t.leads.c.id)
_EXT_OF_ONE = (
    select(t.lead_external_ids)
    .where(t.lead_external_ids.c.lead_id == bindparam("lead_id"))
    .order_by(t.lead_external_ids.c.id)
)
_EXT_OF_MANY = (
    select(t.lead_external_ids)
    .where(t.lead_external_ids.c.lead_id.in_(bindparam("ids", expanding=True)))
    .order_by(t.lead_external_ids.c.id)
)


# Statements built once: building one per row costs more than running it on the bulk paths.
_INSERT_LEAD = insert(t.leads).returning(t.leads.c.id)
_INSERT_EXTERNAL_ID = insert(t.lead_external_ids)
_INSERT_HISTORY = insert(t.lead_history)
_INSERT_ACCOUNT = insert(t.accounts).returning(t.accounts.c.id)


class SqlLeadRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _select(self) -> Any:
        return _LEAD_SELECT

    def _rows_to_leads(self, rows: Sequence[Any]) -> list[Lead]:
        if not rows:
            return []
        ext: dict[int, list[ExternalId]] = {}
        if len(rows) == 1:
            for e in self.conn.execute(_EXT_OF_ONE, {"lead_id": rows[0].id}):
                ext.setdefault(e.lead_id, []).append(ExternalId(e.system, e.value))
        else:
            for chunk in chunks([r.id for r in rows]):
                for e in self.conn.execute(_EXT_OF_MANY, {"ids": chunk}):
                    ext.setdefault(e.lead_id, []).append(ExternalId(e.system, e.value))
        return [self._row_to_lead(r, ext.get(r.id, [])) for r in rows]

    @staticmethod
    def _row_to_lead(r: Any, external_ids: list[ExternalId]) -> Lead:
        identity = Identity(**{name: getattr(r, name) for name in _IDENTITY_COLUMNS})
        state = LeadState(
            stage=Stage(r.stage),
            status=Status(r.status),
            cycle=r.cycle,
            furthest_stage=Stage(r.furthest_stage),
            owner_id=r.owner_id,
            owner_team=r.owner_team,
        )
        return Lead(
            id=r.id,
            identity=identity,
            state=state,
            created_at=r.created_at,
            updated_at=r.updated_at,
            external_ids=external_ids,
            properties=dict(r.properties or {}),
            account_id=r.account_id,
            owner_id=r.owner_id,
            first_source=r.first_source,
            latest_source=r.latest_source,
            first_touch_at=r.first_touch_at,
            last_touch_at=r.last_touch_at,
            version=r.version,
            fingerprint=r.fingerprint,
        )

    def _one(self, stmt: Any, params: dict[str, Any]) -> Lead | None:
        leads = self._rows_to_leads(self.conn.execute(stmt, params).all())
        return leads[0] if leads else None

    def get(self, lead_id: int) -> Lead | None:
        return self._one(_BY_ID, {"v": lead_id})

    def page(self, lead_id: int) -> tuple[Lead, LeadPageFacts] | None:
        r = self.conn.execute(_PAGE, {"v": lead_id}).first()
        if r is None:
            return None
        external_ids = (
            [ExternalId(e.system, e.value) for e in self.conn.execute(_EXT_OF_ONE, {"lead_id": r.id})]
            if r.has_external_ids
            else []
        )
        account = None
        if r.account_id is not None:
            account = Account(
                id=r.account_id,
                name=r.account_name,
                domain=r.domain,
                industry=r.industry,
                employees=r.employees,
                annual_revenue=r.annual_revenue,
                country=r.country,
                properties=dict(r.account_properties or {}),
            )
        return self._row_to_lead(r, external_ids), LeadPageFacts(
            account=account,
            owner=r.owner,
            fit_grade=r.fit_grade,
            engagement_level=r.engagement_level,
            priority=r.priority,
            activity_count=int(r.activity_count),
            has_disqualification=bool(r.has_disqualification),
            has_assignment=bool(r.has_assignment),
        )

    def find_by_email(self, canonical: str) -> Lead | None:
        return self._one(_BY_EMAIL, {"v": canonical})

    def find_by_phone(self, e164: str) -> Lead | None:
        return self._one(_BY_PHONE, {"v": e164})

    def find_by_fingerprint(self, fingerprint: str) -> Lead | None:
        return self._one(_BY_FINGERPRINT, {"v": fingerprint})

    def find_by_external_id(self, value: str, system: str | None = None) -> list[Lead]:
        if system is None:
            return self._rows_to_leads(self.conn.execute(_BY_EXT_ANY, {"v": value}).all())
        return self._rows_to_leads(self.conn.execute(_BY_EXT, {"v": value, "system": system}).all())

    def find_many(
        self,
        *,
        emails: Iterable[str] = (),
        external_ids: Iterable[tuple[str, str]] = (),
        phones: Iterable[str] = (),
        fingerprints: Iterable[str] = (),
        ids: Iterable[int] = (),
    ) -> list[Lead]:
        """Every lead with one of these ids or holding one of these identifiers, in a few chunked queries."""
        ids = set(ids)
        for column, values in (
            (t.leads.c.email_normalized, emails),
            (t.leads.c.phone_e164, phones),
            (t.leads.c.fingerprint, fingerprints),
        ):
            for chunk in chunks(sorted(set(values))):
                ids.update(r[0] for r in self.conn.execute(select(t.leads.c.id).where(column.in_(chunk))))
        pairs = sorted(set(external_ids))
        for chunk in chunks([value for _system, value in pairs]):
            q = select(
                t.lead_external_ids.c.lead_id, t.lead_external_ids.c.system, t.lead_external_ids.c.value
            )
            wanted = set(pairs)
            ids.update(
                r[0]
                for r in self.conn.execute(q.where(t.lead_external_ids.c.value.in_(chunk)))
                if (r[1], r[2]) in wanted
            )
        leads: list[Lead] = []
        for chunk in chunks(sorted(ids)):
            rows = self.conn.execute(_LEAD_SELECT.where(t.leads.c.id.in_(chunk)).order_by(t.leads.c.id)).all()
            leads.extend(self._rows_to_leads(rows))
        return leads

    def merged_into(self, lead_id: int) -> int | None:
        row = self.conn.execute(
            select(t.lead_merges.c.survivor_id).where(t.lead_merges.c.merged_id == lead_id)
        ).first()
        return None if row is None else int(row[0])

    def add(self, lead: Lead) -> int:
        values = _lead_values(lead)
        values["version"] = lead.version
        new_id = int(self.conn.execute(_INSERT_LEAD, values).scalar_one())
        self._add_external_ids(new_id, lead.external_ids)
        lead.id = new_id
        return new_id

    def _add_external_ids(self, lead_id: int, external_ids: Iterable[ExternalId]) -> None:
        rows = [{"lead_id": lead_id, "system": e.system, "value": e.value} for e in external_ids]
        if rows:
            self.conn.execute(_INSERT_EXTERNAL_ID, rows)

    def update(self, lead: Lead) -> Lead:
        assert lead.id is not None
        values = _lead_values(lead)
        values["version"] = lead.version + 1
        values["_id"], values["_version"] = lead.id, lead.version
        try:
            result = self.conn.execute(_UPDATE_LEAD, values)
        except OperationalError as exc:
            # SQLite refuses to upgrade a read snapshot that another writer made stale (SQLITE_BUSY_SNAPSHOT)
            if "locked" not in str(exc.orig):
                raise
            raise ConcurrencyConflict(
                f"lead {lead.id} was changed by someone else while you were working on it; nothing was written, "
                "try again"
            ) from None
        if result.rowcount != 1:
            raise ConcurrencyConflict(
                f"lead {lead.id} was changed by someone else (version {lead.version} is "
                "stale); reload it and try again"
            )
        known = {(e.system, e.value) for e in self._external_ids(lead.id)}
        self._add_external_ids(lead.id, [e for e in lead.external_ids if (e.system, e.value) not in known])
        lead.version += 1
        return lead

    def _external_ids(self, lead_id: int) -> list[ExternalId]:
        q = select(t.lead_external_ids).where(t.lead_external_ids.c.lead_id == lead_id)
        return [ExternalId(e.system, e.value) for e in self.conn.execute(q)]

    def add_history(self, lead_id: int, entry: HistoryEntry) -> None:
        self.conn.execute(_INSERT_HISTORY, history_values(lead_id, entry))
        history_written(self.conn, [(lead_id, entry)])

    def history(self, lead_id: int) -> list[HistoryEntry]:
        return [
            HistoryEntry(
                action=r.action,
                from_stage=Stage(r.from_stage) if r.from_stage else None,
                from_status=Status(r.from_status) if r.from_status else None,
                to_stage=Stage(r.to_stage),
                to_status=Status(r.to_status),
                actor=r.actor,
                at=r.at,
                cycle=r.cycle,
                reason=r.reason,
                note=r.note,
                data=r.data or {},
            )
            for r in self.conn.execute(_HISTORY_OF_ONE, {"v": lead_id})
        ]

    def search(self, flt: LeadFilter) -> tuple[int, list[Lead]]:
        conds = []
        if flt.stage:
            conds.append(t.leads.c.stage == flt.stage)
        if flt.status:
            conds.append(t.leads.c.status == flt.status)
        if flt.owner_id is not None:
            conds.append(t.leads.c.owner_id == flt.owner_id)
        if flt.unassigned:
            conds.append(t.leads.c.owner_id.is_(None))
        where = and_(True, *conds)
        total = int(self.conn.execute(select(func.count()).select_from(t.leads).where(where)).scalar_one())
        q = page(self._select().where(where), flt)
        return total, self._rows_to_leads(self.conn.execute(q).all())

    def similar_candidates(self, lead: Lead, limit: int = 200) -> list[Lead]:
        ident = lead.identity
        conds = []
        if ident.last_name:
            conds.append(func.lower(t.leads.c.last_name) == ident.last_name.lower())
        if lead.account_id is not None:
            conds.append(t.leads.c.account_id == lead.account_id)
        if ident.company:
            conds.append(func.lower(t.leads.c.company) == ident.company.lower())
        if not conds:
            return []
        q = self._select().where(or_(*conds), t.leads.c.id != lead.id).order_by(t.leads.c.id).limit(limit)
        return self._rows_to_leads(self.conn.execute(q).all())

    def erase_personal_data(self, lead_id: int, *, keep_external_ids: Sequence[ExternalId]) -> None:
        """Erase what identifies a person from everything kept about this lead (the rows stay).

        The lead's identity fields, custom properties, account link and identifiers go (only
        ``keep_external_ids`` stay: the hashed identifiers that recognise the person later); history
        notes and data, merge snapshots, activity properties and qualification evidence are cleared.
        """
        self.conn.execute(
            update(t.leads)
            .where(t.leads.c.id == lead_id)
            .values(
                email=None,
                email_normalized=None,
                email_valid=None,
                phone=None,
                phone_e164=None,
                phone_valid=None,
                first_name=None,
                last_name=None,
                job_title=None,
                company=None,
                account_id=None,
                properties={},
                fingerprint=None,
                version=t.leads.c.version + 1,
            )
        )
        self.conn.execute(delete(t.lead_external_ids).where(t.lead_external_ids.c.lead_id == lead_id))
        self._add_external_ids(lead_id, list(keep_external_ids))
        self.conn.execute(
            update(t.lead_history).where(t.lead_history.c.lead_id == lead_id).values(note=None, data=None)
        )
        report_facts.history_changed(self.conn, [lead_id])  # the wins' amounts are gone with the data
        self.conn.execute(
            update(t.lead_merges).where(t.lead_merges.c.survivor_id == lead_id).values(merged_snapshot={})
        )
        self.conn.execute(
            update(t.activities).where(t.activities.c.lead_id == lead_id).values(properties=None)
        )
        self.conn.execute(
            update(t.qualification_records)
            .where(t.qualification_records.c.lead_id == lead_id)
            .values(evidence=None, value=None)
        )

    def absorb(self, survivor_id: int, merged: Lead, *, actor: str, at: datetime) -> None:
        assert merged.id is not None
        snapshot = {
            "id": merged.id,
            **{k: getattr(merged.identity, k) for k in _IDENTITY_COLUMNS},
            "stage": merged.state.stage.value,
            "status": merged.state.status.value,
            "cycle": merged.state.cycle,
            "external_ids": [[e.system, e.value] for e in merged.external_ids],
            "properties": merged.properties,
            "created_at": merged.created_at.isoformat(),
        }
        # an event both records hold (the same key for the same person) is kept once, the survivor's
        a = t.activities.c
        held = select(a.idempotency_key).where(a.lead_id == survivor_id)
        self.conn.execute(delete(t.activities).where(a.lead_id == merged.id, a.idempotency_key.in_(held)))
        for table in (t.activities, t.lead_history, t.qualification_records, t.score_history):
            self.conn.execute(update(table).where(table.c.lead_id == merged.id).values(lead_id=survivor_id))
        # the survivor now owns more activities: its stored scores are stale until it is rescored
        self.conn.execute(update(t.leads).where(t.leads.c.id == survivor_id).values(score_model_id=None))
        self.conn.execute(
            update(t.lead_merges)
            .where(t.lead_merges.c.survivor_id == merged.id)
            .values(survivor_id=survivor_id)
        )
        known = {(e.system, e.value) for e in self._external_ids(survivor_id)}
        self.conn.execute(delete(t.lead_external_ids).where(t.lead_external_ids.c.lead_id == merged.id))
        self._add_external_ids(
            survivor_id, [e for e in merged.external_ids if (e.system, e.value) not in known]
        )
        self.conn.execute(delete(t.leads).where(t.leads.c.id == merged.id))
        report_facts.history_changed(self.conn, [survivor_id])  # one journey now, with both records' touches
        self.conn.execute(
            insert(t.lead_merges).values(
                survivor_id=survivor_id, merged_id=merged.id, actor=actor, at=at, merged_snapshot=snapshot
            )
        )


def history_values(lead_id: int, entry: HistoryEntry) -> dict[str, Any]:
    fields = entry_fields(entry)
    return {**fields, "lead_id": lead_id, "data": fields["data"] or None}


def history_written(conn: Connection, rows: Iterable[tuple[int, HistoryEntry]]) -> None:
    """After history rows are inserted: the report facts of their leads follow (a new lead's creation
    alone changes none)."""
    report_facts.history_changed(
        conn, {lead_id for lead_id, e in rows if e.action != HistoryKind.CREATE.value}
    )


class SqlAccountRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @staticmethod
    def _to_account(r: Any) -> Account:
        return Account(
            id=r.id,
            name=r.name,
            domain=r.domain,
            industry=r.industry,
            employees=r.employees,
            annual_revenue=r.annual_revenue,
            country=r.country,
            properties=dict(r.properties or {}),
        )

    def _one(self, where: Any) -> Account | None:
        r = self.conn.execute(select(t.accounts).where(where).order_by(t.accounts.c.id).limit(1)).first()
        return None if r is None else self._to_account(r)

    def get(self, account_id: int) -> Account | None:
        return self._one(t.accounts.c.id == account_id)

    def find_by_domain(self, domain: str) -> Account | None:
        return self._one(t.accounts.c.domain == domain)

    def ids_by_domain(self, domains: Iterable[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for chunk in chunks(sorted(set(domains))):
            q = select(t.accounts.c.domain, t.accounts.c.id).where(t.accounts.c.domain.in_(chunk))
            out.update({r[0]: int(r[1]) for r in self.conn.execute(q)})
        return out

    def find_by_name(self, normalized_name: str) -> Account | None:
        return self._one(t.accounts.c.name_normalized == normalized_name)

    def _values(self, account: Account) -> dict[str, Any]:
        return {
            "name": account.name,
            "name_normalized": normalize_company_name(account.name),
            "domain": account.domain,
            "industry": account.industry,
            "employees": account.employees,
            "annual_revenue": account.annual_revenue,
            "country": account.country,
            "properties": account.properties,
        }

    def add(self, account: Account, *, at: datetime) -> int:
        values = self._values(account) | {"created_at": at, "updated_at": at}
        new_id = int(self.conn.execute(_INSERT_ACCOUNT, values).scalar_one())
        account.id = new_id
        return new_id

    def update(self, account: Account, *, at: datetime) -> None:
        self.conn.execute(
            update(t.accounts)
            .where(t.accounts.c.id == account.id)
            .values(**self._values(account), updated_at=at)
        )

    def _rows(
        self, where: Any, *, limit: int | None = None, descending: bool = False, lock: bool = False
    ) -> list[AccountRow]:
        counts = (
            select(t.leads.c.account_id, func.count().label("n"))
            .where(t.leads.c.account_id.is_not(None))
            .group_by(t.leads.c.account_id)
            .subquery()
        )
        order = t.accounts.c.id.desc() if descending else t.accounts.c.id
        q = (
            select(t.accounts, t.users.c.username.label("owner"), func.coalesce(counts.c.n, 0).label("n"))
            .outerjoin(t.users, t.users.c.id == t.accounts.c.owner_id)
            .outerjoin(counts, counts.c.account_id == t.accounts.c.id)
            .where(where)
            .order_by(order)
        )
        if limit is not None:
            q = q.limit(limit)
        if lock:
            q = q.with_for_update(of=t.accounts)
        return [
            AccountRow(
                account=self._to_account(r),
                owner=r.owner,
                leads=int(r.n),
                created_at=r.created_at,
                updated_at=r.updated_at,
            )
            for r in self.conn.execute(q)
        ]

    def row(self, account_id: int, *, lock: bool = False) -> AccountRow | None:
        found = self._rows(t.accounts.c.id == account_id, lock=lock)
        return found[0] if found else None

    def page(
        self, *, after_id: int | None, limit: int, search: str | None = None, descending: bool = False
    ) -> tuple[int, list[AccountRow]]:
        where: Any = true()
        if search:
            term = normalize_company_name(search)
            where = or_(
                t.accounts.c.name_normalized.contains(term, autoescape=True),
                t.accounts.c.domain.contains(term.replace(" ", ""), autoescape=True),
            )
        total = int(self.conn.execute(select(func.count()).select_from(t.accounts).where(where)).scalar_one())
        if after_id is not None:
            where = and_(where, t.accounts.c.id < after_id if descending else t.accounts.c.id > after_id)
        return total, self._rows(where, limit=limit, descending=descending)

    def set_owner(self, account_id: int, user_id: int | None, *, at: datetime) -> None:
        self.conn.execute(
            update(t.accounts).where(t.accounts.c.id == account_id).values(owner_id=user_id, updated_at=at)
        )


class SqlUserRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @staticmethod
    def _to_user(r: Any) -> UserRecord:
        return UserRecord(
            id=r.id,
            username=r.username,
            role=r.role,
            team=r.team,
            active=r.active,
            password_hash=r.password_hash,
            email=r.email,
        )

    def set_active(self, user_id: int, active: bool) -> None:
        self.conn.execute(update(t.users).where(t.users.c.id == user_id).values(active=active))

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        self.conn.execute(update(t.users).where(t.users.c.id == user_id).values(password_hash=password_hash))

    def get_by_username(self, username: str) -> UserRecord | None:
        r = self.conn.execute(select(t.users).where(t.users.c.username == username)).first()
        return None if r is None else self._to_user(r)

    def get(self, user_id: int) -> UserRecord | None:
        r = self.conn.execute(select(t.users).where(t.users.c.id == user_id)).first()
        return None if r is None else self._to_user(r)

    def add(
        self,
        *,
        username: str,
        role: str,
        team: str | None,
        password_hash: str | None,
        at: datetime,
        email: str | None = None,
    ) -> int:
        return int(
            self.conn.execute(
                insert(t.users)
                .values(
                    username=username,
                    role=role,
                    team=team,
                    email=email,
                    password_hash=password_hash,
                    active=True,
                    created_at=at,
                )
                .returning(t.users.c.id)
            ).scalar_one()
        )

    def all(self) -> list[UserRecord]:
        return [self._to_user(r) for r in self.conn.execute(select(t.users).order_by(t.users.c.username))]


class SqlActivityRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, activity: Activity) -> bool:
        values = {
            "lead_id": activity.lead_id,
            "type": activity.type,
            "occurred_at": activity.occurred_at,
            "source": activity.source,
            "campaign": activity.campaign,
            "content": activity.content,
            "idempotency_key": activity.idempotency_key,
            "properties": dict(activity.properties) or None,
        }
        added = insert_ignoring(self.conn, t.activities, [values], ["lead_id", "idempotency_key"]) == 1
        if added:
            report_facts.touches_changed(self.conn, {activity.lead_id: activity.occurred_at})
        return added

    def for_lead(
        self, lead_id: int, limit: int = 200, before: tuple[datetime, int] | None = None
    ) -> list[Activity]:
        a = t.activities.c
        q = select(t.activities).where(a.lead_id == lead_id)
        if before is not None:
            at, last_id = before
            q = q.where(or_(a.occurred_at < at, and_(a.occurred_at == at, a.id < last_id)))
        q = q.order_by(a.occurred_at.desc(), a.id.desc()).limit(limit)
        return [
            Activity(
                id=r.id,
                lead_id=r.lead_id,
                type=r.type,
                occurred_at=r.occurred_at,
                idempotency_key=r.idempotency_key,
                source=r.source,
                campaign=r.campaign,
                content=r.content,
                properties=r.properties or {},
            )
            for r in self.conn.execute(q)
        ]

    def count_for_lead(self, lead_id: int) -> int:
        q = select(func.count()).select_from(t.activities).where(t.activities.c.lead_id == lead_id)
        return int(self.conn.execute(q).scalar_one())

    def known_types(self) -> set[str]:
        return {r[0] for r in self.conn.execute(select(t.activity_types.c.name))}


class SqlPropertyRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def definitions(self, entity: str) -> dict[str, PropertyType]:
        q = select(t.property_definitions.c.name, t.property_definitions.c.type).where(
            t.property_definitions.c.entity == entity
        )
        return {name: PropertyType(type_) for name, type_ in self.conn.execute(q)}

    def save_definitions(self, entity: str, types: Mapping[str, PropertyType], *, at: datetime) -> None:
        known = self.definitions(entity)
        for name, type_ in types.items():
            if name not in known:
                self.conn.execute(
                    insert(t.property_definitions).values(
                        entity=entity, name=name, type=type_.value, created_at=at
                    )
                )
            elif known[name] is not type_:
                self.conn.execute(
                    update(t.property_definitions)
                    .where(
                        t.property_definitions.c.entity == entity,
                        t.property_definitions.c.name == name,
                    )
                    .values(type=type_.value)
                )


class SqlQualificationRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def record(
        self,
        lead_id: int,
        *,
        cycle: int,
        framework: str,
        criterion: str,
        confirmed: bool,
        value: Mapping[str, Any],
        evidence: str | None,
        recorded_by: str,
        at: datetime,
    ) -> None:
        self.conn.execute(
            insert(t.qualification_records).values(
                lead_id=lead_id,
                cycle=cycle,
                framework=framework,
                criterion=criterion,
                confirmed=confirmed,
                value=dict(value),
                evidence=evidence,
                recorded_by=recorded_by,
                recorded_at=at,
            )
        )

    def confirmed(self, lead_id: int, *, cycle: int, framework: str) -> dict[str, bool]:
        q = (
            select(t.qualification_records.c.criterion, t.qualification_records.c.confirmed)
            .where(
                t.qualification_records.c.lead_id == lead_id,
                t.qualification_records.c.cycle == cycle,
                t.qualification_records.c.framework == framework,
            )
            .order_by(t.qualification_records.c.recorded_at, t.qualification_records.c.id)
        )
        out: dict[str, bool] = {}
        for criterion, confirmed in self.conn.execute(q):
            out[criterion] = bool(confirmed)  # the latest record of each criterion wins
        return out


class SqlBulkWriter:
    """Set-based reads and writes: raw DB-API ``executemany`` on SQLite and PostgreSQL."""

    CHUNK = 900

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name

    def _lookup(self, sql_template: str, keys: list[Any], prefix: tuple[Any, ...] = ()) -> list[Any]:
        out: list[Any] = []
        for chunk, marks in in_chunks(keys, "?" if self.dialect == "sqlite" else "%s", self.CHUNK):
            out.extend(self.conn.exec_driver_sql(sql_template.format(marks=marks), (*prefix, *chunk)).all())
        return out

    def lead_ids_by_email(self, canonicals: Iterable[str]) -> dict[str, int]:
        wanted = list(set(canonicals))
        rows = self._lookup(
            "SELECT email_normalized, id FROM leads WHERE email_normalized IN ({marks})", wanted
        )
        found = {r[0]: int(r[1]) for r in rows}
        missing = [c for c in wanted if c not in found]
        if missing:  # the address of a lead merged into another one leads to the survivor
            mark = "?" if self.dialect == "sqlite" else "%s"
            aliases = self._lookup(
                f"SELECT value, lead_id FROM lead_external_ids WHERE system = {mark} AND value IN ({{marks}})",
                missing,
                prefix=(MERGED_EMAIL,),
            )
            found.update({r[0]: int(r[1]) for r in aliases})
        return found

    def lead_ids_by_external_id(self, values: Iterable[str]) -> dict[str, int]:
        rows = self._lookup(
            "SELECT value, lead_id FROM lead_external_ids WHERE value IN ({marks})", list(set(values))
        )
        found: dict[str, int] = {}
        ambiguous: set[str] = set()
        for value, lead_id in rows:
            if value in found and found[value] != lead_id:
                ambiguous.add(value)
            found[value] = int(lead_id)
        for value in ambiguous:
            del found[value]
        return found

    def existing_lead_ids(self, ids: Iterable[int]) -> set[int]:
        return {int(r[0]) for r in self._lookup("SELECT id FROM leads WHERE id IN ({marks})", list(set(ids)))}

    def stored_keys(self, rows: Sequence[ActivityRow]) -> set[tuple[int, str]]:
        if not rows:
            return set()
        if self.dialect == "sqlite":  # one index probe per row, the pairs passed as one JSON text
            found = self.conn.exec_driver_sql(
                "SELECT a.lead_id, a.idempotency_key FROM json_each(?) j JOIN activities a "
                "ON a.lead_id = json_extract(j.value, '$[0]') AND a.idempotency_key = json_extract(j.value, '$[1]')",
                (json.dumps([(r[0], r[3]) for r in rows]),),
            )
        else:
            found = self.conn.exec_driver_sql(
                "SELECT a.lead_id, a.idempotency_key FROM activities a "
                "JOIN unnest(%s::bigint[], %s::text[]) AS k(lead_id, key) "
                "ON a.lead_id = k.lead_id AND a.idempotency_key = k.key",
                ([r[0] for r in rows], [r[3] for r in rows]),
            )
        return {(int(r[0]), str(r[1])) for r in found}

    def settle_leads(self, rows: Sequence[tuple[datetime, ActivityRow]]) -> list[ActivityRow]:
        ids = {row[0] for _at, row in rows}
        live = self.existing_lead_ids(ids)
        # leads merged into another one: the row goes to the survivor if the merge came after it arrived
        # (or the id is gone); a lead created since under a freed id is someone else
        merges = {
            int(r[0]): (int(r[1]), _time(r[2]))
            for r in self._lookup(
                "SELECT merged_id, survivor_id, at FROM lead_merges WHERE merged_id IN ({marks})", sorted(ids)
            )
        }
        survivors = {survivor for survivor, _at in merges.values()}
        live |= self.existing_lead_ids(survivors)
        now_at = {s: s for s in survivors if s in live}
        following = {s: s for s in survivors if s not in live}
        for _ in range(100):  # a survivor merged again later: followed to the lead that exists now
            if not following:
                break
            step = {
                int(r[0]): int(r[1])
                for r in self._lookup(
                    "SELECT merged_id, survivor_id FROM lead_merges WHERE merged_id IN ({marks})",
                    sorted(set(following.values())),
                )
            }
            following = {first: step[last] for first, last in following.items() if last in step}
            live |= self.existing_lead_ids(set(following.values()))
            now_at.update({first: last for first, last in following.items() if last in live})
            following = {first: last for first, last in following.items() if last not in live}
        out: list[ActivityRow] = []
        settled: list[tuple[datetime, ActivityRow]] = []
        for received, row in rows:
            lead: int | None = row[0]
            merge = merges.get(row[0])
            if merge is not None and (row[0] not in live or merge[1] >= received):
                lead = now_at.get(merge[0])
            elif row[0] not in live:
                lead = None
            if lead is None:  # deleted since: nothing to attach it to
                continue
            settled.append((received, row if lead == row[0] else (lead, *row[1:])))
        # what forgetting a person cleared (properties) stays cleared for rows that arrived before it
        forgotten: dict[int, datetime] = {}
        mark = "?" if self.dialect == "sqlite" else "%s"
        for lead_id, at in self._lookup(
            f"SELECT lead_id, max(at) FROM lead_history WHERE action = {mark} AND lead_id IN ({{marks}}) "
            "GROUP BY lead_id",
            sorted({row[0] for _at, row in settled}),
            prefix=(HistoryKind.FORGET.value,),
        ):
            forgotten[int(lead_id)] = _time(at)
        for received, row in settled:
            erased = forgotten.get(row[0])
            if erased is not None and row[7] is not None and erased >= received:
                row = (*row[:7], None)
            out.append(row)
        return out

    def insert_activities(self, rows: Sequence[ActivityRow], *, refresh_credits: bool = True) -> int:
        if not rows:
            return 0
        cols = "lead_id, type, occurred_at, idempotency_key, source, campaign, content, properties"
        if self.dialect == "sqlite":
            # canonical UTC text is exactly how UTCDateTime stores times on SQLite
            before = self._total_changes()
            self.conn.exec_driver_sql(
                f"INSERT OR IGNORE INTO activities ({cols}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", list(rows)
            )
            inserted = self._total_changes() - before
        else:
            sql = (
                f"INSERT INTO activities ({cols}) "
                "VALUES (%s, %s, (%s || '+00')::timestamptz, %s, %s, %s, %s, %s::json) "
                "ON CONFLICT (lead_id, idempotency_key) DO NOTHING"
            )
            inserted = max(0, int(self.conn.exec_driver_sql(sql, list(rows)).rowcount))
        if inserted and refresh_credits:
            self.refresh_credits(earliest_by_lead(rows))
        return inserted

    def refresh_credits(self, earliest: Mapping[int, datetime]) -> None:
        report_facts.touches_changed(self.conn, earliest)

    def insert_new_activities(self, rows: Sequence[ActivityRow], *, defer: bool = False) -> list[ActivityRow]:
        """Insert like :meth:`insert_activities` and return the rows that were new (for incremental scoring).
        ``defer``: leave their follow-ups (scoring, attribution credits) to the backlog instead."""
        if not rows:
            return []
        before = self.last_activity_id()
        inserted = self.insert_activities(rows, refresh_credits=not defer)
        if not inserted:
            return []
        mark = "?" if self.dialect == "sqlite" else "%s"
        if defer:
            if self.dialect == "sqlite":  # one writer at a time: every id above the mark is this batch's
                self.conn.exec_driver_sql(
                    f"INSERT INTO activity_backlog (activity_id) SELECT id FROM activities WHERE id > {mark}",
                    (before,),
                )
            else:  # other sessions may have inserted ids above the mark: this batch's (lead, key) pairs
                self.conn.exec_driver_sql(  # name its rows
                    "INSERT INTO activity_backlog (activity_id) SELECT a.id FROM activities a "
                    f"JOIN unnest({mark}::bigint[], {mark}::text[]) AS k(lead_id, key) "
                    f"ON a.lead_id = k.lead_id AND a.idempotency_key = k.key WHERE a.id > {mark}",
                    ([r[0] for r in rows], [r[3] for r in rows], before),
                )
        if inserted == len(rows):  # every row was new (a batch holds each event once): nothing to look up
            return list(rows)
        fresh = {
            (int(r[0]), r[1])
            for r in self.conn.exec_driver_sql(
                f"SELECT lead_id, idempotency_key FROM activities WHERE id > {mark}", (before,)
            ).all()
        }
        return [r for r in rows if (r[0], r[3]) in fresh]

    def backlog(self, limit: int) -> list[tuple[int, ActivityRow]]:
        """The oldest activities whose follow-ups have not run, as (activity id, row). Whoever reads them
        takes turns with the import pipeline (PostgreSQL: its advisory lock, held to the transaction's end;
        SQLite: the write lock), so no lead's scores are folded by two transactions at once."""
        if self.dialect != "sqlite":
            self.conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({IDENTITY_LOCK})")
        a = "a.lead_id, a.type, a.occurred_at, a.idempotency_key, a.source, a.campaign, a.content, a.properties"
        sql = (
            f"SELECT b.activity_id, {a} FROM activity_backlog b JOIN activities a ON a.id = b.activity_id "
            f"ORDER BY b.activity_id LIMIT {int(limit)}"
        )
        out: list[tuple[int, ActivityRow]] = []
        for r in self.conn.exec_driver_sql(sql):
            at = r[3] if isinstance(r[3], str) else utc_text(r[3])
            props = r[8] if r[8] is None or isinstance(r[8], str) else dumps_properties(r[8])
            out.append((int(r[0]), (int(r[1]), r[2], at, r[4], r[5], r[6], r[7], props)))
        return out

    def last_activity_id(self) -> int:
        return int(self.conn.exec_driver_sql("SELECT COALESCE(MAX(id), 0) FROM activities").scalar_one())

    def clear_backlog(self, activity_ids: Sequence[int]) -> None:
        for chunk, marks in in_chunks(list(activity_ids), "?" if self.dialect == "sqlite" else "%s"):
            self.conn.exec_driver_sql(f"DELETE FROM activity_backlog WHERE activity_id IN ({marks})", chunk)

    def _total_changes(self) -> int:
        return int(self.conn.exec_driver_sql("SELECT total_changes()").scalar_one())

    def touch_leads(self, touches: Mapping[int, tuple[str, str | None, str, str | None]]) -> None:
        """Widen first/last touch in one pass per lead; a lead's own first source is never replaced."""
        if not touches:
            return
        d = self.dialect
        m = "?" if d == "sqlite" else "%s"
        params = []
        for lead_id, (first_at, first_src, last_at, last_src) in touches.items():
            f, last = (
                (first_at, last_at) if d == "sqlite" else (from_utc_text(first_at), from_utc_text(last_at))
            )
            params.append((f, f, first_src, last, last_src, last, last, lead_id))
        # every SET expression reads the row as it was before the update
        self.conn.exec_driver_sql(
            "UPDATE leads SET "
            f"first_touch_at = CASE WHEN first_touch_at IS NULL OR first_touch_at > {m} THEN {m} "
            "ELSE first_touch_at END, "
            f"first_source = COALESCE(first_source, {m}), "
            f"latest_source = CASE WHEN last_touch_at IS NULL OR last_touch_at < {m} "
            f"THEN COALESCE({m}, latest_source) ELSE latest_source END, "
            f"last_touch_at = CASE WHEN last_touch_at IS NULL OR last_touch_at < {m} THEN {m} "
            "ELSE last_touch_at END "
            f"WHERE id = {m}",
            params,
        )

    def insert_history(self, rows: Sequence[tuple[int, HistoryEntry]]) -> None:
        if rows:
            self.conn.execute(insert(t.lead_history), [history_values(lead_id, e) for lead_id, e in rows])
            history_written(self.conn, rows)


def dumps_properties(values: Mapping[str, Any]) -> str | None:
    return json.dumps(values, separators=(",", ":"), ensure_ascii=False, default=str) if values else None


class SqlExportQueries:
    """Keyset-paged reads of whole tables for exports (constant memory)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def lead_property_names(self) -> list[str]:
        q = (
            select(t.property_definitions.c.name)
            .where(t.property_definitions.c.entity == "lead")
            .order_by(t.property_definitions.c.id)
        )
        return [r[0] for r in self.conn.execute(q)]

    def pages(self, kind: str, page_size: int = 5_000) -> Iterator[list[dict[str, Any]]]:
        table, query = self._query(kind)
        last = 0
        while True:
            rows = self.conn.execute(
                query.where(table.c.id > last).order_by(table.c.id).limit(page_size)
            ).all()
            if not rows:
                return
            last = rows[-1].id
            yield [self._row(kind, r) for r in rows]

    def _query(self, kind: str) -> tuple[Any, Any]:
        if kind == "leads":
            ext = (
                select(func.min(t.lead_external_ids.c.value))
                .where(t.lead_external_ids.c.lead_id == t.leads.c.id)
                .scalar_subquery()
            )
            q = select(
                t.leads,
                t.users.c.username.label("owner"),
                t.accounts.c.domain.label("account_domain"),
                ext.label("external_id"),
            ).select_from(
                t.leads.outerjoin(t.users, t.users.c.id == t.leads.c.owner_id).outerjoin(
                    t.accounts, t.accounts.c.id == t.leads.c.account_id
                )
            )
            return t.leads, q
        if kind == "activities":
            q = select(t.activities, t.leads.c.email).select_from(
                t.activities.join(t.leads, t.leads.c.id == t.activities.c.lead_id)
            )
            return t.activities, q
        if kind == "history":
            q = select(t.lead_history, t.leads.c.email).select_from(
                t.lead_history.join(t.leads, t.leads.c.id == t.lead_history.c.lead_id)
            )
            return t.lead_history, q
        raise ValueError(kind)

    @staticmethod
    def _row(kind: str, r: Any) -> dict[str, Any]:
        d = dict(r._mapping)
        for key, value in d.items():
            if isinstance(value, datetime):
                d[key] = value.isoformat()
        if kind == "leads":
            props = d.pop("properties") or {}
            d = {k: v for k, v in d.items() if k not in ("email_normalized", "fingerprint", "version")}
            d.update({f"property:{k}": v for k, v in props.items()})
        elif kind == "activities":
            d["lead_id"] = d["lead_id"]
        return d
