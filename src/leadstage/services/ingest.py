"""Imports of leads, accounts and activities: streamed in batches, idempotent, rejects reported.

Every batch is committed on its own, and every row is recognised on a second run (leads by identity,
accounts by domain or name, activities by idempotency key), so an import killed halfway can simply be
run again: nothing is lost and nothing is doubled.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from leadstage.domain.activities import (
    derived_idempotency_key,
    normalize_activity_type,
    scoped_idempotency_key,
)
from leadstage.domain.disqualification import resurfaces
from leadstage.domain.errors import ValidationError
from leadstage.domain.identity import (
    MERGED_EMAIL,
    EmailRules,
    canonical_email,
    fingerprint,
    normalize_company_name,
    normalize_domain,
)
from leadstage.domain.leads import (
    Account,
    ExternalId,
    Identity,
    PropertyType,
    PropertyValue,
    as_id,
    infer_value,
    merge_properties,
    type_of,
)
from leadstage.domain.scoring import ActivityFacts, ScoringModel, StateTuple, fold_all
from leadstage.domain.stages import ADVOCACY_ACTIVITY_TYPES, Status
from leadstage.domain.times import (
    TimestampError,
    parse_timestamp,
    to_utc,
    utc_text,
    utc_text_fast,
    utc_text_ts,
    utc_texts_fast,
)
from leadstage.services import backlog, privacy
from leadstage.services.advocacy import advocate_from_activities
from leadstage.services.disqualification import handle_resurfaced
from leadstage.services.leads import LeadIndex, LeadInput, account_domain, identity_of, upsert_lead
from leadstage.services.ports import (
    ActivityInbox,
    ActivityRow,
    Clock,
    IdentityNormalizer,
    ImportReport,
    NullProgress,
    Progress,
    ReadAhead,
    RecordBatch,
    RecordSource,
    RejectedRecord,
    RejectSink,
    StoredModel,
    UnitOfWork,
    UnitOfWorkFactory,
)
from leadstage.services.scoring import (
    Loader,
    activity_facts,
    load_active,
    property_filtered_types,
    score_folded_activities,
    score_leads,
    score_new_activities,
)

# ---- mappings ----------------------------------------------------------------------------------------

LEAD_FIELDS = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "full_name",
    "job_title",
    "company",
    "website",
    "external_id",
    "account_id",
    "source",
    "created_at",
)
ACCOUNT_FIELDS = ("name", "domain", "industry", "employees", "annual_revenue", "country")
ACTIVITY_FIELDS = (
    "email",
    "lead_id",
    "external_id",
    "type",
    "occurred_at",
    "source",
    "campaign",
    "content",
    "idempotency_key",
)
#: Fields that hold who a person is: stored on the lead itself, not repeated as custom properties.
IDENTITY_FIELDS = frozenset(
    {"email", "phone", "first_name", "last_name", "full_name", "job_title", "company", "external_id"}
)

_SYNONYMS: Mapping[str, tuple[str, ...]] = {
    "email": ("email", "e-mail", "email address", "e-mail address", "emailaddress", "mail"),
    "phone": ("phone", "phone number", "telephone", "tel", "mobile", "mobile phone", "mobile number"),
    "first_name": ("first name", "firstname", "given name", "forename"),
    "last_name": ("last name", "lastname", "surname", "family name"),
    "full_name": ("name", "full name", "fullname", "contact name", "contact"),
    "job_title": ("job title", "jobtitle", "title", "position"),
    "company": ("company", "company name", "organization", "organisation", "employer"),
    "website": ("website", "company website", "company domain", "web site", "url", "domain"),
    "external_id": ("external id", "externalid"),
    "account_id": ("account id", "accountid"),
    "source": ("source", "lead source", "original source", "channel"),
    "created_at": ("created at", "created", "create date", "created date", "date created", "createdate"),
    # accounts
    "name": ("name", "account name", "company", "company name", "organization", "organisation"),
    "domain": ("domain", "website", "company domain", "url", "web site"),
    "industry": ("industry", "sector", "vertical"),
    "employees": ("employees", "employee count", "number of employees", "headcount", "company size", "size"),
    "annual_revenue": ("annual revenue", "revenue", "annualrevenue", "company revenue"),
    "country": ("country", "country code", "hq country"),
    # activities
    "lead_id": ("lead id", "leadid"),
    "type": ("type", "activity type", "activity", "event", "event type"),
    "occurred_at": ("occurred at", "timestamp", "time", "date", "occurred", "event time", "datetime"),
    "campaign": ("campaign", "campaign name", "utm campaign"),
    "content": ("content", "asset", "content asset", "utm content"),
    "idempotency_key": ("idempotency key", "idempotencykey", "event id", "dedupe key"),
}


def _canon_header(name: str) -> str:
    return " ".join(name.strip().lower().replace("_", " ").split())


@dataclass
class Mapping_:
    """How a file's columns map to leadstage fields; every other column is a custom property."""

    kind: str
    fields: dict[str, str]  # field -> column
    missing_values: frozenset[str] = frozenset()
    id_system: str = "import"
    ignore: frozenset[str] = frozenset()
    properties: list[str] = field(default_factory=list)  # columns kept as custom properties

    def column(self, name: str) -> str | None:
        return self.fields.get(name)


MAP_KEYS = ("columns", "missing_values", "id_system", "ignore", "encoding")


