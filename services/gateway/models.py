"""The gateway's read models, built only from events (its own database)."""

from sqlalchemy import BigInteger, Boolean, Column, Date, DateTime, Index, Integer, String, Table

from shared.consumer import inbox_table
from shared.db import new_metadata
from shared.outbox import outbox_table

metadata = new_metadata()

#: Each result's latest state (highest version seen), one row per result.
rm_results = Table(
    "rm_results",
    metadata,
    Column("result_id", String(36), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("uscc", String(18), nullable=False),
    Column("enterprise_name", String(200), nullable=False),
    Column("agency_code", String(32), nullable=False),
    Column("report_no", String(64), nullable=False),
    Column("level", String(12), nullable=False),
    Column("sector", String(16), nullable=False),
    Column("key_product", Boolean, nullable=False),
    Column("product_category", String(64), nullable=False),
    Column("product_name", String(200), nullable=False),
    Column("district_code", String(6), nullable=False),
    Column("sampling_date", Date, nullable=False),
    Column("report_date", Date, nullable=False),
    Column("conclusion", String(4), nullable=False),
    Column("state", String(12), nullable=False),
    Column("reinspection", String(12)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_rm_results_uscc", "uscc"),
    Index("ix_rm_results_sector_date", "sector", "sampling_date"),
)

#: Running counts per (sector, level, district, year, key product, final), moved by each applied
#: event: pass rates read a few hundred rows, never scan the results.
rm_pass_counts = Table(
    "rm_pass_counts",
    metadata,
    Column("sector", String(16), primary_key=True),
    Column("level", String(12), primary_key=True),
    Column("district_code", String(6), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("key_product", Boolean, primary_key=True),
    Column("final", Boolean, primary_key=True),
    Column("n", BigInteger, nullable=False),
    Column("passed", BigInteger, nullable=False),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
