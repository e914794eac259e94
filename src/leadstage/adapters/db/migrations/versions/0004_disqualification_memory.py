"""disqualification strategies, identity tombstones, per-database secrets

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "disqualifications",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("lead_id", Id, nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=120), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("at", When, nullable=False),
        sa.Column("strategy", sa.JSON(), nullable=False),
        sa.Column("nurture", sa.Boolean(), nullable=False),
        sa.Column("recheck_at", When, nullable=True),
        sa.Column("next_follow_up_at", When, nullable=True),
        sa.Column("follow_ups_done", sa.Integer(), nullable=False),
        sa.Column("fit_snapshot", sa.JSON(), nullable=True),
        sa.Column("ended_at", When, nullable=True),
        sa.Column("ended_reason", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_disqualifications_lead", "disqualifications", ["lead_id", "at"], unique=False)
    op.create_index(
        "ix_disqualifications_follow_up", "disqualifications", ["ended_at", "next_follow_up_at"], unique=False
    )
    op.create_table(
        "identity_tombstones",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("lead_id", Id, nullable=True),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=120), nullable=True),
        sa.Column("disqualified_at", When, nullable=True),
        sa.Column("disqualified_by", sa.String(length=120), nullable=True),
        sa.Column("recheck_at", When, nullable=True),
        sa.Column("forgotten_at", When, nullable=False),
        sa.Column("forgotten_by", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "digest", name="uq_identity_tombstones_kind_digest"),
    )
    op.create_table(
        "secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("secrets")
    op.drop_table("identity_tombstones")
    op.drop_index("ix_disqualifications_follow_up", table_name="disqualifications")
    op.drop_index("ix_disqualifications_lead", table_name="disqualifications")
    op.drop_table("disqualifications")
