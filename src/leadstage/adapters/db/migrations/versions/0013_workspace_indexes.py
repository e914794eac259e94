"""Indexes for the web workspace: lists and boards by stage in priority order, a team's counts read from an
index, and leads by the campaign or content asset of their activities.

Revision ID: 0013
Revises: 0010
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_leads_stage_priority", "leads", ["stage", "priority"])
    # (owner_id, stage, status) covers what (owner_id, stage) did, and a team's counts per stage and status
    op.drop_index("ix_leads_owner_stage", table_name="leads")
    op.create_index("ix_leads_owner_stage_status", "leads", ["owner_id", "stage", "status"])
    for column in ("campaign", "content"):  # only the activities that name one
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(
            f"ix_activities_{column}",
            "activities",
            [column, "lead_id"],
            sqlite_where=where,
            postgresql_where=where,
        )


def downgrade() -> None:
    op.drop_index("ix_activities_content", table_name="activities")
    op.drop_index("ix_activities_campaign", table_name="activities")
    op.drop_index("ix_leads_owner_stage_status", table_name="leads")
    op.create_index("ix_leads_owner_stage", "leads", ["owner_id", "stage"])
    op.drop_index("ix_leads_stage_priority", table_name="leads")