def build_mapping(
    kind: str,
    columns: list[str],
    spec: Mapping[str, Any] | None,
    *,
    id_column: str | None = None,
    spec_name: str = "map",
) -> Mapping_:
    """Resolve explicit mappings, then recognise known fields by their common names."""
    allowed = {"leads": LEAD_FIELDS, "accounts": ACCOUNT_FIELDS, "activities": ACTIVITY_FIELDS}[kind]
    spec = dict(spec or {})
    unknown_keys = sorted(set(spec) - set(MAP_KEYS))
    if unknown_keys:
        raise ValidationError(
            f"{spec_name}: unknown key {unknown_keys[0]!r}; known keys: {', '.join(MAP_KEYS)}",
            field=unknown_keys[0],
        )
    explicit = spec.get("columns") or {}
    if not isinstance(explicit, dict):
        raise ValidationError(f"{spec_name}: 'columns' must map file columns to fields", field="columns")
    fields: dict[str, str] = {}
    for column, target in explicit.items():
        if column not in columns:
            raise ValidationError(
                f"{spec_name}: columns.{column}: the file has no column {column!r} "
                f"(columns: {', '.join(columns)})",
                field=f"columns.{column}",
            )
        if target is None:
            continue
        if not isinstance(target, str) or target not in allowed:
            raise ValidationError(
                f"{spec_name}: columns.{column}: unknown field {target!r}; "
                f"known fields: {', '.join(allowed)}",
                field=f"columns.{column}",
            )
        if target in fields:
            raise ValidationError(
                f"{spec_name}: columns.{column}: field {target!r} is already mapped from {fields[target]!r}",
                field=f"columns.{column}",
            )
        fields[target] = column
    if id_column is not None:
        if id_column not in columns:
            raise ValidationError(
                f"--id-column: the file has no column {id_column!r} (columns: {', '.join(columns)})",
                field="id_column",
            )
        if kind == "leads" or kind == "activities":
            fields["external_id"] = id_column
    explicitly_mapped = set(explicit)
    taken = set(fields.values())
    for target in allowed:
        if target in fields:
            continue
        for column in columns:
            if column in taken or column in explicitly_mapped:
                continue
            if _canon_header(column) in _SYNONYMS.get(target, ()) or _canon_header(column) == _canon_header(
                target
            ):
                fields[target] = column
                taken.add(column)
                break
    missing = spec.get("missing_values") or []
    ignore = spec.get("ignore") or []
    if not isinstance(missing, list) or not all(isinstance(v, str | int | float) for v in missing):
        raise ValidationError(f"{spec_name}: missing_values must be a list of values", field="missing_values")
    if not isinstance(ignore, list) or any(c not in columns for c in ignore):
        raise ValidationError(f"{spec_name}: ignore must list columns of the file", field="ignore")
    id_system = str(spec.get("id_system") or "import")
    mapping = Mapping_(
        kind=kind,
        fields=fields,
        missing_values=frozenset(str(v).strip().lower() for v in missing),
        id_system=id_system,
        ignore=frozenset(ignore),
    )
    identity_columns = {fields[f] for f in IDENTITY_FIELDS if f in fields} if kind == "leads" else set(taken)
    mapping.properties = [c for c in columns if c not in identity_columns and c not in mapping.ignore]
    return mapping


def _required(mapping: Mapping_, kind: str) -> None:
    if kind == "activities":
        if not any(mapping.column(f) for f in ("email", "lead_id", "external_id")):
            raise ValidationError(
                "an activity file needs a column naming the lead: email, lead_id or external_id",
                field="email",
            )
        for needed in ("type", "occurred_at"):
            if not mapping.column(needed):
                raise ValidationError(f"an activity file needs a {needed!r} column", field=needed)
    if kind == "accounts" and not (mapping.column("name") or mapping.column("domain")):
        raise ValidationError("an account file needs a 'name' or 'domain' column", field="name")


# ---- cells -------------------------------------------------------------------------------------------


class RowError(ValueError):
    """A row that cannot be imported; the message is the reason written to the rejects file."""


@dataclass
class CellReader:
    missing: frozenset[str]
    tz: tzinfo
    day_first: bool

    def text(self, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, float) and value != value:  # NaN from typed formats
            return None
        s = str(value).strip()
        if not s or s.lower() in self.missing:
            return None
        return s

    def prop(self, value: Any) -> tuple[PropertyValue, PropertyType | None]:
        if isinstance(value, bool | int | float) and not (isinstance(value, float) and value != value):
            return value, type_of(value)
        if isinstance(value, datetime):
            return to_utc(value, self.tz).isoformat(), PropertyType.STRING
        s = self.text(value)
        if s is None:
            return None, None
        return infer_value(s)

    def time(self, value: Any, column: str) -> datetime:
        if isinstance(value, datetime):
            return to_utc(value, self.tz)
        s = self.text(value)
        if s is None:
            raise RowError(f"{column}: a time is required")
        try:
            return parse_timestamp(s, default_tz=self.tz, day_first=self.day_first)
        except TimestampError as exc:
            raise RowError(f"{column}: {exc}") from None

    def number(self, value: Any, column: str, *, integer: bool = False) -> float | int | None:
        s = self.text(value)
        if s is None:
            return None
        try:
            number = float(s.replace(",", "").replace("$", "").replace("€", "").replace("£", ""))
        except ValueError:
            raise RowError(f"{column}: {s!r} is not a number") from None
        if number != number or number in (float("inf"), float("-inf")) or number < 0:
            raise RowError(f"{column}: {s!r} is not a usable non-negative number")
        return int(number) if integer else number


