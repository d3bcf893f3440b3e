"""The platform's tables, kept in every service's database beside the service's own.

One call makes the whole set, so every service has the same one and a table added here reaches all of
them; each table's migrations live once in `shared/table_migrations/<table>/`, applied to every service
whose metadata defines it (shared/migrations.py).
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import MetaData, Table

from shared.audit import audit_table
from shared.consumer import inbox_table
from shared.db import new_metadata
from shared.idempotency import idempotency_table
from shared.outbox import outbox_table
from shared.quarantine import quarantine_table
from shared.ratelimit import rate_limit_table


class PlatformTables(NamedTuple):
    outbox: Table  # events waiting for the relay (shared/outbox.py)
    inbox: Table  # event ids already applied (shared/consumer.py)
    audit_log: Table  # who changed what (shared/audit.py)
    quarantined_events: Table  # events that can never apply (shared/quarantine.py)
    idempotency_keys: Table  # answers replayed for a repeated Idempotency-Key (shared/idempotency.py)
    rate_limits: Table  # per-client budgets of the public routes (shared/ratelimit.py)


def platform_tables(metadata: MetaData) -> PlatformTables:
    return PlatformTables(
        outbox_table(metadata),
        inbox_table(metadata),
        audit_table(metadata),
        quarantine_table(metadata),
        idempotency_table(metadata),
        rate_limit_table(metadata),
    )


def service_metadata() -> tuple[MetaData, PlatformTables]:
    """A service's metadata (the naming convention of shared/db.py) holding the platform's tables already:
    the first line of every service's models.py."""
    metadata = new_metadata()
    return metadata, platform_tables(metadata)
