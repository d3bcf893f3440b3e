"""Transactional outbox: events written in the caller's transaction, published by a relay.

The outbox rows are kept after publication: they are the service's event log, from which any
read model can be rebuilt. The relay publishes in id order (commit order for one writer), waits
for the broker's acknowledgement of the whole batch, then marks the rows published. A crash
between the two republishes the batch; consumers drop the duplicates by event id.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
import structlog
from sqlalchemy import (
    Column,
    Index,
    MetaData,
    String,
    Table,
    Text,
    func,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from shared import columns
from shared.clock import as_utc
from shared.db import Database
from shared.events import Envelope
from shared.executemany import insert_rows
from shared.supervisor import Supervisor
from shared.tasks import BackgroundLoop

log = structlog.get_logger("outbox")


def envelope_columns(seq: str) -> list[Column[Any]]:
    """A stored event: a sequence number named `seq`, then the envelope's fields (the outbox, the change feed)."""
    return [
        columns.serial(seq),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("type", String(120), nullable=False),
        Column("source", String(120), nullable=False),
        Column("subject", String(64), nullable=False),
        columns.timestamp("time"),
        Column("data", Text, nullable=False),
    ]


def outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        *envelope_columns("id"),
        columns.timestamp("published_at", nullable=True),
        Index(
            "ix_outbox_unpublished",
            "id",
            postgresql_where=text("published_at IS NULL"),
            sqlite_where=text("published_at IS NULL"),
        ),
        Index("ix_outbox_subject", "subject"),
    )


def outbox_rows(envelopes: Sequence[Envelope]) -> list[dict[str, Any]]:
    return [
        {
            "event_id": e.id,
            "type": e.type,
            "source": e.source,
            "subject": e.subject,
            "time": e.time,
            "data": orjson.dumps(e.data).decode(),
        }
        for e in envelopes
    ]


async def add_to_outbox(session: AsyncSession, table: Table, envelopes: Sequence[Envelope]) -> None:
    """Add events in the session's transaction, as one executemany (never row by row)."""
    if envelopes:
        await insert_rows(session, table, outbox_rows(envelopes))


class Publisher(Protocol):
    async def publish(self, topic: str, batch: Sequence[tuple[Envelope, bytes]]) -> None:
        """Deliver the batch, in order; return only once every event is acknowledged."""


