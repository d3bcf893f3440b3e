"""The credit service's tables (its own database)."""

from sqlalchemy import (
    JSON,
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

from shared import columns
from shared.audit import audit_table
from shared.consumer import inbox_table
from shared.db import new_metadata
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
    columns.uscc(),
    columns.enterprise_name(),
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
    columns.updated_at(),
    Index("ix_credit_records_uscc", "uscc"),
)

#: The current rating per enterprise (as of the last change), to publish a change only when it changes.
ratings = Table(
    "ratings",
    metadata,
    columns.uscc(primary_key=True),
    Column("rating", String(1), nullable=False),
    Column("score", Float, nullable=False),
    Column("rule_set_version", String(40), nullable=False),
    Column("as_of", Date, nullable=False),
    columns.updated_at(),
)

blacklist_entries = Table(
    "blacklist_entries",
    metadata,
    columns.uuid7("entry_id", primary_key=True),
    columns.version(),
    columns.uscc(),
    columns.enterprise_name(),
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
    columns.subject("proposed_by"),
    columns.timestamp("proposed_at"),
    columns.subject("decided_by", nullable=True),
    columns.timestamp("decided_at", nullable=True),
    Column("decision_comment", Text),
    Column("listed_on", Date),
    Column("publish_until", Date),
    Column("earliest_repair_on", Date),
    Column("repair_status", String(10)),  # null | applied | rejected
    columns.subject("repair_applied_by", nullable=True),
    columns.timestamp("repair_applied_at", nullable=True),
    Column("repair_statement", Text),
    Column("repair_evidence", JSON),
    Column("removed_on", Date),
    Column("removal_reason", String(10)),
    columns.subject("removed_by", nullable=True),
    Column("removal_decision_no", String(100)),
    columns.updated_at(),
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
    columns.serial(),
    columns.uuid7("entry_id"),
    columns.uscc(),
    columns.version(),
    Column("action", String(20), nullable=False),
    Column("status", String(10), nullable=False),
    columns.subject("actor"),
    columns.timestamp("at"),
    Column("reason", Text),
    Column("document_no", String(100)),
    columns.request_id(nullable=True),
    Column("details", JSON),
    Index("ix_entry_history_entry", "entry_id", "id"),
    Index("ix_entry_history_uscc", "uscc"),
)