@dataclass
class ImportContext:
    uow_factory: UnitOfWorkFactory
    clock: Clock
    normalizer: IdentityNormalizer
    email_rules: EmailRules
    tz: tzinfo
    day_first: bool = True
    auto_create_accounts: bool = True
    batch_rows: int = 50_000
    progress: Progress = field(default_factory=NullProgress)
    actor: str = "import"
    #: reads scoring models; when set and a model is active, imported leads and activities are scored as they land
    scoring_loader: Loader | None = None
    #: whether arriving activities tell that a disqualified person showed up again (off when the same
    #: arrival was already judged, e.g. a form submission after its lead record)
    judge_resurfacing: bool = True
    #: leave the activities' scoring and attribution credits to the activity backlog (the API's batches:
    #: the server's follow-up loop and ``tick`` run them, see :func:`run_backlog`; ADR 21)
    defer_follow_ups: bool = False
    #: reads and prepares an activity file's next batch in a second process while one is stored (ADR 23);
    #: used for files of at least :data:`READ_AHEAD_BYTES`
    read_ahead: ReadAhead | None = None
    #: with ``defer_follow_ups``: where the activities wait for the follow-up to store them (SQLite's
    #: inbox file, ADR 24), read through ``reader`` (read-only units of work); None: stored at once
    inbox: ActivityInbox | None = None
    reader: UnitOfWorkFactory | None = None


class _TypeTracker:
    """The type of each custom property, widened as values arrive; a missing value says nothing."""

    def __init__(self, known: Mapping[str, PropertyType]) -> None:
        self.known = dict(known)
        self.changed: dict[str, PropertyType] = {}
        self.untyped: set[str] = set()  # columns seen only empty so far

    def see(self, name: str, type_: PropertyType | None) -> None:
        if type_ is None:
            if name not in self.known:
                self.untyped.add(name)
            return
        current = self.known.get(name)
        widened = type_ if current is None else current.widen(type_)
        if widened is not current:
            self.known[name] = self.changed[name] = widened
            self.untyped.discard(name)

    def flush(self, uow: UnitOfWork, entity: str, at: datetime, *, final: bool = False) -> None:
        if final:  # a column that stayed empty in the whole file is still a (text) property
            for name in self.untyped:
                self.known[name] = self.changed[name] = PropertyType.STRING
            self.untyped = set()
        if self.changed:
            uow.properties.save_definitions(entity, self.changed, at=at)
            self.changed = {}


def _coerce_to_column_type(value: PropertyValue, type_: PropertyType | None) -> PropertyValue:
    """Keep each property's values of one type: once a column holds text, every value is text."""
    if value is None or type_ is None:
        return value
    if type_ is PropertyType.STRING and not isinstance(value, str):
        return json.dumps(value) if isinstance(value, bool) else str(value)
    if type_ is PropertyType.NUMBER and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _finish(report: ImportReport, source: RecordSource, rejects: RejectSink, started: float) -> ImportReport:
    _drain_unreadable(source, rejects, report)
    report.rejected = rejects.count
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _drain_unreadable(source: RecordSource, rejects: RejectSink, report: ImportReport) -> None:
    for record in source.drain_unreadable():
        rejects.write(record)
        report.rows_read += 1


def _run_batches(
    source: RecordSource,
    ctx: ImportContext,
    rejects: RejectSink,
    report: ImportReport,
    handle: Callable[[UnitOfWork, RecordBatch, _TypeTracker | None], None],
    entity: str | None,
    *,
    finish: Callable[[UnitOfWork], None] | None = None,
) -> None:
    with ctx.uow_factory() as uow:
        tracker = _TypeTracker(uow.properties.definitions(entity)) if entity else None

        def end() -> None:
            if tracker is not None:
                tracker.flush(uow, entity or "", ctx.clock.now(), final=True)
            if finish is not None:
                finish(uow)

        finished = False
        for batch in source.batches():
            report.rows_read += batch.length
            handle(uow, batch, tracker)
            if batch.last:  # what ends the import goes into the last batch's transaction
                end()
                finished = True
            elif tracker is not None:
                tracker.flush(uow, entity or "", ctx.clock.now())
            uow.commit()
            _drain_unreadable(source, rejects, report)
            ctx.progress.advance(rows=batch.length, bytes_read=batch.bytes_read)
        if not finished:
            end()
            uow.commit()
        _drain_unreadable(source, rejects, report)


# ---- leads -------------------------------------------------------------------------------------------


