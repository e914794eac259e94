"""report facts: stage entries, stage visits and attribution credits kept per lead; touches' index

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)
OUTCOMES = ("mql", "sql", "customer")
MODELS = ("first_touch", "last_touch", "linear", "u_shaped", "w_shaped", "time_decay")
# attribution touches: domain/analytics.py NON_TOUCH_TYPES as of this revision (tables.py: TOUCH_FILTER)
TOUCH_FILTER = (
    "type NOT IN ('call', 'case_study', 'email_bounce', 'email_open', 'email_sent', 'meeting', "
    "'nps_response', 'page_view', 'referral_made', 'review', 'unsubscribe')"
)


def upgrade() -> None:
    # covering indexes for the reports: cohorts already grouped by source (instead of 0007's by creation),
    # calibration by fit, sales decisions with their reasons
    op.drop_index("ix_leads_created_furthest", table_name="leads")
    op.create_index(
        "ix_leads_source_furthest", "leads", ["first_source", "furthest_stage", "created_at", "cycle"]
    )
    op.drop_index("ix_leads_fit_grade_level", table_name="leads")
    op.create_index(
        "ix_leads_fit_grade_level", "leads", ["fit_grade", "engagement_level", "furthest_stage", "created_at"]
    )
    op.drop_index("ix_lead_history_action_lead", table_name="lead_history")
    op.create_index(
        "ix_lead_history_action_lead",
        "lead_history",
        ["action", "lead_id", "at", "from_stage", "from_status", "reason"],
    )
    op.create_index(
        "ix_activities_touches",
        "activities",
        ["lead_id", "occurred_at", "id", "type", "source", "campaign", "content"],
        sqlite_where=sa.text(TOUCH_FILTER),
        postgresql_where=sa.text(TOUCH_FILTER),
    )
    op.create_table(
        "stage_entries",
        sa.Column("lead_id", Id, nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("entered_at", When, nullable=False),
        sa.Column("transitions", sa.Integer(), nullable=False),
        sa.Column("days_in_cycle", sa.Float(), nullable=False),
        sa.Column("first_entry", sa.Boolean(), nullable=False),
        sa.Column("days_since_created", sa.Float(), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("revenue", sa.Float(), nullable=True),
        sa.Column("currency", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name="fk_stage_entries_lead_id_leads", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("lead_id", "cycle", "stage", name="pk_stage_entries"),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_stage_entries_first",
        "stage_entries",
        ["first_entry", "stage", "days_since_created", "created_at"],
    )
    op.create_index(
        "ix_stage_entries_cycle", "stage_entries", ["stage", "days_in_cycle", "created_at", "transitions"]
    )
    op.create_table(
        "stage_visits",
        sa.Column("lead_id", Id, nullable=False),
        sa.Column("history_id", Id, nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("started_at", When, nullable=False),
        sa.Column("ended_at", When, nullable=False),
        sa.Column("days", sa.Float(), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name="fk_stage_visits_lead_id_leads", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("lead_id", "history_id", name="pk_stage_visits"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_stage_visits_stage_days", "stage_visits", ["stage", "days", "created_at", "ended_at"])
    op.create_table(
        "attribution_credits",
        sa.Column("dimension", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=300), nullable=False),
        sa.Column("lead_id", Id, nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("mql_at", When, nullable=False),
        sa.Column("sql_at", When, nullable=True),
        sa.Column("won_at", When, nullable=True),
        sa.Column("revenue", sa.Float(), nullable=True),
        sa.Column("currency", sa.String(length=16), nullable=True),
        *[sa.Column(f"touches_{o}", sa.Integer(), nullable=False) for o in OUTCOMES],
        *[sa.Column(f"{m}_{o}", sa.Float(), nullable=False) for o in OUTCOMES for m in MODELS],
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name="fk_attribution_credits_lead_id_leads", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("dimension", "value", "lead_id", name="pk_attribution_credits"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_attribution_credits_lead", "attribution_credits", ["lead_id"])
    # the facts of the leads already stored, computed by the code that keeps them up to date
    from leadstage.adapters.db import report_facts

    report_facts.rebuild(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_attribution_credits_lead", table_name="attribution_credits")
    op.drop_table("attribution_credits")
    op.drop_index("ix_stage_visits_stage_days", table_name="stage_visits")
    op.drop_table("stage_visits")
    op.drop_index("ix_stage_entries_cycle", table_name="stage_entries")
    op.drop_index("ix_stage_entries_first", table_name="stage_entries")
    op.drop_table("stage_entries")
    op.drop_index("ix_activities_touches", table_name="activities")
    op.drop_index("ix_lead_history_action_lead", table_name="lead_history")
    op.create_index("ix_lead_history_action_lead", "lead_history", ["action", "lead_id", "at"])
    op.drop_index("ix_leads_fit_grade_level", table_name="leads")
    op.create_index("ix_leads_fit_grade_level", "leads", ["fit_grade", "engagement_level"])
    op.drop_index("ix_leads_source_furthest", table_name="leads")
    op.create_index("ix_leads_created_furthest", "leads", ["created_at", "furthest_stage"])
