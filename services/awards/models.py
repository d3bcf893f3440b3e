"""The awards service's tables (its own database)."""

from sqlalchemy import Column, Date, Index, String, Table, Text, UniqueConstraint

from shared import columns
from shared.platform_tables import service_metadata

metadata, (outbox, inbox, audit_log, quarantined_events, idempotency_keys, rate_limits) = service_metadata()

#: One row per honour, in its current state; the outbox holds every change as an event.
honours = Table(
    "honours",
    metadata,
    *columns.aggregate("honour_id"),
    Column("type_code", String(16), nullable=False),
    *columns.honour_holder(name_length=300),
    Column("subject", Text, nullable=True),  # JSON of domain.Subject
    Column("granted_on", Date, nullable=False),
    Column("valid_until", Date, nullable=True),
    Column("state", String(16), nullable=False),
    Column("certificate_no", String(100), nullable=False),
    Column("granting_authority", String(200), nullable=False),
    Column("revoked_on", Date, nullable=True),
    Column("revoke_reason", Text, nullable=True),
    Column("source", String(16), nullable=False),  # api | import
    columns.subject("granted_by"),
    columns.timestamp("created_at"),
    columns.updated_at(),
    # The certificate number is the registry's natural key within a type.
    UniqueConstraint("type_code", "certificate_no", name="uq_honours_type_certificate"),
    Index("ix_honours_holder", "holder_id"),
    Index("ix_honours_type_granted", "type_code", "granted_on"),
    Index("ix_honours_state_valid", "state", "valid_until"),
)

#: Each honour suspended by each blacklist listing: closed when the listing is removed. An honour
#: stays suspended while any of its rows is open; the dates drive "active on date D".
suspensions = Table(
    "suspensions",
    metadata,
    columns.uuid7("honour_id", primary_key=True),
    Column("entry_id", String(64), primary_key=True),
    Column("suspended_on", Date, nullable=False),
    Column("reinstated_on", Date, nullable=True),
    Index("ix_suspensions_entry", "entry_id"),
)

#: Blacklist listings learned from credit events (never by calling the credit service).
listings = Table(
    "listings",
    metadata,
    Column("entry_id", String(64), primary_key=True),
    columns.version(),
    columns.uscc(),
    columns.enterprise_name(300),
    Column("decision_no", String(120), nullable=True),
    Column("listed_on", Date, nullable=False),
    Column("publish_until", Date, nullable=True),
    Column("removed_on", Date, nullable=True),
    Column("removal_reason", String(20), nullable=True),
    Index("ix_listings_uscc", "uscc"),
)
