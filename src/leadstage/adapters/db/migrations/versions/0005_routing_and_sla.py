"""routing and response SLAs: teams, members, routing documents, assignments, queue, locks

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Stamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("manager_id", Id, nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("hours", sa.JSON(), nullable=False),
        sa.Column("holidays", sa.JSON(), nullable=False),
        sa.Column("first_response_minutes", sa.Integer(), nullable=False),
        sa.Column("daily_capacity", sa.Integer(), nullable=True),
        sa.Column("reroute_on_breach", sa.Boolean(), nullable=False),
        sa.Column("updated_at", Stamp, nullable=False),
        sa.ForeignKeyConstraint(["manager_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "routing_members",
        sa.Column("user_id", Id, nullable=False),
        sa.Column("team", sa.String(length=120), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("max_open", sa.Integer(), nullable=True),
        sa.Column("max_per_day", sa.Integer(), nullable=True),
        sa.Column("territories", sa.JSON(), nullable=False),
        sa.Column("out_of_office_until", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "routing_documents",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("version", name="uq_routing_documents_version"),
    )
    op.create_table(
        "assignments",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("lead_id", Id, nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("team", sa.String(length=120), nullable=True),
        sa.Column("user_id", Id, nullable=True),
        sa.Column("username", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("rule", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("candidates", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("at", Stamp, nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.Column("counted", sa.Boolean(), nullable=False),
        sa.Column("document_version", sa.Integer(), nullable=True),
        sa.Column("sla_due_at", Stamp, nullable=True),
        sa.Column("sla_state", sa.String(length=12), nullable=True),
        sa.Column("responded_at", Stamp, nullable=True),
        sa.Column("response_minutes", sa.Float(), nullable=True),
        sa.Column("breached_at", Stamp, nullable=True),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_assignments_lead_current", "assignments", ["lead_id", "current"], unique=False)
    op.create_index("ix_assignments_sla_state_due", "assignments", ["sla_state", "sla_due_at"], unique=False)
    op.create_index("ix_assignments_team_at", "assignments", ["team", "at"], unique=False)
    op.create_index("ix_assignments_user_at", "assignments", ["user_id", "at"], unique=False)
    op.create_table(
        "routing_queue",
        sa.Column("lead_id", Id, nullable=False),
        sa.Column("team", sa.String(length=120), nullable=True),
        sa.Column("rule", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("priority", sa.String(length=4), nullable=True),
        sa.Column("queued_at", Stamp, nullable=False),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("lead_id"),
    )
    op.create_index("ix_routing_queue_team_position", "routing_queue", ["team", "position"], unique=False)
    op.create_table(
        "locks",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("at", Stamp, nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("locks")
    op.drop_index("ix_routing_queue_team_position", table_name="routing_queue")
    op.drop_table("routing_queue")
    op.drop_index("ix_assignments_user_at", table_name="assignments")
    op.drop_index("ix_assignments_team_at", table_name="assignments")
    op.drop_index("ix_assignments_sla_state_due", table_name="assignments")
    op.drop_index("ix_assignments_lead_current", table_name="assignments")
    op.drop_table("assignments")
    op.drop_table("routing_documents")
    op.drop_table("routing_members")
    op.drop_table("teams")
