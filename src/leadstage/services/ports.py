"""Ports: the interfaces the services need from the outside world.

Adapters implement them (``adapters/db`` for storage, ``adapters/files`` for reading and writing
files, ``adapters/identity`` for email and phone checks); unit tests can use fakes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from types import TracebackType
from typing import Any, NamedTuple, Protocol, Self, TypeVar

from leadstage.domain.activities import Activity
from leadstage.domain.analytics import Dimension, ReportRequest
from leadstage.domain.disqualification import Disqualification
from leadstage.domain.leads import Account, ExternalId, Lead, PropertyType
from leadstage.domain.routing import LeadFacts, RoutingDocument
from leadstage.domain.scoring import ActivityGroup, GroupPlan, Predictive
from leadstage.domain.segments import Filter, Segment
from leadstage.domain.stages import HistoryEntry, TransitionOutcome
from leadstage.domain.tasks import Task, TaskKind, TaskStatus

_T = TypeVar("_T")


class Clock(Protocol):
    def now(self) -> datetime: ...


@dataclass(frozen=True)
class NormalizedEmail:
    raw: str
    canonical: str | None  # None when the address is not valid syntax
    valid: bool
    problem: str | None = None


@dataclass(frozen=True)
class NormalizedPhone:
    raw: str
    e164: str | None
    valid: bool
    problem: str | None = None


class IdentityNormalizer(Protocol):
    def email(self, raw: str) -> NormalizedEmail: ...

    def phone(self, raw: str) -> NormalizedPhone: ...

    def name_similarity(self, a: str, b: str) -> float:
        """0..100: how alike two "name company" strings are."""
        ...


@dataclass
class LeadFilter:
    stage: str | None = None
    status: str | None = None
    owner_id: int | None = None
    unassigned: bool = False
    limit: int | None = None
    offset: int = 0
    after_id: int | None = None  # cursor: only leads after this id in the listing's order
    descending: bool = False  # newest (highest id) first


@dataclass(frozen=True)
class UserRecord:
    id: int
    username: str
    role: str
    team: str | None
    active: bool
    password_hash: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class AccountRow:
    """An account as listed and shown: the company, its owner (a user name) and how many leads it has."""

    account: Account
    owner: str | None
    leads: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class LeadPageFacts:
    """What a lead's page shows besides the lead itself, read with it in one query."""

    account: Account | None
    owner: str | None
    fit_grade: str | None
    engagement_level: int | None
    priority: str | None
    activity_count: int
    has_disqualification: bool  # ever disqualified (the latest record is read only then)
    has_assignment: bool  # routed now (the current assignment is read only then)


class LeadRepository(Protocol):
    def get(self, lead_id: int) -> Lead | None: ...

    def page(self, lead_id: int) -> tuple[Lead, LeadPageFacts] | None:
        """The lead with its account, owner's name, grades and number of activities (one query)."""
        ...

    def find_by_email(self, canonical: str) -> Lead | None: ...

    def find_by_external_id(self, value: str, system: str | None = None) -> list[Lead]: ...

    def find_by_phone(self, e164: str) -> Lead | None: ...

    def find_by_fingerprint(self, fingerprint: str) -> Lead | None: ...

    def find_many(
        self,
        *,
        emails: Iterable[str] = (),
        external_ids: Iterable[tuple[str, str]] = (),
        phones: Iterable[str] = (),
        fingerprints: Iterable[str] = (),
        ids: Iterable[int] = (),
    ) -> list[Lead]: ...

    def merged_into(self, lead_id: int) -> int | None: ...

    def add(self, lead: Lead) -> int: ...

    def update(self, lead: Lead) -> Lead:
        """Write the lead if its stored version is still ``lead.version``; return it with the new version.

        Raises ``ConcurrencyConflict`` when someone else changed it first.
        """
        ...

    def add_history(self, lead_id: int, entry: HistoryEntry) -> None: ...

    def history(self, lead_id: int) -> list[HistoryEntry]: ...

    def search(self, flt: LeadFilter) -> tuple[int, list[Lead]]: ...

    def similar_candidates(self, lead: Lead, limit: int = 200) -> list[Lead]: ...

    def erase_personal_data(self, lead_id: int, *, keep_external_ids: Sequence[ExternalId]) -> None:
        """Erase what identifies the person from the lead and everything kept about it (rows stay)."""
        ...

    def absorb(self, survivor_id: int, merged: Lead, *, actor: str, at: datetime) -> None:
        """Move everything of ``merged`` to the survivor, record the merge and delete the merged row."""
        ...


class AccountRepository(Protocol):
    def get(self, account_id: int) -> Account | None: ...

    def find_by_domain(self, domain: str) -> Account | None: ...

    def find_by_name(self, normalized_name: str) -> Account | None: ...

    def ids_by_domain(self, domains: Iterable[str]) -> dict[str, int]: ...

    def add(self, account: Account, *, at: datetime) -> int: ...

    def update(self, account: Account, *, at: datetime) -> None: ...

    def row(self, account_id: int, *, lock: bool = False) -> AccountRow | None:
        """One account with its owner and lead count; ``lock``: for an update in this transaction."""
        ...

    def page(
        self, *, after_id: int | None, limit: int, search: str | None = None, descending: bool = False
    ) -> tuple[int, list[AccountRow]]:
        """Accounts in id order after ``after_id`` (``search``: part of the name or domain) and the total."""
        ...

    def set_owner(self, account_id: int, user_id: int | None, *, at: datetime) -> None: ...


