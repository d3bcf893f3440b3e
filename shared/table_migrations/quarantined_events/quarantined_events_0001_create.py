"""quarantined_events: events set aside so their partition moves on (shared/quarantine.py)

Revision ID: quarantined_events_0001
Revises:
Create Date: 2026-12-01 14:18:12.700014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "quarantined_events_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("quarantined_events",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "quarantined_events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("consumer", sa.String(length=60), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=120), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("kafka_topic", sa.String(length=200), nullable=True),
        sa.Column("kafka_partition", sa.Integer(), nullable=True),
        sa.Column("kafka_offset", sa.BigInteger(), nullable=True),
        sa.Column("envelope", sa.JSON(), nullable=True),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("error_class", sa.String(length=200), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("acted_by", sa.String(length=120), nullable=True),
        sa.Column("acted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantined_events")),
    )
    with op.batch_alter_table("quarantined_events", schema=None) as batch_op:
        batch_op.create_index("ix_quarantined_events_event_id", ["event_id"], unique=False)
        batch_op.create_index("ix_quarantined_events_state_id", ["state", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("quarantined_events", schema=None) as batch_op:
        batch_op.drop_index("ix_quarantined_events_state_id")
        batch_op.drop_index("ix_quarantined_events_event_id")

    op.drop_table("quarantined_events")
