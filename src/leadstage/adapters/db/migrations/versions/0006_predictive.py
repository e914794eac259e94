"""predictive models and the predictive score beside the rule scores

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "predictive_models",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("label", sa.JSON(), nullable=False),
        sa.Column("card", sa.JSON(), nullable=False),
        sa.Column("artifact", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("data_sha256", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("activated_at", When, nullable=True),
        sa.Column("activity_watermark", Id, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("version", name="uq_predictive_models_version"),
    )
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("predictive_score", sa.Float(), nullable=True))
        batch.add_column(sa.Column("predictive_decile", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("predictive_model_id", Id, nullable=True))
        batch.add_column(sa.Column("predictive_scored_at", When, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("predictive_scored_at")
        batch.drop_column("predictive_model_id")
        batch.drop_column("predictive_decile")
        batch.drop_column("predictive_score")
    op.drop_table("predictive_models")