class UserRepository(Protocol):
    def get_by_username(self, username: str) -> UserRecord | None: ...

    def get(self, user_id: int) -> UserRecord | None: ...

    def add(
        self,
        *,
        username: str,
        role: str,
        team: str | None,
        password_hash: str | None,
        at: datetime,
        email: str | None = None,
    ) -> int: ...

    def set_active(self, user_id: int, active: bool) -> None: ...

    def set_password_hash(self, user_id: int, password_hash: str) -> None: ...

    def all(self) -> list[UserRecord]: ...


class ActivityRepository(Protocol):
    def add(self, activity: Activity) -> bool:
        """Store the activity unless its idempotency key is known; True when it was new."""
        ...

    def for_lead(
        self, lead_id: int, limit: int = 200, before: tuple[datetime, int] | None = None
    ) -> list[Activity]:
        """Latest first (time, then id); ``before``: only those after that (time, id) in this order."""
        ...

    def count_for_lead(self, lead_id: int) -> int: ...

    def known_types(self) -> set[str]: ...


class PropertyRepository(Protocol):
    def definitions(self, entity: str) -> dict[str, PropertyType]: ...

    def save_definitions(self, entity: str, types: Mapping[str, PropertyType], *, at: datetime) -> None: ...


class QualificationRepository(Protocol):
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
    ) -> None: ...

    def confirmed(self, lead_id: int, *, cycle: int, framework: str) -> dict[str, bool]: ...


#: One activity on the bulk path, as a plain tuple for speed:
#: (lead_id, type, occurred_at as canonical UTC text (``domain.times.utc_text``), idempotency_key, source,
#: campaign, content, properties_json)
ActivityRow = tuple[int, str, str, str, str | None, str | None, str | None, str | None]


class BulkWriter(Protocol):
    """Set-based reads and writes for imports and generators (no aggregates loaded)."""

    def lead_ids_by_email(self, canonicals: Iterable[str]) -> dict[str, int]: ...

    def lead_ids_by_external_id(self, values: Iterable[str]) -> dict[str, int]: ...

    def existing_lead_ids(self, ids: Iterable[int]) -> set[int]: ...

    def insert_activities(self, rows: Sequence[ActivityRow], *, refresh_credits: bool = True) -> int:
        """Insert, skipping known idempotency keys; return how many were new. The attribution credits of
        leads whose new activities count for them are recomputed (unless ``refresh_credits`` is off)."""
        ...

    def refresh_credits(self, earliest: Mapping[int, datetime]) -> None:
        """Recompute the attribution credits of leads with new activities (lead id: earliest new time)."""
        ...

    def insert_new_activities(self, rows: Sequence[ActivityRow], *, defer: bool = False) -> list[ActivityRow]:
        """Insert, skipping known keys; return the rows that were new. ``defer``: their scoring and credits
        are left to the activity backlog (:meth:`backlog`) instead of following in this transaction."""
        ...

    def backlog(self, limit: int) -> list[tuple[int, ActivityRow]]:
        """Up to ``limit`` of the oldest activities whose follow-ups have not run: (activity id, row)."""
        ...

    def last_activity_id(self) -> int: ...

    def clear_backlog(self, activity_ids: Sequence[int]) -> None:
        """Their follow-ups have run (in this transaction)."""
        ...

    def touch_leads(self, touches: Mapping[int, tuple[str, str | None, str, str | None]]) -> None:
        """Widen each lead's first/last touch with (first_at, first_source, last_at, last_source) (UTC text)."""
        ...

    def insert_history(self, rows: Sequence[tuple[int, HistoryEntry]]) -> None: ...

    def stored_keys(self, rows: Sequence[ActivityRow]) -> set[tuple[int, str]]:
        """The (lead id, idempotency key) pairs of these rows that ``activities`` holds."""
        ...

    def settle_leads(self, rows: Sequence[tuple[datetime, ActivityRow]]) -> list[ActivityRow]:
        """Rows received earlier (when, row), as their leads are now: a merged lead's go to its survivor,
        a deleted lead's are dropped, and rows of a person forgotten since they arrived lose their properties
        (as forgetting cleared the stored ones)."""
        ...


class ActivityInbox(Protocol):
    """Where the API's activity batches wait for the follow-up to store them (SQLite: a file beside the
    database, ADR 24). A *mark*, kept in the main database, says up to where its rows are stored."""

    def add(
        self,
        rows: Sequence[ActivityRow],
        stored: Callable[[Sequence[ActivityRow]], set[tuple[int, str]]],
        *,
        at: datetime,
    ) -> int:
        """Keep the rows that are neither stored (``stored`` is asked under the inbox's write lock) nor
        waiting already; returns how many were new."""
        ...

    def after(self, mark: str | None, limit: int) -> tuple[list[tuple[datetime, ActivityRow]], str | None]:
        """Up to ``limit`` rows after the mark, oldest first, each with when it arrived, and the mark that
        ends them."""
        ...

    def discard_through(self, mark: str | None) -> None:
        """Delete the rows up to a mark the main database holds (they are stored)."""
        ...

    def waiting(self, mark: str | None) -> int: ...


