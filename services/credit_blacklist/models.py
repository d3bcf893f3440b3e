"""The credit service's tables (its own database)."""

from shared.consumer import inbox_table
from shared.db import new_metadata
from shared.outbox import outbox_table

metadata = new_metadata()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