def import_leads(
    source: RecordSource,
    spec: Mapping[str, Any] | None,
    *,
    ctx: ImportContext,
    rejects: RejectSink,
    id_column: str | None = None,
) -> ImportReport:
    """Create or update one lead per person; all non-identity columns become typed custom properties."""
    started = time.perf_counter()
    mapping = build_mapping("leads", source.columns, spec, id_column=id_column)
    report = ImportReport(file=source.path, kind="leads")
    cells = CellReader(mapping.missing_values, ctx.tz, ctx.day_first)
    col = mapping.column

    def read(row: Mapping[str, Any], tracker: _TypeTracker) -> LeadInput:
        def text(name: str) -> str | None:
            column = col(name)
            return cells.text(row.get(column)) if column else None

        first, last = text("first_name"), text("last_name")
        full = text("full_name")
        if full and not (first or last):
            parts = full.split()
            first, last = (parts[0], " ".join(parts[1:]) or None) if parts else (None, None)
        created_at = None
        created_col = col("created_at")
        if created_col and cells.text(row.get(created_col)) is not None:
            created_at = cells.time(row.get(created_col), created_col)
        account_id = None
        account_col = col("account_id")
        if account_col:
            raw = cells.number(row.get(account_col), account_col, integer=True)
            account_id = int(raw) if raw is not None else None
        properties: dict[str, PropertyValue] = {}
        for column in mapping.properties:
            value, type_ = cells.prop(row.get(column))
            tracker.see(column, type_)
            properties[column] = _coerce_to_column_type(value, tracker.known.get(column))
        ext_value = text("external_id")
        external_ids = [ExternalId(mapping.id_system, ext_value)] if ext_value else []
        email = text("email")
        phone = text("phone")
        # Used only when the row has no usable identity (no valid email, external id or phone).
        fp = None if ext_value else fingerprint([(k, str(v)) for k, v in row.items() if v is not None])
        return LeadInput(
            email=email,
            phone=phone,
            first_name=first,
            last_name=last,
            job_title=text("job_title"),
            company=text("company"),
            website=text("website"),
            external_ids=external_ids,
            account_id=account_id,
            source=text("source"),
            created_at=created_at,
            properties=properties,
            fingerprint=fp,
        )

    with ctx.uow_factory() as uow:  # hashing identifiers costs nothing until someone was forgotten
        salt = (
            privacy.tombstone_salt(uow, at=ctx.clock.now())
            if uow.disqualifications.any_tombstones()
            else None
        )
        uow.commit()

    def handle(uow: UnitOfWork, batch: RecordBatch, tracker: _TypeTracker | None) -> None:
        assert tracker is not None
        now = ctx.clock.now()
        prepared: list[tuple[int, dict[str, Any], LeadInput, tuple[Identity, list[str]]]] = []
        for i in range(batch.length):
            row = batch.row(i)
            try:
                incoming = read(row, tracker)
            except (RowError, ValidationError) as exc:
                rejects.write(RejectedRecord(values=row, reason=f"row {batch.first_row_number + i}: {exc}"))
                continue
            prepared.append((i, row, incoming, identity_of(incoming, ctx.normalizer)))
        forgotten = {
            i: privacy.forgotten_keys(ident, incoming.external_ids, salt=salt) if salt else []
            for i, _r, incoming, (ident, _w) in prepared
        }
        index = LeadIndex.prefetch(
            uow,
            emails={
                ident.email_normalized for _i, _r, _in, (ident, _w) in prepared if ident.email_normalized
            },
            external_ids={(e.system, e.value) for _i, _r, inc, _id in prepared for e in inc.external_ids}
            | {(k.system, k.value) for keys in forgotten.values() for k in keys}
            | {
                (MERGED_EMAIL, ident.email_normalized)
                for _i, _r, _in, (ident, _w) in prepared
                if ident.email_normalized
            },
            phones={ident.phone_e164 for _i, _r, _in, (ident, _w) in prepared if ident.phone_e164},
            fingerprints={inc.fingerprint for _i, _r, inc, _id in prepared if inc.fingerprint},
            domains={d for _i, _r, inc, (ident, _w) in prepared if (d := account_domain(inc, ident))},
        )
        touched: list[int] = []
        resurfaced: list[int] = []
        for i, row, incoming, identity in prepared:
            try:
                _lead, outcome, warnings = upsert_lead(
                    uow,
                    incoming,
                    normalizer=ctx.normalizer,
                    at=now,
                    actor=ctx.actor,
                    auto_create_accounts=ctx.auto_create_accounts,
                    lookup=index,
                    identity=identity,
                    forgotten=forgotten[i],
                )
            except ValidationError as exc:
                rejects.write(RejectedRecord(values=row, reason=f"row {batch.first_row_number + i}: {exc}"))
                continue
            if warnings and len(report.warnings) < 20:
                report.warnings.extend(f"row {batch.first_row_number + i}: {w}" for w in warnings)
            setattr(report, outcome, getattr(report, outcome) + 1)
            if outcome != "unchanged" and _lead.id is not None:
                touched.append(_lead.id)
            if _lead.status is Status.DISQUALIFIED and _lead.id is not None:
                resurfaced.append(_lead.id)
        if ctx.scoring_loader is not None and touched:
            score_leads(uow, sorted(set(touched)), load=ctx.scoring_loader, at=now)
        if resurfaced:
            handle_resurfaced(uow, resurfaced, via=f"import of {Path(source.path).name}", at=now)

    _run_batches(source, ctx, rejects, report, handle, "lead")
    return _finish(report, source, rejects, started)


# ---- accounts ----------------------------------------------------------------------------------------