@dataclass(frozen=True)
class TaskQuery:
    statuses: tuple[TaskStatus, ...] = (TaskStatus.OPEN,)
    owner_id: int | None = None
    unassigned: bool = False
    lead_id: int | None = None
    due_from: datetime | None = None
    due_before: datetime | None = None
    kinds: tuple[TaskKind, ...] = ()
    limit: int | None = None


class TaskRepository(Protocol):
    def add(self, task: Task) -> int | None:
        """Store a task; None when a task with the same ``key`` is stored already."""
        ...

    def add_many(self, tasks: Sequence[Task]) -> int:
        """Store the tasks whose ``key`` is not stored yet; returns how many were stored."""
        ...

    def get(self, task_id: int) -> Task | None: ...

    def find(self, query: TaskQuery) -> list[Task]: ...

    def count_open(self) -> int: ...

    def complete(self, task_id: int, *, status: TaskStatus, by: str, at: datetime) -> bool: ...

    def cancel_open(self, lead_id: int, kinds: Sequence[TaskKind], *, by: str, at: datetime) -> int: ...

    def reassign(self, task_id: int, owner_id: int | None) -> None: ...


@dataclass(frozen=True)
class Tombstone:
    """What is kept of a forgotten person: a keyed digest of one identifier and how things stood."""

    kind: str  # email, phone, external
    digest: str
    lead_id: int | None
    stage: str
    status: str
    reason: str | None
    disqualified_at: datetime | None
    disqualified_by: str | None
    recheck_at: datetime | None
    forgotten_at: datetime
    forgotten_by: str


class DisqualificationRepository(Protocol):
    def add(self, record: Disqualification) -> int: ...

    def latest(self, lead_id: int) -> Disqualification | None: ...

    def active_for(self, lead_ids: Iterable[int]) -> dict[int, Disqualification]: ...

    def any_active(self) -> bool: ...

    def end_active(self, lead_id: int, *, reason: str, at: datetime) -> int: ...

    def due_follow_ups(self, now: datetime, *, limit: int) -> list[Disqualification]: ...

    def advance_follow_up(self, record_id: int, *, done: int, next_at: datetime | None) -> None: ...

    def erase_notes(self, lead_id: int) -> None: ...

    def add_tombstones(self, rows: Sequence[Tombstone]) -> None: ...

    def tombstones(self, digests: Iterable[tuple[str, str]]) -> list[Tombstone]: ...

    def any_tombstones(self) -> bool: ...

    def secret(self, name: str, *, at: datetime) -> str: ...


@dataclass(frozen=True)
class TokenRecord:
    id: int
    user_id: int
    username: str
    role: str
    team: str | None
    user_active: bool
    name: str | None
    prefix: str
    scope: str
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class CaptureForm:
    key: str
    name: str
    created_at: datetime
    source: str | None = None
    redirect_url: str | None = None
    active: bool = True
    id: int | None = None


@dataclass(frozen=True)
class WebSession:
    digest: str
    user_id: int
    username: str
    role: str
    team: str | None
    user_active: bool
    expires_at: datetime


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    status: str
    params: Mapping[str, Any]
    created_by: str
    created_at: datetime
    result: Any = None
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    runner: str | None = None  # the server running it (its lease holder)


class AccessRepository(Protocol):
    def add_job(self, job: Job) -> None: ...

    def job(self, job_id: str) -> Job | None: ...

    def update_job(self, job_id: str, **values: Any) -> None: ...

    def interrupt_jobs(self, at: datetime, *, alive_runners: Collection[str] = ()) -> int: ...

    def add_session(
        self, *, digest: str, user_id: int, at: datetime, expires_at: datetime, client: str | None
    ) -> None: ...

    def session(self, digest: str) -> WebSession | None: ...

    def end_session(self, digest: str) -> None: ...

    def end_sessions(self, user_id: int) -> None: ...

    def add_token(
        self, *, user_id: int, name: str | None, digest: str, prefix: str, scope: str, by: str, at: datetime
    ) -> int: ...

    def token_by_digest(self, digest: str) -> TokenRecord | None: ...

    def tokens(self, user_id: int | None = None) -> list[TokenRecord]: ...

    def get_token(self, token_id: int) -> TokenRecord | None: ...

    def revoke_token(self, token_id: int, *, at: datetime) -> bool: ...

    def touch_token(self, token_id: int, *, at: datetime) -> None: ...

    def add_form(self, form: CaptureForm) -> int: ...

    def form_by_key(self, key: str) -> CaptureForm | None: ...

    def forms(self) -> list[CaptureForm]: ...


@dataclass(frozen=True)
class Subscription:
    id: int
    url: str
    secret: str
    events: list[str]
    active: bool
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class OutboxItem:
    id: int
    subscription_id: int
    url: str
    secret: str
    event_key: str
    event_type: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class InboundHook:
    id: int
    name: str
    secret: str
    source: str


