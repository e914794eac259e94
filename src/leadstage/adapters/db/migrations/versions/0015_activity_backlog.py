"""activity backlog: activities whose scoring and attribution credits run after the request (ADR 21)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "activity_backlog",
        sa.Column("activity_id", Id, nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities.id"],
            name="fk_activity_backlog_activity_id_activities",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("activity_id", name="pk_activity_backlog"),
    )


def downgrade() -> None:
    op.drop_table("activity_backlog")
