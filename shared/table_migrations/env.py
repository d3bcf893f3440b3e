"""The shared tables on their own, as `shared/` defines them: the target when authoring their revisions
(`python -m shared.makemigration outbox "..."`). Services migrate them through their own environment."""

from shared.audit import audit_table
from shared.consumer import inbox_table
from shared.db import new_metadata
from shared.idempotency import idempotency_table
from shared.migrations import run_env
from shared.outbox import outbox_table
from shared.quarantine import quarantine_table
from shared.ratelimit import rate_limit_table

metadata = new_metadata()
outbox_table(metadata)
inbox_table(metadata)
idempotency_table(metadata)
rate_limit_table(metadata)
quarantine_table(metadata)
audit_table(metadata)

run_env(metadata)