class WebhookRepository(Protocol):
    def add_subscription(self, *, url: str, secret: str, events: list[str], by: str, at: datetime) -> int: ...

    def subscriptions(self, *, active_only: bool = True) -> list[Subscription]: ...

    def deactivate(self, subscription_id: int) -> bool: ...

    def cursor(self, name: str) -> str | None: ...

    def set_cursor(self, name: str, position: str) -> None: ...

    def history_since(self, after_id: int, limit: int) -> list[dict[str, Any]]: ...

    def scores_since(self, after_id: int, limit: int) -> list[dict[str, Any]]: ...

    def activations_since(self, after: datetime | None) -> list[dict[str, Any]]: ...

    def last_ids(self) -> tuple[int, int]: ...

    def enqueue(self, items: Sequence[dict[str, Any]]) -> int: ...

    def due(self, now: datetime, limit: int) -> list[OutboxItem]: ...

    def record_attempt(
        self,
        item_id: int,
        *,
        status: str,
        attempts: int,
        next_attempt_at: datetime,
        last_status: int | None,
        last_error: str | None,
        delivered_at: datetime | None,
    ) -> None: ...

    def retry_now(self, subscription_id: int, now: datetime) -> int: ...

    def log(self, subscription_id: int, limit: int = 100) -> list[OutboxItem]: ...

    def add_inbound(self, *, name: str, secret: str, source: str, at: datetime) -> int: ...

    def inbound(self, name: str) -> InboundHook | None: ...

    def inbound_hooks(self) -> list[InboundHook]: ...

    def remember_signature(self, hook_id: int, signature: str, at: datetime) -> bool: ...


class MailRepository(Protocol):
    def max_ids(self) -> tuple[int, int]: ...

    def assignments_since(self, after_id: int, limit: int) -> list[dict[str, Any]]: ...

    def last_history_id(self, after_id: int, limit: int) -> int: ...

    def tasks_since(self, after_id: int, kind: str, limit: int) -> list[dict[str, Any]]: ...

    def enqueue(self, items: Sequence[dict[str, Any]]) -> int: ...

    def due(self, now: datetime, limit: int) -> list[dict[str, Any]]: ...

    def record(self, mail_id: int, **values: Any) -> None: ...


class Mailer(Protocol):
    def send(self, to: str, subject: str, body: str) -> str | None:
        """Send one message; an error text when it failed."""
        ...


class WebhookSender(Protocol):
    def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int | None, str | None]:
        """POST the body; the HTTP status (None when no answer came) and an error text when it failed."""
        ...


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    target: str | None = None
    client: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


class AuditRepository(Protocol):
    def add(self, entry: AuditEntry) -> None: ...

    def find(
        self, *, actor: str | None, action: str | None, since: datetime | None, limit: int
    ) -> list[AuditEntry]: ...


class ExportQueries(Protocol):
    def lead_property_names(self) -> list[str]: ...

    def pages(self, kind: str, page_size: int = 5_000) -> Iterator[list[dict[str, Any]]]: ...


@dataclass(frozen=True)
class Grouping:
    """How a report groups leads: a dimension, and for segments the saved filters by name."""

    dimension: Dimension | None
    segments: Sequence[tuple[str, Filter]] = ()
    as_of: datetime | None = None


RankedValues = list[tuple[str, str, int, int, float]]


class ReportQueries(Protocol):
    """The aggregates behind the reports (``adapters/db/reports.py``); see the adapter for each shape."""

    def funnel_furthest(self, request: ReportRequest, grouping: Grouping) -> list[tuple[str, str, int]]: ...

    def funnel_cycles(self, request: ReportRequest, grouping: Grouping) -> list[tuple[str, str, int]]: ...

    def funnel_period(self, request: ReportRequest, grouping: Grouping) -> list[tuple[str, str, int]]: ...

    def days_to_stages(self, request: ReportRequest, grouping: Grouping) -> RankedValues: ...

    def stage_durations(self, request: ReportRequest, grouping: Grouping) -> RankedValues: ...

    def decisions(
        self, request: ReportRequest, grouping: Grouping
    ) -> list[tuple[str, str, str | None, str | None, str | None, int]]: ...

    def hot_rejections(self, request: ReportRequest) -> tuple[int, list[dict[str, Any]]]: ...

    def has_predictive_score(self) -> bool: ...

    def calibration(self, request: ReportRequest, band: Dimension) -> list[tuple[str, int, int, int]]: ...

    def attribution_totals(self, request: ReportRequest) -> list[tuple[str | None, int, int, int, float]]: ...

    def attribution(self, request: ReportRequest) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class LeaseState:
    name: str
    holder: str
    generation: int  # how many holders it has had
    acquired_at: datetime
    expires_at: datetime


class LeaseRepository(Protocol):
    def acquire(self, name: str, holder: str, *, now: datetime, seconds: float) -> LeaseState | None: ...

    def release(self, name: str, holder: str) -> bool: ...

    def holders(self, prefix: str, *, now: datetime) -> list[str]: ...

    def purge(self, prefix: str, *, before: datetime) -> int: ...

    def get(self, name: str) -> LeaseState | None: ...


