"""Idempotent consumers: the inbox of processed event ids, written with the effect.

A batch is applied in one unit of work: events already in the inbox are skipped, the others go
to their handlers, their ids go into the inbox, and the transaction commits. Only after that
does the transport acknowledge (commit the Kafka offsets). A crash anywhere before the commit
leaves nothing behind and the batch is delivered again; a duplicate delivery finds its ids in
the inbox and changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from itertools import groupby

import structlog
from sqlalchemy import Column, DateTime, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database, chunks
from shared.events import Envelope
from shared.executemany import insert_rows

log = structlog.get_logger("consumer")

#: A handler gets the session of the consumer's unit of work and a run of events of one type, in order.
Handler = Callable[[AsyncSession, Sequence[Envelope]], Awaitable[None]]


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("event_id", String(36), primary_key=True),
        Column("type", String(120), nullable=False),
        Column("consumer", String(60), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False),
    )


class IdempotentConsumer:
    """Applies batches of events exactly once to one service's database."""

    def __init__(
        self,
        name: str,
        db: Database,
        inbox: Table,
        handlers: Mapping[str, Handler],
        *,
        batch_handler: Handler | None = None,
    ) -> None:
        """`handlers` get runs of one event type, in order. A `batch_handler` instead gets all of a
        batch's new events of the handled types at once, for read models that apply a mixed batch in
        a few set-based statements (one call per run would cost a statement per run)."""
        self.name = name
        self.db = db
        self.inbox = inbox
        self.handlers = dict(handlers)
        self.batch_handler = batch_handler
        self.applied_total = 0
        self.duplicates_total = 0
        self.last_event_time: datetime | None = None
        self.last_applied_at: datetime | None = None

    @property
    def event_types(self) -> list[str]:
        return sorted(self.handlers)

    async def handle_batch(self, envelopes: Sequence[Envelope]) -> None:
        if not envelopes:
            return
        async with self.db.unit_of_work() as uow:
            session = uow.session
            seen: set[str] = set()
            for chunk in chunks(e.id for e in envelopes):
                seen.update(
                    await session.scalars(select(self.inbox.c.event_id).where(self.inbox.c.event_id.in_(chunk)))
                )
            fresh: list[Envelope] = []
            for e in envelopes:
                if e.id in seen:
                    continue
                seen.add(e.id)
                fresh.append(e)
            duplicates = len(envelopes) - len(fresh)
            if self.batch_handler is not None:
                handled = [e for e in fresh if e.type in self.handlers]
                if handled:
                    await self.batch_handler(session, handled)
            else:
                for type_, run in groupby(fresh, key=lambda e: e.type):
                    handler = self.handlers.get(type_)
                    if handler is not None:
                        await handler(session, list(run))
            now = datetime.now(UTC)
            if fresh:
                await insert_rows(
                    session,
                    self.inbox,
                    [{"event_id": e.id, "type": e.type, "consumer": self.name, "processed_at": now} for e in fresh],
                )
            await uow.commit()
        self.applied_total += len(fresh)
        self.duplicates_total += duplicates
        if duplicates:
            log.info("duplicate events skipped", consumer=self.name, count=duplicates)
        self.last_event_time = max(e.time for e in envelopes)
        self.last_applied_at = now
