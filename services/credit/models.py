"""The credit service's tables (its own database)."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from shared.audit import audit_table
from shared.consumer import inbox_table
from shared.db import UtcDateTime, new_metadata
from shared.idempotency import idempotency_table
from shared.outbox import outbox_table
from shared.quarantine import quarantine_table
from shared.ratelimit import rate_limit_table

metadata = new_metadata()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
audit_log = audit_table(metadata)
quarantined_events = quarantine_table(metadata)
idempotency_keys = idempotency_table(metadata)
rate_limits = rate_limit_table(metadata)

#: Credit records: each sampling result or enterprise honour, at its latest version, as it counts for credit.
records = Table(
    "credit_records",
    metadata,
    Column("record_id", String(80), primary_key=True),  # "sampling:<result_id>" / "honour:<honour_id>"
    Column("uscc", String(18), nullable=False),
    Column("enterprise_name", String(200), nullable=False),
    Column("source", String(16), nullable=False),
    Column("source_id", String(64), nullable=False),
    Column("source_version", Integer, nullable=False),
    Column("kind", String(10), nullable=False),  # negative | positive | neutral
    Column("category", String(60)),
    Column("level", String(16)),
    Column("sector", String(16)),
    Column("title", String(200), nullable=False),
    Column("fact_date", Date, nullable=False),
    Column("valid_until", Date),
    Column("state", String(16), nullable=False),
    Column("note", String(200), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_credit_records_uscc", "uscc"),
)

#: The current rating per enterprise (as of the last change), to publish a change only when it changes.
ratings = Table(
    "ratings",
    metadata,
    Column("uscc", String(18), primary_key=True),
    Column("rating", String(1), nullable=False),
    Column("score", Float, nullable=False),
    Column("rule_set_version", String(40), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

blacklist_entries = Table(
    "blacklist_entries",
    metadata,
    Column("entry_id", String(36), primary_key=True),  # UUIDv7: sorts by creation, so it is the cursor key
    Column("version", Integer, nullable=False),  # the ETag; transitions are UPDATE … WHERE version = :v
    Column("uscc", String(18), nullable=False),
    Column("enterprise_name", String(200), nullable=False),
    Column("reason_category", String(60), nullable=False),
    Column("facts", Text, nullable=False),
    Column("legal_basis", String(400), nullable=False),
    Column("deciding_authority", String(200), nullable=False),
    Column("decision_no", String(100)),
    Column("appeal_route", String(400)),
    Column("appeal_deadline", Date),
    Column("publication_years", Integer, nullable=False),
    Column("rule_set_version", String(40), nullable=False),
    Column("status", String(10), nullable=False),
    Column("automatic", Boolean, nullable=False),
    Column("trigger_records", JSON),  # for automatic proposals: the fails that reached the threshold
    Column("proposed_by", String(128), nullable=False),
    Column("proposed_at", UtcDateTime(), nullable=False),
    Column("decided_by", String(128)),
    Column("decided_at", UtcDateTime()),
    Column("decision_comment", Text),
    Column("listed_on", Date),
    Column("publish_until", Date),
    Column("earliest_repair_on", Date),
    Column("repair_status", String(10)),  # null | applied | rejected
    Column("repair_applied_by", String(128)),
    Column("repair_applied_at", UtcDateTime()),
    Column("repair_statement", Text),
    Column("repair_evidence", JSON),
    Column("removed_on", Date),
    Column("removal_reason", String(10)),
    Column("removed_by", String(128)),
    Column("removal_decision_no", String(100)),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_blacklist_entries_uscc_listed", "uscc", "listed_on"),
    Index("ix_blacklist_entries_status_listed", "status", "listed_on"),
)
# One open (pending or listed) entry per enterprise, enforced by the database so two officers, or an
# officer and the automatic proposal, racing for the same enterprise cannot both open one.
Index(
    "uq_blacklist_entries_open_uscc",
    blacklist_entries.c.uscc,
    unique=True,
    postgresql_where=blacklist_entries.c.status.in_(("proposed", "listed")),
    sqlite_where=blacklist_entries.c.status.in_(("proposed", "listed")),
)

#: Every transition of every entry: who, when, why, and the decision document number.
entry_history = Table(
    "entry_history",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("entry_id", String(36), nullable=False),
    Column("uscc", String(18), nullable=False),
    Column("version", Integer, nullable=False),
    Column("action", String(20), nullable=False),
    Column("status", String(10), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("reason", Text),
    Column("document_no", String(100)),
    Column("request_id", String(128)),
    Column("details", JSON),
    Index("ix_entry_history_entry", "entry_id", "id"),
    Index("ix_entry_history_uscc", "uscc"),
)