class UnitOfWork(Protocol):
    """One transaction. Only ``commit`` makes changes durable; leaving without it rolls back."""

    @property
    def leads(self) -> LeadRepository: ...

    @property
    def accounts(self) -> AccountRepository: ...

    @property
    def users(self) -> UserRepository: ...

    @property
    def activities(self) -> ActivityRepository: ...

    @property
    def properties(self) -> PropertyRepository: ...

    @property
    def qualifications(self) -> QualificationRepository: ...

    @property
    def bulk(self) -> BulkWriter: ...

    @property
    def exports(self) -> ExportQueries: ...

    @property
    def scoring(self) -> ScoringRepository: ...

    @property
    def segments(self) -> SegmentRepository: ...

    @property
    def tasks(self) -> TaskRepository: ...

    @property
    def disqualifications(self) -> DisqualificationRepository: ...

    @property
    def access(self) -> AccessRepository: ...

    @property
    def routing(self) -> RoutingRepository: ...

    @property
    def webhooks(self) -> WebhookRepository: ...

    @property
    def mail(self) -> MailRepository: ...

    @property
    def audit(self) -> AuditRepository: ...

    @property
    def predictive(self) -> PredictiveRepository: ...

    @property
    def reports(self) -> ReportQueries: ...

    @property
    def workspace(self) -> WorkspaceQueries: ...

    @property
    def leases(self) -> LeaseRepository: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, write: bool = False) -> UnitOfWork: ...  # pragma: no cover


class ReadAhead(Protocol):
    """Starts ``produce`` in a second process at once, handing it units of work of its own (reads only);
    the result yields its items here in order while it makes the next, and has ``close()`` to stop it
    (adapters/read_ahead.py). Call it with no unit of work of this process open."""

    def __call__(
        self, produce: Callable[[UnitOfWorkFactory], Iterator[_T]]
    ) -> Iterator[_T]: ...  # pragma: no cover


# ---- files -------------------------------------------------------------------------------------------


@dataclass
class RecordBatch:
    """Rows read from a file, column by column: text cells (or typed values from typed formats)."""

    columns: dict[str, list[Any]]
    length: int
    first_row_number: int  # 1-based number of the first row among the file's data rows
    bytes_read: int = 0  # bytes of the file consumed so far (for progress)
    last: bool = False  # known to be the source's last batch (one transaction then ends the import)

    def row(self, i: int) -> dict[str, Any]:
        return {name: values[i] for name, values in self.columns.items()}


@dataclass
class RejectedRecord:
    values: Mapping[str, Any]
    reason: str
    cells: Sequence[str] | None = (
        None  # raw cells, for rows that could not be split into the header's columns
    )


class RecordSource(Protocol):
    """A readable file of records; iterating yields batches; ``rejected`` collects unsplittable rows."""

    path: str
    columns: list[str]
    size_bytes: int

    def batches(self) -> Iterator[RecordBatch]: ...

    def drain_unreadable(self) -> list[RejectedRecord]: ...


class RejectSink(Protocol):
    def write(self, record: RejectedRecord) -> None: ...

    @property
    def count(self) -> int: ...


class Progress(Protocol):
    def advance(self, *, rows: int, bytes_read: int) -> None: ...


class NullProgress:
    def advance(self, *, rows: int, bytes_read: int) -> None:
        return None


@dataclass
class ImportReport:
    file: str
    kind: str
    rows_read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejects_file: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# ---- scoring -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredModel:
    id: int
    version: int
    name: str
    source: str
    active: bool
    created_by: str
    created_at: datetime
    activated_at: datetime | None


class LeadScoreRow(NamedTuple):
    """A lead as scoring reads it: the facts fit rules test, its state, and its current scores.

    Named tuples here and below: batch scoring reads and writes a million of them.
    """

    lead_id: int
    facts: dict[str, Any]
    stage: str
    status: str
    cycle: int
    fit_grade: str | None
    engagement_level: int | None
    priority: str | None
    engagement_state: dict[str, list[Any]] | None
    score_model_id: int | None
    stamp: Any = None  # scored_at as read: a write only lands over the score it was computed from
    predictive: Predictive | None = None  # the stored predictive score (MQL criteria may read it)


class ScoreWrite(NamedTuple):
    lead_id: int
    fit_score: float
    fit_grade: str
    engagement_score: float
    engagement_level: int
    priority: str
    excluded_by: str | None
    engagement_state: str  # JSON text of the per-rule states
    changed: bool  # grade or level changed: a score history row is written
    stamp: Any = None  # the lead's scored_at when it was read
    grades_same: bool = False  # grade, level and priority are as stored (their columns need no write)


class EngagementRow(NamedTuple):
    """What incremental scoring reads: state and stored scores, no facts."""

    lead_id: int
    stage: str
    status: str
    cycle: int
    fit_score: float | None
    fit_grade: str | None
    excluded_by: str | None
    engagement_level: int | None
    engagement_state: dict[str, list[Any]] | None
    score_model_id: int | None
    predictive: Predictive | None = None


class EngagementWrite(NamedTuple):
    lead_id: int
    engagement_score: float
    engagement_level: int
    priority: str
    engagement_state: str  # JSON text of the per-rule states
    changed: bool  # the level (so the priority) changed: a score history row is written
    fit_score: float | None
    fit_grade: str


@dataclass(frozen=True)
class PromotionFacts:
    """What automatic promotion needs to know about a lead, read in one query for many leads."""

    stage: str
    status: str
    cycle: int
    furthest_stage: str
    owner_id: int | None
    version: int
    promoted_this_cycle: bool
    nurture_since: datetime | None


