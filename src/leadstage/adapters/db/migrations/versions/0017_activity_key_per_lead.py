"""activities: an idempotency key is unique per lead, (lead_id, idempotency_key), not across all leads (ADR 22)

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-23

On SQLite a table's UNIQUE constraint cannot be dropped, so ``activities`` is rebuilt (SQLite's documented
procedure: new table, copy, drop, rename; every row is copied and every index built again, so it takes a
while on a large database). ``activity_backlog`` refers to it: its entries are kept aside, the table is
dropped first and made again afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = ("uq_activities_idempotency_key", ["idempotency_key"])
NEW = ("uq_activities_lead_id_idempotency_key", ["lead_id", "idempotency_key"])
# activities' indexes as of this revision (0013: campaign, content; 0014 and 0016: touches)
TOUCHES = (
    "type <> 'call' AND type <> 'case_study' AND type <> 'email_bounce' AND type <> 'email_open' "
    "AND type <> 'email_sent' AND type <> 'meeting' AND type <> 'nps_response' AND type <> 'page_view' "
    "AND type <> 'referral_made' AND type <> 'review' AND type <> 'unsubscribe'"
)
INDEXES = (
    "CREATE INDEX ix_activities_lead_occurred ON activities (lead_id, occurred_at)",
    "CREATE INDEX ix_activities_campaign ON activities (campaign, lead_id) WHERE campaign IS NOT NULL",
    "CREATE INDEX ix_activities_content ON activities (content, lead_id) WHERE content IS NOT NULL",
    "CREATE INDEX ix_activities_touches ON activities "
    f"(lead_id, occurred_at, id, type, source, campaign, content) WHERE {TOUCHES}",
)
COLUMNS = "id, lead_id, type, occurred_at, source, campaign, content, idempotency_key, properties"


def _rebuild_sqlite(unique: tuple[str, list[str]]) -> None:
    name, columns = unique
    # the backlog refers to activities: set aside and dropped first, so that dropping the old table is a
    # plain drop (no cascade, no row-by-row delete through its indexes), then made again as 0015 made it
    op.execute("CREATE TEMP TABLE keep_activity_backlog AS SELECT activity_id FROM activity_backlog")
    op.execute("DROP TABLE activity_backlog")
    op.execute(
        "CREATE TABLE activities_new ("
        "id INTEGER NOT NULL, lead_id INTEGER NOT NULL, type VARCHAR(64) NOT NULL, "
        "occurred_at DATETIME NOT NULL, source VARCHAR(120), campaign VARCHAR(200), content VARCHAR(300), "
        "idempotency_key VARCHAR(200) NOT NULL, properties JSON, "
        "CONSTRAINT pk_activities PRIMARY KEY (id), "
        "CONSTRAINT fk_activities_lead_id_leads FOREIGN KEY(lead_id) REFERENCES leads (id) ON DELETE CASCADE, "
        f"CONSTRAINT {name} UNIQUE ({', '.join(columns)}))"
    )
    op.execute(f"INSERT INTO activities_new ({COLUMNS}) SELECT {COLUMNS} FROM activities ORDER BY id")
    op.execute("DROP TABLE activities")
    op.execute("ALTER TABLE activities_new RENAME TO activities")
    for statement in INDEXES:
        op.execute(statement)
    op.execute(
        "CREATE TABLE activity_backlog (activity_id INTEGER NOT NULL, "
        "CONSTRAINT pk_activity_backlog PRIMARY KEY (activity_id), "
        "CONSTRAINT fk_activity_backlog_activity_id_activities FOREIGN KEY(activity_id) "
        "REFERENCES activities (id) ON DELETE CASCADE)"
    )
    op.execute("INSERT INTO activity_backlog (activity_id) SELECT activity_id FROM keep_activity_backlog")
    op.execute("DROP TABLE keep_activity_backlog")


def _switch(old: tuple[str, list[str]], new: tuple[str, list[str]]) -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(new)
        return
    op.drop_constraint(old[0], "activities", type_="unique")
    op.create_unique_constraint(new[0], "activities", new[1])


def upgrade() -> None:
    # keys unique across all leads are unique per lead: nothing to check before the switch
    _switch(OLD, NEW)


def downgrade() -> None:
    # the same key on two leads (stored since the upgrade) cannot go back under one global key
    bind = op.get_bind()
    twice = bind.execute(
        sa.text(
            "SELECT count(*) FROM (SELECT 1 FROM activities GROUP BY idempotency_key HAVING count(*) > 1) d"
        )
    ).scalar_one()
    if twice:
        raise RuntimeError(
            f"{twice} idempotency keys are held by more than one lead; a global unique key cannot hold them"
        )
    _switch(NEW, OLD)