def import_accounts(
    source: RecordSource, spec: Mapping[str, Any] | None, *, ctx: ImportContext, rejects: RejectSink
) -> ImportReport:
    """One account per normalised domain (or per name when a row has no domain); re-runs update in place."""
    started = time.perf_counter()
    mapping = build_mapping("accounts", source.columns, spec)
    _required(mapping, "accounts")
    report = ImportReport(file=source.path, kind="accounts")
    cells = CellReader(mapping.missing_values, ctx.tz, ctx.day_first)
    col = mapping.column
    mapped = set(mapping.fields.values())
    prop_columns = [c for c in source.columns if c not in mapped and c not in mapping.ignore]

    def handle(uow: UnitOfWork, batch: RecordBatch, tracker: _TypeTracker | None) -> None:
        assert tracker is not None
        now = ctx.clock.now()
        for i in range(batch.length):
            row = batch.row(i)
            try:

                def text(name: str, row: Mapping[str, Any] = row) -> str | None:
                    column = col(name)
                    return cells.text(row.get(column)) if column else None

                raw_domain = text("domain")
                domain = normalize_domain(raw_domain) if raw_domain else None
                if raw_domain and domain is None:
                    raise RowError(f"{col('domain')}: {raw_domain!r} is not a domain")
                name = text("name") or domain
                if not name:
                    raise RowError("an account needs a name or a domain")
                employees = cells.number(
                    row.get(col("employees") or ""), col("employees") or "", integer=True
                )
                revenue = cells.number(row.get(col("annual_revenue") or ""), col("annual_revenue") or "")
                properties: dict[str, PropertyValue] = {}
                for column in prop_columns:
                    value, type_ = cells.prop(row.get(column))
                    tracker.see(column, type_)
                    properties[column] = _coerce_to_column_type(value, tracker.known.get(column))
                incoming = Account(
                    id=None,
                    name=name,
                    domain=domain,
                    industry=text("industry"),
                    employees=int(employees) if employees is not None else None,
                    annual_revenue=float(revenue) if revenue is not None else None,
                    country=text("country"),
                    properties=properties,
                )
            except RowError as exc:
                rejects.write(RejectedRecord(values=row, reason=f"row {batch.first_row_number + i}: {exc}"))
                continue
            existing = (uow.accounts.find_by_domain(domain) if domain else None) or (
                uow.accounts.find_by_name(normalize_company_name(name)) if not domain else None
            )
            if existing is None:
                uow.accounts.add(incoming, at=now)
                report.created += 1
                continue
            merged = Account(
                id=existing.id,
                name=text("name") or existing.name,
                domain=existing.domain or domain,
                industry=incoming.industry or existing.industry,
                employees=incoming.employees if incoming.employees is not None else existing.employees,
                annual_revenue=(
                    incoming.annual_revenue
                    if incoming.annual_revenue is not None
                    else existing.annual_revenue
                ),
                country=incoming.country or existing.country,
                properties=merge_properties(existing.properties, incoming.properties),
            )
            if merged == existing:
                report.unchanged += 1
            else:
                uow.accounts.update(merged, at=now)
                report.updated += 1

    _run_batches(source, ctx, rejects, report, handle, "account")
    return _finish(report, source, rejects, started)


#: Leads whose first/last touch is kept in memory before it is written (bounds memory on huge files).
TOUCH_FLUSH_LEADS = 50_000
#: Emails whose lead id is remembered between batches of an activity import.
EMAIL_CACHE_SIZE = 100_000
#: Activity files from this size on are read ahead in a second process when the context allows it (a
#: smaller file is a few pieces at most: little to overlap, and a fork costs more than it saves)
READ_AHEAD_BYTES = 8 << 20

# ---- activities --------------------------------------------------------------------------------------


def score_activity_rows(
    uow: UnitOfWork,
    rows: Iterable[ActivityRow],
    *,
    model: tuple[StoredModel, ScoringModel],
    load: Loader,
    at: datetime,
) -> int:
    """Fold stored activities that are new to their leads into the leads' scores (incremental scoring);
    returns how many leads were promoted to MQL."""
    by_lead = _facts_by_lead(rows, model[1])
    if not by_lead:
        return 0
    return score_new_activities(uow, by_lead, load=load, at=at, model=model)[1]


def _facts_by_lead(rows: Iterable[ActivityRow], model: ScoringModel) -> dict[int, list[ActivityFacts]]:
    """The rows the model's engagement rules look at, as scoring reads them, by lead."""
    scored_types = {r.activity_type for r in model.engagement_rules}
    return activity_facts(
        (
            (lead_id, type_, utc_text_ts(at_text), source, campaign, content, props)
            for lead_id, type_, at_text, _key, source, campaign, content, props in rows
            if type_ in scored_types
        ),
        property_filtered_types(model),
    )


log = logging.getLogger("leadstage.ingest")

#: activities whose follow-ups one transaction of :func:`run_backlog` runs at most
BACKLOG_CHUNK = 20_000


@dataclass
class FollowUps:
    """What following up the activity backlog did."""

    activities: int = 0
    promoted: int = 0  # leads promoted to MQL by the activities' scores


def run_backlog(
    uow: UnitOfWork,
    *,
    load: Loader | None,
    at: datetime,
    limit: int = BACKLOG_CHUNK,
    inbox: ActivityInbox | None = None,
) -> FollowUps:
    """Run the follow-ups left to the activity backlog for up to ``limit`` activities, oldest first, in
    this unit of work (the caller commits): their leads' first and last touch, attribution credits and,
    when ``load`` is given and a scoring model is active, incremental scoring and MQL promotion, exactly
    as an import that ran them at once. With an ``inbox``, up to ``limit`` of the activities waiting
    there are stored first (:func:`receive_inbox`)."""
    if inbox is not None:
        receive_inbox(uow, inbox, at=at, limit=limit)
    pending = uow.bulk.backlog(limit)
    if not pending:
        return FollowUps()
    # out of the backlog first: a lead folded from all its activities here (one not scored by the active
    # model yet) must count them, as it will not be given them as new ones
    uow.bulk.clear_backlog([activity_id for activity_id, _row in pending])
    rows = [row for _id, row in pending]
    backlog.touch_and_credit(uow, rows)
    model = load_active(uow, load) if load is not None else None
    promoted = 0
    if model is not None and load is not None:
        promoted = score_activity_rows(uow, rows, model=model, load=load, at=at)
    return FollowUps(len(pending), promoted)