class ScoringRepository(Protocol):
    def active_model(self) -> StoredModel | None: ...

    def models(self) -> list[StoredModel]: ...

    def add_model(
        self,
        *,
        name: str,
        source: str,
        summary: Mapping[str, Any],
        created_by: str,
        at: datetime,
        activate: bool,
    ) -> StoredModel: ...

    def lead_id_ranges(self, chunk: int) -> Iterator[tuple[int, int]]: ...

    def lead_rows(
        self,
        *,
        ids: Sequence[int] | None = None,
        id_range: tuple[int, int] | None = None,
        facts: Collection[str] | None = None,
        with_state: bool = True,
    ) -> list[LeadScoreRow]:
        """Leads by id or id range. ``facts`` limits the facts read to those fit subjects (lead fields and
        ``property:NAME``; default: every fact, all properties); ``with_state=False`` leaves
        ``engagement_state`` unread (``None``)."""
        ...

    def activities_of(
        self,
        *,
        id_range: tuple[int, int] | None = None,
        ids: Sequence[int] | None = None,
        types: Sequence[str],
        with_properties: bool,
        until: datetime | None = None,
        pending: bool = False,
    ) -> Iterator[tuple[int, str, float, str | None, str | None, str | None, str | None]]:
        """(lead_id, type, unix seconds, source, campaign, content, properties JSON), by lead then time;
        activities still in the activity backlog only with ``pending`` (ADR 21: scores fold them later)."""
        ...

    def groups_supported(self) -> bool:
        """Whether :meth:`activity_groups` can run on this database."""
        ...

    def activity_groups(
        self, *, id_range: tuple[int, int], plan: GroupPlan, ref: float
    ) -> dict[int, list[ActivityGroup]]:
        """The groups of each lead in a range that has any: its activities aggregated as ``plan`` says."""
        ...

    def write_scores(self, rows: Sequence[ScoreWrite], *, model_id: int, at: datetime) -> None: ...

    def engagement_rows(self, ids: Sequence[int]) -> list[EngagementRow]: ...

    def write_engagement(self, rows: Sequence[EngagementWrite], *, model_id: int, at: datetime) -> None: ...

    def score_history(self, lead_id: int) -> list[dict[str, Any]]: ...

    def entered_nurture_at(self, lead_id: int, cycle: int) -> datetime | None: ...

    def promoted_in_cycle(self, lead_id: int, cycle: int) -> bool: ...

    def history_span(self) -> tuple[datetime, datetime] | None:
        """The first and last lead creation or activity time, or ``None`` when there is neither."""
        ...

    def created_times(self, *, id_range: tuple[int, int]) -> dict[int, float]:
        """Each lead's creation time in Unix seconds (UTC)."""
        ...

    def stage_entries(
        self, *, id_range: tuple[int, int], stages: Sequence[str]
    ) -> list[tuple[int, str, float]]:
        """(lead_id, to_stage, Unix seconds) of every history transition into one of ``stages``."""
        ...

    def predictive_candidates(self, *, max_decile: int | None, min_score: float | None) -> list[int]:
        """Ids of leads at stage lead, open or in nurture, with a stored predictive decile at most
        ``max_decile`` or score at least ``min_score``."""
        ...

    def promotion_facts(self, lead_ids: Sequence[int]) -> dict[int, PromotionFacts]: ...

    def apply_transitions(self, plans: Sequence[tuple[int, int, TransitionOutcome]], *, at: datetime) -> None:
        """Write planned transitions (lead id, version read, outcome); a stale version is a conflict."""
        ...


# ---- segments ----------------------------------------------------------------------------------------


class SegmentRepository(Protocol):
    """Saved segments, and membership computed by storage (never a loop over leads)."""

    def add(self, segment: Segment) -> Segment:
        """Store a new segment; a duplicate name raises ``ValidationError``."""
        ...

    def get(self, name: str) -> Segment | None: ...

    def all(self) -> list[Segment]: ...

    def delete(self, name: str) -> bool: ...

    def set_filter(self, name: str, filter_text: str, *, at: datetime) -> None: ...

    def count(self, flt: Filter, *, as_of: datetime) -> int: ...

    def lead_ids(
        self, flt: Filter, *, as_of: datetime, limit: int | None = None, offset: int = 0
    ) -> list[int]: ...

    def search(self, flt: Filter, leads: LeadFilter, *, as_of: datetime) -> tuple[int, list[Lead]]:
        """Members that also pass ``leads`` (stage, status, owner, page): (total, the page)."""
        ...


# ---- routing and response SLAs -----------------------------------------------------------------------


@dataclass(frozen=True)
class StoredRouting:
    version: int
    name: str
    source: str
    document: RoutingDocument  # members' time away as stored now (``routing away`` changes it)
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class NewAssignment:
    lead_id: int
    cycle: int
    team: str | None
    user_id: int
    username: str
    kind: str
    rule: str | None
    reason: str
    candidates: Sequence[Mapping[str, Any]]
    actor: str
    at: datetime
    counted: bool
    document_version: int | None
    sla_due_at: datetime | None


