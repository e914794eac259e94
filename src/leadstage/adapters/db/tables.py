"""The relational schema, as SQLAlchemy Core tables (portable across SQLite and PostgreSQL).

Times are stored in UTC (``UTCDateTime``); custom properties are ``JSON``. Migrations in
``migrations/versions`` must produce exactly this schema: a drift test compares them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator

from leadstage.domain.analytics import NON_TOUCH_TYPES

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

SQLITE_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every database."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: leadstage stores aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def bulk_datetime(value: datetime, dialect_name: str) -> Any:
    """A UTC datetime as a raw DB-API parameter, stored exactly as ``UTCDateTime`` would store it."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    if dialect_name == "sqlite":
        return value.isoformat(" ", "microseconds")[:26]  # == SQLITE_DATETIME_FORMAT, several times faster
    return value


Id = BigInteger().with_variant(Integer(), "sqlite")


def touch_filter(alias: str = "") -> str:
    """Activities that are attribution touches (not a passive impression, sales work, a negative signal
    or an after-sale action: ``domain/analytics.py: NON_TOUCH_TYPES``), as SQL on ``activities``.

    A chain of ``<>`` rather than ``NOT IN (...)``: as the condition of a partial index SQLite evaluates
    it for every inserted row, and a list builds a lookup table each time (about 5 µs a row, a third of an
    import's insert; bench/bench_activity_indexes.py)."""
    column = f"{alias}.type" if alias else "type"
    return " AND ".join(f"{column} <> {name!r}" for name in sorted(NON_TOUCH_TYPES))


#: the condition of ``ix_activities_touches``; queries that read that index write it word for word
TOUCH_FILTER = touch_filter()

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("username", String(120), nullable=False, unique=True),
    Column("role", String(32), nullable=False),
    Column("team", String(120)),
    Column("password_hash", String(255)),
    Column("email", String(320)),  # where notifications go
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(300), nullable=False),
    Column("name_normalized", String(300), nullable=False, index=True),
    Column("domain", String(255), unique=True),
    Column("industry", String(200)),
    Column("employees", Integer),
    Column("annual_revenue", Float),
    Column("country", String(120)),
    Column("owner_id", Id, ForeignKey("users.id", ondelete="SET NULL")),
    Column("properties", JSON, nullable=False, default=dict),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

