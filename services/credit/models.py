"""The credit service's tables (its own database)."""

from sqlalchemy import JSON, Boolean, Column, Date, Float, Index, Integer, String, Table, Text, UniqueConstraint

from services.credit.domain import OPEN_STATUSES
from shared import columns
from shared.platform_tables import service_metadata

metadata, (outbox, inbox, audit_log, quarantined_events, idempotency_keys, rate_limits) = service_metadata()

#: Credit records: each sampling result or enterprise honour, at its latest version, as it counts for credit.
records = Table(
    "credit_records",
    metadata,
    Column("record_id", String(80), primary_key=True),  # "sampling:<result_id>" / "honour:<honour_id>"
    *columns.enterprise(),
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
    Column("authority", String(128)),  # the sending authority system, for records from other authorities
    columns.updated_at(),
    Index("ix_credit_records_uscc", "uscc"),
)

#: Records sent by other authorities (POST /v1/credit-records) at their current version; one per
#: authority and its own record number (the idempotency key of a resend).
authority_records = Table(
    "authority_records",
    metadata,
    columns.uuid7("record_id", primary_key=True),
    columns.subject("authority"),  # the token's agency: the sending system
    Column("record_no", String(100), nullable=False),  # the authority's own id of the record
    columns.version(),  # the ETag; corrections are UPDATE … WHERE version = :v
    Column("status", String(10), nullable=False),  # active | withdrawn
    Column("kind", String(32), nullable=False),
    *columns.enterprise(),
    Column("occurred_on", Date, nullable=False),
    Column("body", JSON, nullable=False),  # the record as sent (its current version)
    columns.timestamp("created_at"),
    columns.updated_at(),
    UniqueConstraint("authority", "record_no", name="uq_authority_records_authority_record_no"),
    Index("ix_authority_records_uscc", "uscc"),
)

#: Every version of every authority record: recorded, each correction, the withdrawal.
authority_record_versions = Table(
    "authority_record_versions",
    metadata,
    columns.uuid7("record_id", primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("action", String(10), nullable=False),  # recorded | corrected | withdrawn
    Column("status", String(10), nullable=False),
    Column("body", JSON, nullable=False),
    Column("reason", Text),
    columns.subject("actor"),
    columns.timestamp("at"),
    columns.request_id(nullable=True),
)

#: Every enterprise the service has heard of (sampling results, honours, records, proposals), by its latest
#: name: what `POST /v1/enterprises:match` and a record sent without a USCC are matched against.
enterprises = Table(
    "enterprises",
    metadata,
    *columns.enterprise_register(),
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
    *columns.aggregate("entry_id"),
    *columns.enterprise(),
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
    Column("noticed_on", Date),  # due process: the day the enterprise was told (告知)
    Column("statement_deadline", Date),  # …and the last working day for its statement
    Column("statement", JSON),  # its statement or hearing request (陈述申辩): kind, received_on, text, by
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
# One open (pending, in its statement period or listed) entry per enterprise, enforced by the database so
# two officers, or an officer and the automatic proposal, racing for the same enterprise cannot both open one.
Index(
    "uq_blacklist_entries_open_uscc",
    blacklist_entries.c.uscc,
    unique=True,
    postgresql_where=blacklist_entries.c.status.in_(OPEN_STATUSES),
    sqlite_where=blacklist_entries.c.status.in_(OPEN_STATUSES),
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