@dataclass(eq=False)
class OutboxRelay(BackgroundLoop):
    """Publishes a service's unpublished outbox rows to its topic, oldest first."""

    db: Database
    table: Table
    publisher: Publisher
    topic: str
    _: KW_ONLY
    batch_size: int = 2000
    #: A batch also stops at this much payload (≈ 2,800 results in batch events, about what 2,000 single
    #: events were): one outbox row may carry hundreds of results, and in embedded mode each publish runs
    #: every consumer on the requests' event loop (a long run there keeps their transactions waiting).
    max_batch_bytes: int = 2_000_000
    interval_s: float = 0.2
    lock_key: int = 0
    coalesce_s: float = 0.02
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)
    published_total: int = field(default=0, init=False)

    def notify(self) -> None:
        """Called after a commit that added events, so they leave without waiting for the poll."""
        self._wake.set()

    async def publish_pending(self) -> int:
        """Publish every unpublished row now; returns how many were published."""
        total = 0
        while True:
            published, more = await self._publish_one_batch()
            total += published
            if not more:
                return total

    async def _publish_one_batch(self) -> tuple[int, bool]:
        """Publish one batch: (events published, whether more may be waiting)."""
        if self.db.is_sqlite:
            # One process runs one relay per service file here: no lock to take.
            return await self._read_publish_mark()
        # One relay per service publishes at a time, so replicas cannot reorder a key's events. The
        # lock is a session lock on a connection outside any transaction: it spans read, publish and
        # mark without holding a transaction (and its snapshot, and a pooled connection "idle in
        # transaction") open while the broker is away.
        async with self.db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            if not await conn.scalar(select(func.pg_try_advisory_lock(self.lock_key))):
                return 0, False
            try:
                return await self._read_publish_mark()
            finally:
                try:
                    await conn.scalar(select(func.pg_advisory_unlock(self.lock_key)))
                except Exception:
                    # The lock dies with its session: never return a connection that may hold it.
                    await conn.invalidate()
                    raise

    async def _read_publish_mark(self) -> tuple[int, bool]:
        """Read a batch in one short transaction, publish it with none open, mark it in another.

        A write transaction held across the publish would also keep, on SQLite, the service's own
        requests waiting for the single write lock (in embedded mode the publish runs every
        subscriber's consumer). Rows are marked only after the broker acknowledged them; a crash
        in between republishes the batch and consumers drop the duplicates by event id.
        """
        async with self.db.reader() as uow:
            rows, more = await self._read_batch(uow.session)
        if not rows:
            return 0, False
        await self.publisher.publish(self.topic, self._batch(rows))
        async with self.db.unit_of_work() as uow:
            await self._mark_published(uow.session, [r.id for r in rows])
            await uow.commit()
        self.published_total += len(rows)
        return len(rows), more

    async def backlog(self) -> int:
        """How many events wait to be published."""
        t = self.table
        async with self.db.reader() as uow:
            return int(await uow.session.scalar(select(func.count()).where(t.c.published_at.is_(None))) or 0)

    async def _read_batch(self, session: AsyncSession) -> tuple[list[Any], bool]:
        """Up to `batch_size` rows and about `max_batch_bytes` of payload, oldest first, and whether more
        may wait. Read in pages that double from 16 rows: a backlog of batch events (hundreds of kB
        each) is not read 2,000 rows at a time only to be cut, and single events take a few pages."""
        t = self.table
        query = select(t.c.id, t.c.event_id, t.c.type, t.c.source, t.c.subject, t.c.time, t.c.data).where(
            t.c.published_at.is_(None)
        )
        rows: list[Any] = []
        size, page = 0, 16
        while len(rows) < self.batch_size:
            limit = min(page, self.batch_size - len(rows))
            after = query.where(t.c.id > rows[-1].id) if rows else query
            got = list((await session.execute(after.order_by(t.c.id).limit(limit))).all())
            for r in got:
                if size and size + len(r.data) > self.max_batch_bytes:
                    return rows, True
                size += len(r.data)
                rows.append(r)
            if len(got) < limit:
                return rows, False
            page *= 2
        return rows, True

    @staticmethod
    def _batch(rows: list[Any]) -> list[tuple[Envelope, bytes]]:
        return [
            (
                Envelope(id=r.event_id, type=r.type, source=r.source, subject=r.subject, time=as_utc(r.time), data={}),
                r.data.encode(),
            )
            for r in rows
        ]

    async def _mark_published(self, session: AsyncSession, ids: list[int]) -> None:
        t = self.table
        now = datetime.now(UTC)
        if self.db.is_sqlite:
            # One writer: no lower id can commit after this batch was read, so the range is exact (and cheap).
            await session.execute(
                update(t)
                .where(t.c.id >= ids[0], t.c.id <= ids[-1], t.c.published_at.is_(None))
                .values(published_at=now)
            )
        else:
            # Exact ids, not a range: on PostgreSQL a lower id may commit after this batch was read.
            await session.execute(update(t).where(t.c.id.in_(ids)).values(published_at=now))

    async def run(self) -> None:
        # Between rounds the relay sleeps until a commit wakes it (`notify`) or `interval_s` passes:
        # the poll is only for rows another process wrote, so an idle relay costs nothing. After a
        # failure it retries sooner, from 0.5 s doubling to 10 s, whatever the poll interval.
        retry_s = 0.25
        failing_since: float | None = None
        while True:
            wait_s = self.interval_s
            try:
                published = await self.publish_pending()
                if failing_since is not None:
                    log.warning(
                        "event publishing recovered",
                        topic=self.topic,
                        outage_s=round(time.monotonic() - failing_since, 1),
                        published=published,
                    )
                    failing_since = None
                retry_s = 0.25
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker is down or the database busy: keep the rows, retry
                retry_s = min(retry_s * 2, 10.0)
                wait_s = min(wait_s, retry_s)
                if failing_since is None:
                    # Said once per outage, not at every retry; recovery is logged too.
                    failing_since = time.monotonic()
                    log.warning(
                        "event publishing stopped; retrying until it works",
                        topic=self.topic,
                        error=repr(exc),
                        backlog=await self._backlog_or_none(),
                    )
            try:
                # asyncio.timeout, not wait_for: in Python 3.11 wait_for swallows a cancel that comes as
                # the event is set (gh-86296), and the relay then outlived its service's shutdown.
                async with asyncio.timeout(wait_s):
                    await self._wake.wait()
                # Let the commits of concurrent requests gather into one batch: each batch has a
                # fixed cost (read, publish, mark, and every consumer's transaction).
                await asyncio.sleep(self.coalesce_s)
            except TimeoutError:
                pass
            self._wake.clear()

    async def _backlog_or_none(self) -> int | None:
        try:
            return await self.backlog()
        except Exception:  # the database may be the one that is down
            return None

    @property
    def task_name(self) -> str:
        return f"outbox-relay:{self.topic}"

    def start(self, supervisor: Supervisor | None = None) -> None:
        """Run the relay in the background, under `supervisor` when given (restarted if it ends)."""
        self.start_loop(supervisor)

    async def stop(self) -> None:
        await self.stop_loop()
