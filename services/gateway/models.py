"""The gateway's read models, built only from events (its own database)."""

from sqlalchemy import BigInteger, Column, DateTime, Index, String, Table

from shared.consumer import inbox_table
from shared.db import new_metadata
from shared.outbox import outbox_table

metadata = new_metadata()

#: Each result's latest state, one row per result: pass rates count each result once.
rm_results = Table(
    "rm_results",
    metadata,
    Column("result_id", String(36), primary_key=True),
    Column("uscc", String(18), nullable=False),
    Column("agency_code", String(32), nullable=False),
    Column("sector", String(16), nullable=False),
    Column("conclusion", String(8), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Index("ix_rm_results_sector", "sector"),
    Index("ix_rm_results_uscc", "uscc"),
)

#: Running counts per sector, moved by each applied event: a pass rate is one row read, not a scan.
rm_pass_counts = Table(
    "rm_pass_counts",
    metadata,
    Column("sector", String(16), primary_key=True),
    Column("n", BigInteger, nullable=False),
    Column("passed", BigInteger, nullable=False),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
