"""Ports: the interfaces the services need from the outside world.

Adapters implement them (``adapters/db`` for storage, ``adapters/files`` for reading and writing
files, ``adapters/identity`` for email and phone checks); unit tests can use fakes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, NamedTuple, Protocol, Self

from leadstage.domain.activities import Activity
from leadstage.domain.leads import Account, Lead, PropertyType
from leadstage.domain.scoring import ActivityGroup, GroupPlan
from leadstage.domain.segments import Filter, Segment
from leadstage.domain.stages import HistoryEntry, TransitionOutcome


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


@dataclass(frozen=True)
class UserRecord:
    id: int
    username: str
    role: str
    team: str | None
    active: bool
    password_hash: str | None = None


class LeadRepository(Protocol):
    def get(self, lead_id: int) -> Lead | None: ...

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


class UserRepository(Protocol):
    def get_by_username(self, username: str) -> UserRecord | None: ...

    def get(self, user_id: int) -> UserRecord | None: ...

    def add(
        self, *, username: str, role: str, team: str | None, password_hash: str | None, at: datetime
    ) -> int: ...

    def all(self) -> list[UserRecord]: ...


class ActivityRepository(Protocol):
    def add(self, activity: Activity) -> bool:
        """Store the activity unless its idempotency key is known; True when it was new."""
        ...

    def for_lead(self, lead_id: int, limit: int = 200) -> list[Activity]: ...

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

    def insert_activities(self, rows: Sequence[ActivityRow]) -> int:
        """Insert, skipping known idempotency keys; return how many were new."""
        ...

    def insert_new_activities(self, rows: Sequence[ActivityRow]) -> list[ActivityRow]:
        """Insert, skipping known keys; return the rows that were new."""
        ...

    def touch_leads(self, touches: Mapping[int, tuple[str, str | None, str, str | None]]) -> None:
        """Widen each lead's first/last touch with (first_at, first_source, last_at, last_source) (UTC text)."""
        ...

    def insert_history(self, rows: Sequence[tuple[int, HistoryEntry]]) -> None: ...


class ExportQueries(Protocol):
    def lead_property_names(self) -> list[str]: ...

    def pages(self, kind: str, page_size: int = 5_000) -> Iterator[list[dict[str, Any]]]: ...


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

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...  # pragma: no cover


# ---- files -------------------------------------------------------------------------------------------


@dataclass
class RecordBatch:
    """Rows read from a file, column by column: text cells (or typed values from typed formats)."""

    columns: dict[str, list[Any]]
    length: int
    first_row_number: int  # 1-based number of the first row among the file's data rows
    bytes_read: int = 0  # bytes of the file consumed so far (for progress)

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
    ) -> Iterator[tuple[int, str, float, str | None, str | None, str | None, str | None]]:
        """(lead_id, type, unix seconds, source, campaign, content, properties JSON), by lead then time."""
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

    def count(self, flt: Filter, *, as_of: datetime) -> int: ...

    def lead_ids(
        self, flt: Filter, *, as_of: datetime, limit: int | None = None, offset: int = 0
    ) -> list[int]: ...

    def search(self, flt: Filter, leads: LeadFilter, *, as_of: datetime) -> tuple[int, list[Lead]]:
        """Members that also pass ``leads`` (stage, status, owner, page): (total, the page)."""
        ...
