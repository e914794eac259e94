"""leases (one server runs the background loop; each server's own, for its jobs), the server running a
job, and signed sessions (the CSRF token is a signature, not a stored column)

Sessions from before carry unsigned cookies, which are refused now (ADR 15): their rows are removed, and
their users log in once more.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("acquired_at", When, nullable=False),
        sa.Column("renewed_at", When, nullable=False),
        sa.Column("expires_at", When, nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.execute("DELETE FROM web_sessions")
    with op.batch_alter_table("web_sessions") as batch:
        batch.drop_column("csrf")
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("runner", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("runner")
    op.execute("DELETE FROM web_sessions")
    with op.batch_alter_table("web_sessions") as batch:
        batch.add_column(sa.Column("csrf", sa.String(length=64), nullable=False))
    op.drop_table("leases")