leads = Table(
    "leads",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("email", String(320)),
    Column("email_normalized", String(320), unique=True),
    Column("email_valid", Boolean),
    Column("phone", String(64)),
    Column("phone_e164", String(32), index=True),
    Column("phone_valid", Boolean),
    Column("first_name", String(200)),
    Column("last_name", String(200)),
    Column("job_title", String(300)),
    Column("company", String(300)),
    Column("account_id", Id, ForeignKey("accounts.id", ondelete="SET NULL"), index=True),
    Column("owner_id", Id, ForeignKey("users.id", ondelete="SET NULL")),
    Column("stage", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("cycle", Integer, nullable=False, default=1),
    Column("furthest_stage", String(20), nullable=False),
    Column("first_source", String(120)),
    Column("latest_source", String(120)),
    Column("first_touch_at", UTCDateTime),
    Column("last_touch_at", UTCDateTime),
    Column("properties", JSON, nullable=False, default=dict),
    Column("fingerprint", String(64), unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False, default=1),
    # scores of the active scoring model; engagement_score is as of scored_at (decay is applied on read)
    Column("fit_score", Float),
    Column("fit_grade", String(1)),
    Column("engagement_score", Float),
    Column("engagement_level", Integer),
    Column("priority", String(4)),
    Column("excluded_by", String(120)),
    Column("scored_at", UTCDateTime),
    Column("engagement_state", JSON),  # per engagement rule: what reading the score as of any time needs
    Column("score_model_id", Id),
    # the active predictive model's calibrated probability of conversion, beside the rule scores
    Column("predictive_score", Float),
    Column("predictive_decile", Integer),
    Column("predictive_model_id", Id),
    Column("predictive_scored_at", UTCDateTime),
    Index("ix_leads_stage_status", "stage", "status"),
    Index("ix_leads_priority", "priority"),
    # segments by grade; calibration by fit from the index alone (ADR 18)
    Index("ix_leads_fit_grade_level", "fit_grade", "engagement_level", "furthest_stage", "created_at"),
    Index("ix_leads_owner_stage_status", "owner_id", "stage", "status"),
    Index("ix_leads_stage_priority", "stage", "priority"),
    Index("ix_leads_created_at", "created_at"),
    # the reports' cohorts (funnels, attempts) from the index alone, already grouped by source (ADR 18)
    Index("ix_leads_source_furthest", "first_source", "furthest_stage", "created_at", "cycle"),
)

lead_external_ids = Table(
    "lead_external_ids",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("lead_id", Id, ForeignKey("leads.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("system", String(120), nullable=False),
    Column("value", String(255), nullable=False),
    UniqueConstraint("system", "value", name="uq_lead_external_ids_system_value"),
    Index("ix_lead_external_ids_value", "value"),
)

activity_types = Table(
    "activity_types",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("builtin", Boolean, nullable=False, default=False),
    Column("description", String(300)),
)

activities = Table(
    "activities",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("lead_id", Id, ForeignKey("leads.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(64), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("source", String(120)),
    Column("campaign", String(200)),
    Column("content", String(300)),
    Column("idempotency_key", String(200), nullable=False),
    Column("properties", JSON),
    # an event is stored once per lead (ADR 22): led by the lead, so an import grouped by lead writes
    # this index where its other lead-led indexes are written, not all over a key-ordered one
    UniqueConstraint("lead_id", "idempotency_key", name="uq_activities_lead_id_idempotency_key"),
    Index("ix_activities_lead_occurred", "lead_id", "occurred_at"),
    # leads by the campaign or content of their activities (the workspace's filters), only rows naming one
    Index(
        "ix_activities_campaign",
        "campaign",
        "lead_id",
        sqlite_where=text("campaign IS NOT NULL"),
        postgresql_where=text("campaign IS NOT NULL"),
    ),
    Index(
        "ix_activities_content",
        "content",
        "lead_id",
        sqlite_where=text("content IS NOT NULL"),
        postgresql_where=text("content IS NOT NULL"),
    ),
    # attribution's touches of a lead in time order, read from the index alone (ADR 18); the condition must
    # stay the text the reports write (adapters/db/reports.py: touch_filter), else SQLite does not use it
    Index(
        "ix_activities_touches",
        "lead_id",
        "occurred_at",
        "id",
        "type",
        "source",
        "campaign",
        "content",
        sqlite_where=text(TOUCH_FILTER),
        postgresql_where=text(TOUCH_FILTER),
    ),
)

lead_history = Table(
    "lead_history",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("lead_id", Id, ForeignKey("leads.id", ondelete="CASCADE"), nullable=False),
    Column("cycle", Integer, nullable=False),
    Column("action", String(40), nullable=False),
    Column("from_stage", String(20)),
    Column("from_status", String(20)),
    Column("to_stage", String(20), nullable=False),
    Column("to_status", String(20), nullable=False),
    Column("actor", String(120), nullable=False),
    Column("reason", String(120)),
    Column("note", Text),
    Column("at", UTCDateTime, nullable=False),
    Column("data", JSON),
    Index("ix_lead_history_lead_at", "lead_id", "at"),
    Index("ix_lead_history_action_at", "action", "at"),
    # first entries, promotions, wins and sales decisions with their reasons, from the index alone
    Index("ix_lead_history_action_lead", "action", "lead_id", "at", "from_stage", "from_status", "reason"),
)

qualification_records = Table(
    "qualification_records",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("lead_id", Id, ForeignKey("leads.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("cycle", Integer, nullable=False),
    Column("framework", String(40), nullable=False),
    Column("criterion", String(40), nullable=False),
    Column("confirmed", Boolean, nullable=False),
    Column("value", JSON),
    Column("evidence", Text),
    Column("recorded_by", String(120), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
)

lead_merges = Table(
    "lead_merges",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("survivor_id", Id, ForeignKey("leads.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("merged_id", Id, nullable=False, unique=True),
    Column("actor", String(120), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("merged_snapshot", JSON, nullable=False),
)

property_definitions = Table(
    "property_definitions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("entity", String(20), nullable=False),
    Column("name", String(300), nullable=False),
    Column("type", String(20), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("entity", "name", name="uq_property_definitions_entity_name"),
)

scoring_models = Table(
    "scoring_models",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("source", Text, nullable=False),
    Column("definition", JSON, nullable=False),
    Column("active", Boolean, nullable=False, default=False),
    Column("created_by", String(120), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("activated_at", UTCDateTime),
    UniqueConstraint("version", name="uq_scoring_models_version"),
)

score_history = Table(
    "score_history",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("lead_id", Id, ForeignKey("leads.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("model_id", Id, nullable=False),
    Column("fit_score", Float),
    Column("fit_grade", String(1)),
    Column("engagement_score", Float),
    Column("engagement_level", Integer),
    Column("priority", String(4)),
    Index("ix_score_history_lead_at", "lead_id", "at"),
)

segments = Table(
    "segments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("filter", Text, nullable=False),
    Column("description", Text),
    Column("created_by", String(120), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("lead_id", Id, ForeignKey("leads.id", ondelete="CASCADE")),
    Column("owner_id", Id, ForeignKey("users.id", ondelete="SET NULL")),
    Column("kind", String(40), nullable=False),
    Column("title", String(500), nullable=False),
    Column("status", String(20), nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("key", String(200), unique=True),  # set for system-made tasks: one task per key, ever
    Column("data", JSON),
    Column("created_by", String(120), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("completed_by", String(120)),
    Column("completed_at", UTCDateTime),
    Index("ix_tasks_owner_status_due", "owner_id", "status", "due_at"),
    Index("ix_tasks_status_due", "status", "due_at"),
    Index("ix_tasks_lead", "lead_id"),
)

disqualifications = Table(
    "disqualifications",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("lead_id", Id, ForeignKey("leads.id", ondelete="CASCADE"), nullable=False),
    Column("cycle", Integer, nullable=False),
    Column("reason", String(120), nullable=False),
    Column("note", Text),
    Column("actor", String(120), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("strategy", JSON, nullable=False),
    Column("nurture", Boolean, nullable=False, default=False),
    Column("recheck_at", UTCDateTime),
    Column("next_follow_up_at", UTCDateTime),
    Column("follow_ups_done", Integer, nullable=False, default=0),
    Column("fit_snapshot", JSON),
    Column("ended_at", UTCDateTime),
    Column("ended_reason", String(40)),
    Index("ix_disqualifications_lead", "lead_id", "at"),
    Index("ix_disqualifications_follow_up", "ended_at", "next_follow_up_at"),
)

identity_tombstones = Table(
    "identity_tombstones",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(20), nullable=False),  # email, phone, external
    Column("digest", String(64), nullable=False),  # HMAC-SHA256 of the identifier, hex
    Column("lead_id", Id, ForeignKey("leads.id", ondelete="SET NULL")),
    Column("stage", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("reason", String(120)),
    Column("disqualified_at", UTCDateTime),
    Column("disqualified_by", String(120)),
    Column("recheck_at", UTCDateTime),
    Column("forgotten_at", UTCDateTime, nullable=False),
    Column("forgotten_by", String(120), nullable=False),
    UniqueConstraint("kind", "digest", name="uq_identity_tombstones_kind_digest"),
)

secrets = Table(
    "secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(255), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(200)),
    Column("token_hash", String(64), nullable=False, unique=True),  # SHA-256 of the token, hex
    Column("prefix", String(16), nullable=False),  # the first characters, to tell tokens apart in lists
    Column("scope", String(10), nullable=False),  # read or write
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(120), nullable=False),
    Column("last_used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
)

capture_forms = Table(
    "capture_forms",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("key", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("source", String(120)),
    Column("redirect_url", String(2000)),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime, nullable=False),
)


# ---- routing and response SLAs (R15, R16): teams and members are linked to users by name (ADR 8) -------

teams = Table(
    "teams",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(120), nullable=False, unique=True),
    Column("manager_id", Id, ForeignKey("users.id", ondelete="SET NULL")),
    Column("timezone", String(64), nullable=False),
    Column("hours", JSON, nullable=False),  # seven lists of [start, end] minutes after local midnight
    Column("holidays", JSON, nullable=False),
    Column("first_response_minutes", Integer, nullable=False),
    Column("daily_capacity", Integer),
    Column("reroute_on_breach", Boolean, nullable=False, default=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

routing_members = Table(
    "routing_members",
    metadata,
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("team", String(120), nullable=False),
    Column("weight", Float, nullable=False),
    Column("max_open", Integer),
    Column("max_per_day", Integer),
    Column("territories", JSON, nullable=False),
    Column("out_of_office_until", Date),
)

routing_documents = Table(
    "routing_documents",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("version", Integer, nullable=False),
    Column("name", String(200), nullable=False),
    Column("source", Text, nullable=False),
    Column("definition", JSON, nullable=False),
    Column("active", Boolean, nullable=False, default=False),
    Column("created_by", String(120), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("version", name="uq_routing_documents_version"),
)

assignments = Table(
    "assignments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("lead_id", Id, ForeignKey("leads.id", ondelete="CASCADE"), nullable=False),
    Column("cycle", Integer, nullable=False),
    Column("team", String(120)),
    Column("user_id", Id, ForeignKey("users.id", ondelete="SET NULL")),
    Column("username", String(120), nullable=False),
    Column("kind", String(20), nullable=False),  # rule, account_owner, sla_reroute, manual
    Column("rule", String(200)),
    Column("reason", Text, nullable=False),
    Column("candidates", JSON, nullable=False),
    Column("actor", String(120), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("current", Boolean, nullable=False),
    Column("counted", Boolean, nullable=False),  # counts towards the team's daily hand-off capacity
    Column("document_version", Integer),
    Column("sla_due_at", UTCDateTime),
    Column("sla_state", String(12)),  # pending, met, breached, closed; null: no SLA
    Column("responded_at", UTCDateTime),
    Column("response_minutes", Float),  # business minutes from assignment to the first sales activity
    Column("breached_at", UTCDateTime),
    Index("ix_assignments_lead_current", "lead_id", "current"),
    Index("ix_assignments_sla_state_due", "sla_state", "sla_due_at"),
    Index("ix_assignments_team_at", "team", "at"),
    Index("ix_assignments_user_at", "user_id", "at"),
)

routing_queue = Table(
    "routing_queue",
    metadata,
    Column("lead_id", Id, ForeignKey("leads.id", ondelete="CASCADE"), primary_key=True),
    Column("team", String(120)),  # null: the unassigned queue (no rule matched)
    Column("rule", String(200)),
    Column("reason", Text, nullable=False),
    Column("position", Integer, nullable=False),  # 1 = handed over next
    Column("priority", String(4)),
    Column("queued_at", UTCDateTime, nullable=False),
    Index("ix_routing_queue_team_position", "team", "position"),
)

locks = Table(
    "locks",
    metadata,
    Column("name", String(60), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("at", UTCDateTime, nullable=False),
)

# One row per lease: which server runs the background loop now, until when (renewed while it lives; ADR 15)
leases = Table(
    "leases",
    metadata,
    Column("name", String(60), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("generation", Integer, nullable=False),  # +1 each time another holder takes it
    Column("acquired_at", UTCDateTime, nullable=False),
    Column("renewed_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)


# ---- webhooks: subscriptions, the outbox, event cursors, signed inbound hooks ------------------------------

webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("url", String(2000), nullable=False),
    Column("secret", String(128), nullable=False),  # used to sign; readable by the server by necessity
    Column("events", JSON, nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_by", String(120), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("subscription_id", Id, ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), nullable=False),
    Column("event_key", String(120), nullable=False),
    Column("event_type", String(60), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(20), nullable=False),  # pending, delivered, failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_status", Integer),
    Column("last_error", String(500)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime),
    UniqueConstraint("subscription_id", "event_key", name="uq_outbox_subscription_event"),
    Index("ix_outbox_status_next", "status", "next_attempt_at"),
)

event_cursors = Table(
    "event_cursors",
    metadata,
    Column("name", String(60), primary_key=True),
    Column("position", String(60), nullable=False),
)

inbound_hooks = Table(
    "inbound_hooks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(120), nullable=False, unique=True),
    Column("secret", String(128), nullable=False),
    Column("source", String(120), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

inbound_events = Table(
    "inbound_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("hook_id", Id, ForeignKey("inbound_hooks.id", ondelete="CASCADE"), nullable=False),
    Column("signature", String(64), nullable=False, unique=True),  # a replayed delivery is refused
    Column("received_at", UTCDateTime, nullable=False),
)

mail_outbox = Table(
    "mail_outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("key", String(120), nullable=False, unique=True),  # one mail per event, however often offered
    Column("to_addr", String(320), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(20), nullable=False),  # pending, sent, failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", String(500)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Index("ix_mail_outbox_status_next", "status", "next_attempt_at"),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # SHA-256 of the session id (the cookie signs the id)
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("client", String(64)),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("status", String(20), nullable=False),  # queued, running, done, failed
    Column("params", JSON, nullable=False),
    Column("result", JSON),
    Column("error", Text),
    Column("created_by", String(120), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("runner", String(200)),  # the server running it: its jobs are interrupted only once it is gone
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(120), nullable=False),
    Column("action", String(60), nullable=False),
    Column("target", String(300)),
    Column("client", String(64)),  # where from: an address, or "cli"
    Column("details", JSON),
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_actor_at", "actor", "at"),
)

predictive_models = Table(
    "predictive_models",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("version", Integer, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("label", JSON, nullable=False),
    Column("card", JSON, nullable=False),  # the model card: data window, features, exclusions, quality
    Column("artifact", Text, nullable=False),  # JSON model document (never a pickle)
    Column("sha256", String(64), nullable=False),  # of the artifact: a changed artifact is refused on load
    Column("data_sha256", String(64), nullable=False),  # of the training data
    Column("active", Boolean, nullable=False, default=False),
    Column("created_by", String(120), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("activated_at", UTCDateTime),
    Column("activity_watermark", Id),  # the newest activity id its last scoring run had seen
    UniqueConstraint("version", name="uq_predictive_models_version"),
)


# ---- report facts (ADR 18): derived from lead_history and activities, kept up to date by
# adapters/db/report_facts.py in the transaction of every write that changes what they derive from.

#: Per lead, cycle and stage after ``lead``: the forward transitions into the stage in that cycle.
stage_entries = Table(
    "stage_entries",
    metadata,
    Column("lead_id", Id, ForeignKey("leads.id", ondelete="CASCADE"), nullable=False),
    Column("cycle", Integer, nullable=False),
    Column("stage", String(20), nullable=False),
    Column("entered_at", UTCDateTime, nullable=False),  # the first forward transition into it in this cycle
    Column("transitions", Integer, nullable=False),  # forward transitions into it in this cycle
    Column("days_in_cycle", Float, nullable=False),  # days from the cycle's start to entered_at
    Column("first_entry", Boolean, nullable=False),  # the lead's first entry into the stage, over all cycles
    Column("days_since_created", Float, nullable=False),  # days from the lead's creation to entered_at
    Column("created_at", UTCDateTime, nullable=False),  # the lead's
    Column("revenue", Float),  # closed amounts of this cycle's wins
    Column("currency", String(16)),
    PrimaryKeyConstraint("lead_id", "cycle", "stage"),
    Index("ix_stage_entries_first", "first_entry", "stage", "days_since_created", "created_at"),
    Index("ix_stage_entries_cycle", "stage", "days_in_cycle", "created_at", "transitions"),
    sqlite_with_rowid=False,
)

#: Completed stage visits of promoted leads: from the history row that brought the lead into a stage to
#: the next row that took it to another stage.
stage_visits = Table(
    "stage_visits",
    metadata,
    Column("lead_id", Id, ForeignKey("leads.id", ondelete="CASCADE"), nullable=False),
    Column("history_id", Id, nullable=False),  # the row that began the visit
    Column("stage", String(20), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=False),
    Column("days", Float, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),  # the lead's
    PrimaryKeyConstraint("lead_id", "history_id"),
    Index("ix_stage_visits_stage_days", "stage", "days", "created_at", "ended_at"),
    sqlite_with_rowid=False,
)

#: Per converted lead and value of a touch dimension: what each attribution model credits the value with,
#: for the lead's first MQL, SQL and win (time decay at the default half-life).
ATTRIBUTION_OUTCOMES = ("mql", "sql", "customer")
ATTRIBUTION_MODELS = ("first_touch", "last_touch", "linear", "u_shaped", "w_shaped", "time_decay")
attribution_credits = Table(
    "attribution_credits",
    metadata,
    Column("dimension", String(16), nullable=False),  # source, campaign or content
    Column("value", String(300), nullable=False),
    Column("lead_id", Id, ForeignKey("leads.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),  # the lead's
    Column("mql_at", UTCDateTime, nullable=False),  # the lead's outcomes
    Column("sql_at", UTCDateTime),
    Column("won_at", UTCDateTime),
    Column("revenue", Float),
    Column("currency", String(16)),
    *[Column(f"touches_{o}", Integer, nullable=False) for o in ATTRIBUTION_OUTCOMES],
    *[Column(f"{m}_{o}", Float, nullable=False) for o in ATTRIBUTION_OUTCOMES for m in ATTRIBUTION_MODELS],
    PrimaryKeyConstraint("dimension", "value", "lead_id"),
    Index("ix_attribution_credits_lead", "lead_id"),
    sqlite_with_rowid=False,
)

#: Activities stored whose follow-ups (incremental scoring, attribution credits) have not run yet: the API's
#: batches leave them to the server's follow-up loop and ``tick`` (ADR 21); one row per activity, removed
#: in the transaction that runs them (and with the activity).
activity_backlog = Table(
    "activity_backlog",
    metadata,
    Column("activity_id", Id, ForeignKey("activities.id", ondelete="CASCADE"), primary_key=True),
)