#: where the main database keeps the inbox's mark (``event_cursors``): up to where its rows are stored
INBOX_CURSOR = "activity-inbox"


def receive_inbox(
    uow: UnitOfWork, inbox: ActivityInbox, *, at: datetime, limit: int = BACKLOG_CHUNK
) -> tuple[int, str | None]:
    """Store up to ``limit`` activities waiting in the inbox (ADR 24) in this unit of work (the caller
    commits), sorted by lead, into ``activities`` and the backlog, with what an import does when they land
    (advocacy, a disqualified person resurfacing); the inbox's mark moves past them in the same
    transaction. Returns how many were taken from the inbox and the mark after them (None: none)."""
    mark = uow.webhooks.cursor(INBOX_CURSOR)
    inbox.discard_through(mark)  # stored by an earlier transaction
    waiting, end = inbox.after(mark, limit)
    if not waiting or end is None:
        return 0, None
    rows = uow.bulk.settle_leads(waiting)
    if len(rows) < len(waiting):
        log.warning(
            "%d activities from the inbox dropped: their leads were deleted", len(waiting) - len(rows)
        )
    rows.sort(key=lambda r: (r[0], r[3]))  # by lead: neighbours in every lead-ordered index
    fresh = uow.bulk.insert_new_activities(rows, defer=True)
    _judge_arrivals(uow, fresh, remembering=uow.disqualifications.any_active(), at=at)
    uow.webhooks.set_cursor(INBOX_CURSOR, end)
    return len(waiting), end


def _judge_arrivals(
    uow: UnitOfWork, fresh: Sequence[ActivityRow], *, remembering: bool, at: datetime
) -> None:
    """What new activities tell as they are stored: advocacy, and a disqualified person showing up again."""
    if any(row[1] in ADVOCACY_ACTIVITY_TYPES for row in fresh):
        advocate_from_activities(uow, ((r[0], r[1], r[7]) for r in fresh), at=at)
    if remembering and fresh:
        via = {row[0]: row[1] for row in fresh if resurfaces(row[1])}
        if via:
            handle_resurfaced(uow, via, via=via, at=at)


def drain_backlog(
    uow_factory: UnitOfWorkFactory, *, load: Loader | None, clock: Clock, inbox: ActivityInbox | None = None
) -> FollowUps:
    """Run the activity backlog's follow-ups until it and the inbox (when given) are empty, a chunk per
    transaction."""
    total = FollowUps()
    while True:
        with uow_factory() as uow:
            received, mark = receive_inbox(uow, inbox, at=clock.now()) if inbox is not None else (0, None)
            done = run_backlog(uow, load=load, at=clock.now())
            uow.commit()
        if inbox is not None and mark is not None:  # stored now: out of the inbox (else the next run's)
            inbox.discard_through(mark)
        total.activities += done.activities
        total.promoted += done.promoted
        if done.activities < BACKLOG_CHUNK and received < BACKLOG_CHUNK:
            return total


