"""warning workflow: acknowledged and closed (who, when, note), a version for If-Match, and a condition
that may raise again after its warning is closed (one not-closed warning per condition)

Revision ID: 17001f9079c7
Revises: 1e258b1cb697
Create Date: 2026-12-01 19:04:30.983960
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import UtcDateTime

revision: str = "17001f9079c7"
down_revision: str | None = "1e258b1cb697"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOT_CLOSED = sa.text("state != 'closed'")


def upgrade() -> None:
    with op.batch_alter_table("ew_warnings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("occurrence", sa.Integer(), server_default="1", nullable=False))
        # Every warning raised so far is at its first version (open).
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("acknowledged_by", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("acknowledged_at", UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("acknowledged_note", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("closed_by", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("closed_at", UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("closed_note", sa.Text(), nullable=True))
        batch_op.drop_constraint(batch_op.f("uq_ew_warnings_dedup_key"), type_="unique")
        batch_op.create_index(
            "uq_ew_warnings_not_closed",
            ["dedup_key"],
            unique=True,
            sqlite_where=NOT_CLOSED,
            postgresql_where=NOT_CLOSED,
        )
        batch_op.create_index("uq_ew_warnings_occurrence", ["dedup_key", "occurrence"], unique=True)
    with op.batch_alter_table("ew_warnings", schema=None) as batch_op:
        batch_op.alter_column("version", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("ew_warnings", schema=None) as batch_op:
        batch_op.drop_index("uq_ew_warnings_occurrence")
        batch_op.drop_index("uq_ew_warnings_not_closed", sqlite_where=NOT_CLOSED, postgresql_where=NOT_CLOSED)
        batch_op.create_unique_constraint(batch_op.f("uq_ew_warnings_dedup_key"), ["dedup_key"])
        for column in (
            "closed_note",
            "closed_at",
            "closed_by",
            "acknowledged_note",
            "acknowledged_at",
            "acknowledged_by",
            "version",
            "occurrence",
        ):
            batch_op.drop_column(column)