@dataclass(frozen=True)
class AssignmentRecord:
    id: int
    lead_id: int
    cycle: int
    team: str | None
    user_id: int | None
    username: str
    kind: str
    rule: str | None
    reason: str
    candidates: list[dict[str, Any]]
    actor: str
    at: datetime
    current: bool
    sla_due_at: datetime | None
    sla_state: str | None
    responded_at: datetime | None
    response_minutes: float | None
    breached_at: datetime | None


@dataclass(frozen=True)
class QueuedLead:
    lead_id: int
    team: str | None
    rule: str | None
    reason: str
    position: int
    priority: str | None
    queued_at: datetime
    email: str | None = None
    name: str | None = None
    company: str | None = None


@dataclass(frozen=True)
class PendingResponse:
    """A current assignment whose first response is still awaited, with what the SLA check needs."""

    assignment_id: int
    lead_id: int
    cycle: int
    team: str | None
    user_id: int | None
    username: str
    at: datetime
    sla_due_at: datetime
    first_sales_at: datetime | None  # the first sales activity since the assignment
    stage: str
    status: str
    owner_id: int | None
    version: int


class RoutingRepository(Protocol):
    """Routing documents, teams, assignments, the hand-off queue and SLA state; never commits."""

    def lock(self, name: str, *, holder: str, at: datetime) -> bool:
        """Hold the named lock until the transaction ends (waits for another holder; False on time-out)."""
        ...

    def active(self) -> StoredRouting | None: ...

    def save(
        self,
        document: RoutingDocument,
        *,
        source: str,
        user_ids: Mapping[str, int],
        created_by: str,
        at: datetime,
    ) -> int:
        """Store a new active version, replace teams and members; returns the version."""
        ...

    def set_out_of_office(self, user_id: int, until: date | None) -> bool: ...

    def unrouted(self) -> list[LeadFacts]:
        """Open MQLs without an owner (stage mql, status open), with what routing needs."""
        ...

    def matching(self, filters: Sequence[Filter], ids: Sequence[int], *, as_of: datetime) -> set[int]:
        """The ids among ``ids`` that pass every filter (segment filters, compiled by storage)."""
        ...

    def loads(
        self, user_ids: Mapping[str, int], since: Mapping[str, datetime]
    ) -> dict[str, tuple[int, int, float]]:
        """Per user name: (open MQLs, leads assigned since ``since[name]``, last assignment in Unix seconds)."""
        ...

    def handed_since(self, team: str, since: datetime) -> int: ...

    def assign(self, new: NewAssignment, *, version: int, history: HistoryEntry) -> int | None:
        """Set the lead's owner if it is still at ``version``; supersede its current assignment, record
        the new one and the history row. None (nothing written) when the lead changed meanwhile."""
        ...

    def assign_many(self, items: Sequence[tuple[NewAssignment, int, HistoryEntry]]) -> list[int | None]:
        """:meth:`assign` for many leads (new, version read, history) at once; None where the lead changed."""
        ...

    def replace_queue(self, entries: Sequence[QueuedLead], *, at: datetime) -> None: ...

    def queue(
        self,
        team: str | None = None,
        *,
        unassigned: bool = False,
        limit: int | None = None,
        lead_id: int | None = None,
    ) -> list[QueuedLead]: ...

    def queue_counts(self) -> dict[str | None, int]: ...

    def current(self, lead_id: int) -> AssignmentRecord | None: ...

    def history(self, lead_id: int) -> list[AssignmentRecord]: ...

    def current_assignments(
        self, *, team: str | None = None, sla_state: str | None = None, limit: int | None = None
    ) -> list[AssignmentRecord]: ...

    def pending_responses(self) -> list[PendingResponse]: ...

    def set_sla_state(
        self,
        assignment_id: int,
        *,
        state: str,
        at: datetime | None,
        responded_at: datetime | None,
        minutes: float | None,
    ) -> bool:
        """Move a pending SLA to ``state``; False when it is no longer pending (another process did)."""
        ...

    def assigned_users(self, lead_ids: Sequence[int]) -> dict[tuple[int, int], set[str]]:
        """Per (lead, cycle): every user the lead was ever assigned to."""
        ...

    def add_history(self, lead_id: int, entry: HistoryEntry) -> None: ...


# ---- predictive scoring (services/predictive.py, adapters/ml.py, adapters/db/predictive.py) -----------


@dataclass
class FeatureFrame:
    """Cleaned feature columns, one value per lead: floats for numeric columns, text for categories,
    None when missing."""

    names: list[str]
    kinds: dict[str, Any]  # name -> domain.predictive.ColumnKind
    columns: dict[str, list[Any]]
    n_rows: int


@dataclass(frozen=True)
class TrainingOptions:
    cv: int | None = None  # K-fold cross-validation; None with time_order: a time-based holdout
    time_order: Sequence[int] | None = None  # row indexes oldest first, when leads have real timestamps
    holdout_share: float = 0.2


@dataclass
class TrainedModel:
    kind: str  # logistic_regression | lightgbm
    artifact: str  # the JSON document that is stored
    sha256: str
    metrics: dict[str, Any]
    features: list[str]
    evaluated: list[int] = field(default_factory=list)  # frame rows the quality figures are measured on


class Predictor(Protocol):
    kind: str

    def predict(self, frame: FeatureFrame) -> list[float]: ...

    def decile(self, p: float) -> int: ...

    def deciles(self, probabilities: Sequence[float]) -> list[int]:
        """``decile`` of each probability, at once."""
        ...

    def contributions(self, frame: FeatureFrame) -> list[dict[str, float]]: ...