def import_activities(
    source: RecordSource,
    spec: Mapping[str, Any] | None,
    *,
    ctx: ImportContext,
    rejects: RejectSink,
    id_column: str | None = None,
) -> ImportReport:
    """The bulk path: resolve leads set-wise, parse and key every row, insert with ``executemany``."""
    started = time.perf_counter()
    mapping = build_mapping("activities", source.columns, spec, id_column=id_column)
    _required(mapping, "activities")
    report = ImportReport(file=source.path, kind="activities")
    cells = CellReader(mapping.missing_values, ctx.tz, ctx.day_first)
    col = mapping.column
    extra_columns = [c for c in mapping.properties if c not in set(mapping.fields.values())]
    rules = ctx.email_rules
    defer = ctx.defer_follow_ups
    inbox = ctx.inbox if defer else None
    reader = ctx.reader or ctx.uow_factory  # (a writer's turn is not needed to read)
    with reader() as uow:
        known_types = uow.activities.known_types()
    type_cache: dict[str, str | None] = {}
    missing = mapping.missing_values
    tz = ctx.tz

    def activity_type(raw: Any) -> str:
        if raw is None:
            raise RowError("type: an activity type is required")
        cached = type_cache.get(raw)
        if cached is None:
            norm = normalize_activity_type(str(raw))
            cached = type_cache[raw] = norm if norm in known_types else ""
        if not cached:
            raise RowError(f"type: unknown activity type {raw!r}")
        return cached

    time_column = col("occurred_at") or "occurred_at"

    def occurred(raw: Any) -> str:
        if raw.__class__ is str:
            fast = utc_text_fast(raw)
            if fast is not None:
                return fast
            try:
                value = datetime.fromisoformat(raw)
            except ValueError:
                return utc_text(cells.time(raw, time_column))
            if value.tzinfo is None:
                value = value.replace(tzinfo=tz)
            return utc_text(value)
        return utc_text(cells.time(raw, time_column))

    def clean(values: list[Any] | None, n: int) -> list[str | None]:
        """A column with surrounding space removed and empty or placeholder cells as None."""
        if values is None:
            return [None] * n
        if missing:
            return [
                None if v is None or not (s := str(v).strip()) or s.lower() in missing else s for v in values
            ]
        return [
            None if v is None or not (s := v.strip() if v.__class__ is str else str(v)) else s for v in values
        ]

    scoring = None
    if ctx.scoring_loader is not None and not defer:
        with ctx.uow_factory() as uow:
            scoring = load_active(uow, ctx.scoring_loader)

    # canonical form of each raw email seen, and lead ids of canonical emails seen (both bounded)
    canonical_cache: dict[Any, str] = {}
    email_ids: dict[str, int] = {}
    # first/last touch per lead, across batches; flushed in bounded chunks and at the end
    touches: dict[int, list[Any]] = {}

    def flush_touches(uow: UnitOfWork) -> None:
        uow.bulk.touch_leads({k: (v[0], v[1], v[2], v[3]) for k, v in touches.items()})
        touches.clear()

    def column(name: str, cols: dict[str, list[Any]]) -> list[Any] | None:
        column_name = col(name)
        return cols.get(column_name) if column_name else None

    def prepare(uow: UnitOfWork, batch: RecordBatch) -> _PreparedBatch:
        """The batch's rows resolved to leads, typed and keyed (reads only; may run ahead elsewhere)."""
        n = batch.length
        rejected: list[RejectedRecord] = []
        cols = batch.columns
        email_col = column("email", cols)
        refs: list[tuple[str, str] | None] = [None] * n
        lead_ids: list[int | None] = [None] * n
        if email_col is not None:
            if len(canonical_cache) > EMAIL_CACHE_SIZE:
                canonical_cache.clear()
            canon: list[str | None] = []
            for e in email_col:
                c = canonical_cache.get(e)
                if c is None:
                    c = canonical_email(e, rules) if e.__class__ is str and "@" in e else ""
                    canonical_cache[e] = c
                canon.append(c or None)
            unknown = {c for c in canon if c and c not in email_ids}
            if len(email_ids) + len(unknown) > EMAIL_CACHE_SIZE:
                email_ids.clear()
                unknown = {c for c in canon if c}
            email_ids.update(uow.bulk.lead_ids_by_email(unknown))
            get = email_ids.get
            lead_ids = [get(c) if c else None for c in canon]
            refs = [("email", c) if c else None for c in canon]
        ext_col = column("external_id", cols)
        if ext_col is not None:
            ext_vals = clean(ext_col, n)
            by_ext = uow.bulk.lead_ids_by_external_id(v for v in ext_vals if v)
            for i, v in enumerate(ext_vals):
                if lead_ids[i] is None and v and (refs[i] is None or v in by_ext):
                    refs[i] = ("external_id", v)
                    lead_ids[i] = by_ext.get(v)
        id_col = column("lead_id", cols)
        if id_col is not None:
            id_vals = clean(id_col, n)
            as_ids = [as_id(v) for v in id_vals]
            known_ids = uow.bulk.existing_lead_ids(x for x in as_ids if x is not None)
            for i, v in enumerate(id_vals):
                found = as_ids[i] if as_ids[i] in known_ids else None
                if lead_ids[i] is None and v and (refs[i] is None or found is not None):
                    refs[i] = ("lead_id", v)
                    lead_ids[i] = found
        type_col = column("type", cols) or [None] * n
        time_col = column("occurred_at", cols) or [None] * n
        sources, campaigns, contents = (
            clean(column("source", cols), n),
            clean(column("campaign", cols), n),
            clean(column("content", cols), n),
        )
        keys = clean(column("idempotency_key", cols), n)
        fast_times = utc_texts_fast(time_col)
        extras = [(c, cols[c]) for c in extra_columns]
        out: list[ActivityRow] = []
        append = out.append
        for i in range(n):
            lead_id = lead_ids[i]
            try:
                if lead_id is None:
                    ref = refs[i]
                    if ref is None:
                        raise RowError("no lead reference: the row needs an email, lead_id or external_id")
                    raise RowError(f"{ref[0]}: no lead with {ref[0]} {ref[1]!r}")
                raw_type = type_col[i]
                type_ = type_cache.get(raw_type) if raw_type.__class__ is str else None
                if not type_:
                    type_ = activity_type(raw_type)
                at = fast_times[i] or occurred(time_col[i])
                source = sources[i]
                props_json = None
                if extras:
                    props: dict[str, PropertyValue] = {}
                    for name, values in extras:
                        pv, _t = cells.prop(values[i])
                        if pv is not None:
                            props[name] = pv
                    if props:
                        props_json = json.dumps(props, separators=(",", ":"), ensure_ascii=False)
                key = keys[i]
                ref = refs[i]
                assert ref is not None
                if key is None:
                    key = derived_idempotency_key(
                        f"{ref[0]}:{ref[1]}", type_, at, source, campaigns[i], contents[i], props_json or ""
                    )
                else:
                    key = scoped_idempotency_key(f"{ref[0]}:{ref[1]}", key)
            except RowError as exc:
                rejected.append(
                    RejectedRecord(values=batch.row(i), reason=f"row {batch.first_row_number + i}: {exc}")
                )
                continue
            append((lead_id, type_, at, key, source, campaigns[i], contents[i], props_json))
        repeated = 0
        if len({(row[0], row[3]) for row in out}) != len(out):  # an event twice in one batch: the first
            firsts: dict[tuple[int, str], ActivityRow] = {}  # by (lead, key), as the table keeps them
            for row in out:
                firsts.setdefault((row[0], row[3]), row)
            repeated = len(out) - len(firsts)
            out = list(firsts.values())
        touched: dict[int, list[Any]] = {}
        if not defer:
            backlog.widen_touches(touched, out)
        folded = None
        if scoring is not None:  # folded from nothing here, merged into the stored states when stored
            engagement = scoring[1]
            folded = {
                lead: {name: (*state,) for name, state in fold_all(engagement, acts).items()}
                for lead, acts in _facts_by_lead(out, engagement).items()
            }
        return _PreparedBatch(
            batch.length, batch.bytes_read, batch.last, out, rejected, repeated, touched, folded=folded
        )

    def store(uow: UnitOfWork, prepared: _PreparedBatch) -> None:
        """Insert the prepared rows and run what follows them (in the importing transaction)."""
        out = prepared.rows
        report.unchanged += prepared.repeated
        backlog.merge_touches(touches, prepared.touched.items())
        if inbox is not None:  # stored by the follow-up, which also judges what they tell (ADR 24)

            def stored_keys(rows: Sequence[ActivityRow]) -> set[tuple[int, str]]:
                # asked under the inbox's write lock, in a read transaction begun now: what is stored by
                # now (this reader's connection: no second one taken while the lock is held)
                uow.rollback()
                return uow.bulk.stored_keys(rows)

            report.created += (added := inbox.add(out, stored_keys, at=ctx.clock.now()))
            report.unchanged += len(out) - added
            return
        # someone disqualified may show up again
        remembering = ctx.judge_resurfacing and uow.disqualifications.any_active()
        advocacy = any(row[1] in ADVOCACY_ACTIVITY_TYPES for row in out)
        if scoring is None and not remembering and not advocacy and not defer:
            inserted = uow.bulk.insert_activities(out)
        else:
            fresh = uow.bulk.insert_new_activities(out, defer=defer)
            inserted = len(fresh)
            if scoring is not None and ctx.scoring_loader is not None:
                load = ctx.scoring_loader
                if prepared.folded is not None and len(fresh) == len(out):  # (else some were stored before)
                    score_folded_activities(
                        uow, prepared.folded, load=load, at=ctx.clock.now(), model=scoring
                    )
                else:
                    score_activity_rows(uow, fresh, model=scoring, load=load, at=ctx.clock.now())
            _judge_arrivals(uow, fresh, remembering=remembering, at=ctx.clock.now())
        report.created += inserted
        report.unchanged += len(out) - inserted
        if len(touches) >= TOUCH_FLUSH_LEADS:
            flush_touches(uow)

    def prepare_all(readers: Callable[[], AbstractContextManager[UnitOfWork]]) -> Iterator[_PreparedBatch]:
        for batch in source.batches():
            with readers() as reader:
                done = prepare(reader, batch)
            done.unreadable = source.drain_unreadable()
            yield done
        rest = source.drain_unreadable()
        if rest:
            yield _PreparedBatch(0, source.size_bytes, False, [], [], 0, {}, rest)

    ahead = None
    if ctx.read_ahead is not None and source.size_bytes >= READ_AHEAD_BYTES:
        # started before this process opens its storing transaction (see ReadAhead); there, each piece's
        # reads in a short transaction of its own
        ahead = ctx.read_ahead(prepare_all)
    # storing into the inbox reads the main database only: no write lock on it
    with reader() if inbox is not None else ctx.uow_factory() as uow:
        batches = ahead if ahead is not None else prepare_all(lambda: nullcontext(uow))
        finished = False
        uncommitted = 0
        try:
            for prepared in batches:
                report.rows_read += prepared.length
                for record in prepared.rejected:
                    rejects.write(record)
                store(uow, prepared)
                if prepared.last:  # what ends the import goes into the last batch's transaction
                    flush_touches(uow)
                    finished = True
                uncommitted += prepared.length
                # a source may be read in smaller pieces than a transaction holds (less memory per piece)
                if finished or uncommitted >= ctx.batch_rows:
                    uow.commit()
                    uncommitted = 0
                for record in prepared.unreadable:
                    rejects.write(record)
                report.rows_read += len(prepared.unreadable)
                ctx.progress.advance(rows=prepared.length, bytes_read=prepared.bytes_read)
        finally:
            close = getattr(batches, "close", None)
            if close is not None:  # a read-ahead process stops with the import, whatever ended it
                close()
        if not finished:
            flush_touches(uow)
            uow.commit()
    return _finish(report, source, rejects, started)


@dataclass
class _PreparedBatch:
    """A batch of activities read, resolved to leads, typed and keyed: what storing it needs."""

    length: int  # rows read from the source
    bytes_read: int
    last: bool
    rows: list[ActivityRow]
    rejected: list[RejectedRecord]
    repeated: int  # rows that were the same event as an earlier row of the batch
    touched: dict[int, list[Any]] = field(default_factory=dict)  # first and last touch per lead in the batch
    unreadable: list[RejectedRecord] = field(default_factory=list)
    # with incremental scoring: the rows' engagement states per lead, folded from nothing
    folded: dict[int, dict[str, StateTuple]] | None = None  # (plain tuples: quicker to unpickle)
