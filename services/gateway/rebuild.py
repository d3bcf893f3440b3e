"""Rebuild every read model from the event log, in one transaction.

The read models are emptied and refilled by the same appliers the consumer uses, inside one
transaction: readers keep seeing the old answers until the commit (SQLite WAL, PostgreSQL MVCC)
and a failed rebuild leaves them as they were.

The log: in distributed mode the services' Kafka topics, read from offset 0 (the change feed is
rebuilt too); in embedded mode the gateway's own change feed, which holds every applied event's
whole envelope (the services keep their outboxes in their own databases, which are theirs).
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.gateway import repository
from services.gateway.consumers import APPLIERS, apply_all, apply_batch
from shared.clock import as_utc
from shared.consumer import decode
from shared.db import Database
from shared.events import Envelope, from_kafka

log = structlog.get_logger("gateway.rebuild")


async def rebuild_from_feed(db: Database, batch: int = 5000) -> int:
    """Replay the change feed (seq order) into emptied read models; returns the events replayed (the
    services' events; the gateway's warnings stay in the feed as they are)."""
    count = 0
    async with db.unit_of_work() as uow:
        await repository.clear_read_models(uow.session, feed=False)
        after = 0
        while True:
            rows = await repository.changes(uow.session, after, None, batch)
            if not rows:
                break
            events = [
                Envelope(
                    id=r["event_id"],
                    type=r["type"],
                    source=r["source"],
                    subject=r["subject"],
                    time=as_utc(r["time"]),
                    data=orjson.loads(r["data"]),
                )
                for r in rows
            ]
            # The feed also holds the gateway's own warnings (docs/warnings.md): kept, not replayed.
            replayed = decode(events, APPLIERS, "gateway.rebuild")
            await apply_all(uow.session, replayed)
            after = rows[-1]["seq"]
            count += len(replayed)
        await uow.commit()
    log.info("read models rebuilt from the change feed", events=count)
    return count


async def _partitions(bootstrap: str, topics: Sequence[str]) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    return [
        TopicPartition(t["topic"], p["partition"])
        for t in described
        if not t.get("error_code")
        for p in sorted(t["partitions"], key=lambda p: p["partition"])
    ]


async def rebuild_from_kafka(db: Database, bootstrap: str, topics: Sequence[str], batch: int = 5000) -> int:
    """Read every topic from offset 0 to its current end and replay into emptied read models and feed.

    Each aggregate's events share a partition key, so they come in order; counters are sums, so the
    interleaving of partitions does not change any answer.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    count = 0
    try:
        parts = await _partitions(bootstrap, topics)
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        remaining = {tp for tp in parts if ends[tp] > 0}
        async with db.unit_of_work() as uow:
            await repository.clear_read_models(uow.session, feed=True)
            while remaining:
                polled = await consumer.getmany(*remaining, timeout_ms=1000, max_records=batch)
                events: list[Envelope] = []
                for tp, messages in polled.items():
                    for m in messages:
                        if m.offset < ends[tp]:
                            events.append(from_kafka(m.key, m.value, m.headers))
                    if messages and messages[-1].offset + 1 >= ends[tp]:
                        remaining.discard(tp)
                if events:
                    await apply_batch(uow.session, decode(events, APPLIERS, "gateway.rebuild"))
                    # A batch event counts as the results it carries, as the change feed holds them.
                    count += len(events) + sum(len(e.expanded) - 1 for e in events if e.expanded)
            await uow.commit()
    finally:
        await consumer.stop()
    log.info("read models rebuilt from Kafka", events=count, topics=list(topics))
    return count