class ModelTrainer(Protocol):
    def train(self, frame: FeatureFrame, labels: Sequence[int], options: TrainingOptions) -> TrainedModel: ...

    def load(self, artifact: str, sha256: str) -> Predictor:
        """Parse a stored model; raises TamperedModel when the hash does not match."""
        ...


@dataclass
class LeadFeatureRow:
    """What a predictive model reads about one lead."""

    lead_id: int
    created_at: datetime
    fields: dict[str, Any]  # lead and account fields, activity aggregates
    properties: dict[str, Any]
    furthest_stage: str
    reached_at: datetime | None = None  # when it first reached the label stage (lifecycle labels)
    first_move_at: datetime | None = None  # when it first left its initial stage
    rule_priority: str | None = None  # the rule-based priority as stored now (for comparison only)


@dataclass
class PredictiveModelRecord:
    id: int
    version: int
    kind: str
    label: dict[str, Any]
    card: dict[str, Any]
    sha256: str
    data_sha256: str
    active: bool
    created_by: str
    created_at: datetime
    activated_at: datetime | None


class PredictiveRepository(Protocol):
    def feature_rows(
        self,
        *,
        label_stage: str | None,
        snapshot_days: int | None,
        as_of: datetime,
        lead_ids: Sequence[int] | None = None,
        activities: bool = True,
    ) -> list[LeadFeatureRow]:
        """Leads with their fields, properties and activity aggregates as of each lead's snapshot
        (``created_at + snapshot_days``, capped by ``as_of`` and by its first stage change when
        ``label_stage`` is given), or as of ``as_of`` when ``snapshot_days`` is None."""
        ...

    def property_names(self) -> list[str]: ...

    def feature_columns(
        self, *, lead_ids: Sequence[int], names: Sequence[str], as_of: datetime
    ) -> tuple[list[int], dict[str, list[Any]]]:
        """The raw values of the named features for these leads, as ``feature_rows`` would give them with
        ``snapshot_days=None``: the leads' ids in order and one list of values per name."""
        ...

    def add_model(
        self,
        *,
        kind: str,
        label: dict[str, Any],
        card: dict[str, Any],
        artifact: str,
        sha256: str,
        data_sha256: str,
        created_by: str,
        at: datetime,
    ) -> PredictiveModelRecord: ...

    def get_model(self, model_id: int) -> PredictiveModelRecord | None: ...

    def latest_model(self) -> PredictiveModelRecord | None: ...

    def active_model(self) -> PredictiveModelRecord | None: ...

    def all_models(self) -> list[PredictiveModelRecord]:
        """Every stored model, oldest version first."""
        ...

    def artifact(self, model_id: int) -> str: ...

    def activate(self, model_id: int, *, at: datetime) -> None: ...

    def write_scores(
        self, rows: Sequence[tuple[int, float, int]], *, model_id: int, at: datetime
    ) -> None: ...

    def lead_ids_needing_scores(self, model_id: int, limit: int | None = None) -> list[int]: ...

    def lead_score(self, lead_id: int) -> dict[str, Any] | None: ...

    def activity_watermark(self) -> int: ...

    def set_activity_watermark(self, model_id: int, mark: int) -> None: ...

    def all_lead_ids(self) -> list[int]: ...


class PredictiveUnitOfWork(Protocol):
    @property
    def predictive(self) -> PredictiveRepository: ...

    @property
    def audit(self) -> AuditRepository: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def commit(self) -> None: ...


# ---- the web workspace's lists ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ListedLead:
    """A lead as lists and boards show it: identity, state, owner and scores."""

    id: int
    email: str | None
    first_name: str | None
    last_name: str | None
    job_title: str | None
    company: str | None
    stage: str
    status: str
    cycle: int
    owner_id: int | None
    owner: str | None
    priority: str | None
    fit_grade: str | None
    fit_score: float | None
    engagement_level: int | None
    engagement_score: float | None
    predictive_score: float | None
    predictive_decile: int | None
    first_source: str | None
    created_at: datetime
    last_touch_at: datetime | None
    version: int

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or (
            self.email or f"lead {self.id}"
        )


@dataclass(frozen=True)
class ListCursor:
    """Where a keyset page ends: the last lead's id and, in priority order, its priority (None: unscored)."""

    id: int
    priority: str | None = None


class WorkspaceQueries(Protocol):
    def lead_page(
        self,
        flt: Filter | None,
        *,
        as_of: datetime,
        sort: str,
        after: ListCursor | None,
        limit: int,
        scan: bool = False,
    ) -> list[ListedLead]: ...

    def count(self, flt: Filter | None, *, as_of: datetime, cap: int) -> int: ...

    def leads_by_id(self, ids: Sequence[int]) -> list[ListedLead]: ...

    def sources(self, limit: int = 200) -> list[str]: ...

    def activity_values(self, column: str, limit: int = 300) -> list[str]: ...

    def stage_counts(self, flt: Filter | None, *, as_of: datetime) -> dict[str, int]: ...

    def stage_values(self, flt: Filter | None, *, as_of: datetime) -> dict[str, dict[str, float]]: ...
