"""The sampling service's tables (its own database)."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from shared.audit import audit_table
from shared.consumer import inbox_table
from shared.db import UtcDateTime, new_metadata
from shared.idempotency import idempotency_table
from shared.outbox import outbox_table

metadata = new_metadata()

#: Each result as it stands now; earlier versions live in `result_versions`.
results = Table(
    "results",
    metadata,
    Column("id", String(36), primary_key=True),  # UUIDv7: sorts by creation
    Column("version", Integer, nullable=False),
    Column("agency_code", String(32), nullable=False),
    Column("report_no", String(64), nullable=False),
    Column("level", String(12), nullable=False),
    Column("sector", String(16), nullable=False),
    Column("key_product", Boolean, nullable=False),
    Column("product_category", String(64), nullable=False),
    Column("product_name", String(200), nullable=False),
    Column("brand", String(64)),
    Column("model_spec", String(64)),
    Column("batch_no", String(64)),
    Column("production_date", Date),
    Column("uscc", String(18), nullable=False),
    Column("enterprise_name", String(200), nullable=False),
    Column("district_code", String(6), nullable=False),
    Column("sampled_unit", String(200)),
    Column("sampling_date", Date, nullable=False),
    Column("report_date", Date, nullable=False),
    Column("conclusion", String(4), nullable=False),
    Column("original_conclusion", String(4), nullable=False),
    Column("state", String(12), nullable=False),
    Column("objection_deadline", Date),
    Column("reinspection", String(12)),
    Column("nonconforming_items", Text, nullable=False),  # JSON array
    Column("recorded_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("recorded_by", String(128), nullable=False),
    UniqueConstraint("agency_code", "report_no"),
    Index("ix_results_uscc", "uscc"),
    Index("ix_results_sampling_date", "sampling_date"),
    Index("ix_results_state_deadline", "state", "objection_deadline"),
)

#: Every earlier version of a result, written when it changes (history = these + the current row).
result_versions = Table(
    "result_versions",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("result_id", String(36), nullable=False),
    Column("version", Integer, nullable=False),
    Column("change", String(12), nullable=False),  # what made this version
    Column("reason", String(200)),
    Column("actor", String(128), nullable=False),
    # The agency of whoever made this version: the owner, or another agency recording a re-inspection.
    Column("agency", String(32)),
    Column("at", UtcDateTime(), nullable=False),
    Column("snapshot", Text, nullable=False),  # JSON of the result at that version
    UniqueConstraint("result_id", "version"),
)

#: What each agency sent: the data-quality scorecard counts rejected rows, conflicts and duplicates from it.
ingest_log = Table(
    "ingest_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("agency_code", String(32), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("received", Integer, nullable=False),
    Column("created", Integer, nullable=False),
    Column("duplicates", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    # A re-sent report number whose content differs: not a bad row, an agency-side mix-up, so counted apart.
    Column("conflicts", Integer, nullable=False, server_default="0"),
    Index("ix_ingest_log_agency", "agency_code"),
)

idempotency_keys = idempotency_table(metadata)
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
audit_log = audit_table(metadata)
