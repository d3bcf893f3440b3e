"""idempotency keys

Revision ID: idempotency_keys_0001
Revises:
Create Date: 2026-12-01 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.migrations import adopting

revision: str = "idempotency_keys_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("idempotency_keys",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if adopting("idempotency_keys"):
        return
    op.create_table(
        "idempotency_keys",
        sa.Column("principal", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("principal", "key", name=op.f("pk_idempotency_keys")),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
