"""indexes for the reports: leads by creation and furthest stage; history by action and lead

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # cohort funnels and calibration read (created_at, furthest_stage) from the index alone
    op.create_index("ix_leads_created_furthest", "leads", ["created_at", "furthest_stage"])
    # first entries into stages, wins and promotions per lead, in lead order, from the index alone
    op.create_index("ix_lead_history_action_lead", "lead_history", ["action", "lead_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_lead_history_action_lead", table_name="lead_history")
    op.drop_index("ix_leads_created_furthest", table_name="leads")
