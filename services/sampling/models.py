"""The sampling service's tables (its own database)."""

from sqlalchemy import Boolean, Column, DateTime, Index, String, Table, UniqueConstraint

from shared.consumer import inbox_table
from shared.db import new_metadata
from shared.outbox import outbox_table

metadata = new_metadata()

results = Table(
    "results",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("agency_code", String(32), nullable=False),
    Column("report_no", String(64), nullable=False),
    Column("uscc", String(18), nullable=False),
    Column("sector", String(16), nullable=False),
    Column("conclusion", String(8), nullable=False),
    Column("retracted", Boolean, nullable=False, default=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("recorded_by", String(128), nullable=False),
    UniqueConstraint("agency_code", "report_no"),
    Index("ix_results_uscc", "uscc"),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
