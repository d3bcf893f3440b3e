"""authority records, due process, enterprise register

Records from other authorities (every version kept), the due-process dates and statement of a
blacklist entry, the sending authority on a credit record; an enterprise in its statement period
(noticed, in_review) has an open entry like a pending or listed one; the register of enterprise names
that names without a USCC are matched against.

Revision ID: c3fe7e671fff
Revises: 11ffe707d3c7
Create Date: 2026-12-01 16:35:34.278811
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c3fe7e671fff"
down_revision: str | None = "11ffe707d3c7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_BEFORE = sa.text("status IN ('proposed', 'listed')")
OPEN_NOW = sa.text("status IN ('proposed', 'noticed', 'in_review', 'listed')")


def upgrade() -> None:
    op.create_table(
        "enterprises",
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("uscc", name=op.f("pk_enterprises")),
    )
    op.create_table(
        "authority_record_versions",
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("record_id", "version", name=op.f("pk_authority_record_versions")),
    )
    op.create_table(
        "authority_records",
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("authority", sa.String(length=128), nullable=False),
        sa.Column("record_no", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("enterprise_name", sa.String(length=200), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_authority_records")),
        sa.UniqueConstraint("authority", "record_no", name="uq_authority_records_authority_record_no"),
    )
    with op.batch_alter_table("authority_records", schema=None) as batch_op:
        batch_op.create_index("ix_authority_records_uscc", ["uscc"], unique=False)

    with op.batch_alter_table("blacklist_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("noticed_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("statement_deadline", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("statement", sa.JSON(), nullable=True))
        batch_op.drop_index("uq_blacklist_entries_open_uscc")
        batch_op.create_index(
            "uq_blacklist_entries_open_uscc",
            ["uscc"],
            unique=True,
            postgresql_where=OPEN_NOW,
            sqlite_where=OPEN_NOW,
        )

    with op.batch_alter_table("credit_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("authority", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("credit_records", schema=None) as batch_op:
        batch_op.drop_column("authority")

    with op.batch_alter_table("blacklist_entries", schema=None) as batch_op:
        batch_op.drop_index("uq_blacklist_entries_open_uscc")
        batch_op.create_index(
            "uq_blacklist_entries_open_uscc",
            ["uscc"],
            unique=True,
            postgresql_where=OPEN_BEFORE,
            sqlite_where=OPEN_BEFORE,
        )
        batch_op.drop_column("statement")
        batch_op.drop_column("statement_deadline")
        batch_op.drop_column("noticed_on")

    with op.batch_alter_table("authority_records", schema=None) as batch_op:
        batch_op.drop_index("ix_authority_records_uscc")

    op.drop_table("authority_records")
    op.drop_table("authority_record_versions")
    op.drop_table("enterprises")
