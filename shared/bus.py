"""The event bus behind one interface, with two transports.

- `InProcessBus` (embedded mode): the outbox relay's publish calls each subscriber's idempotent
  consumer directly and returns only when all of them committed, so a crash at any point leaves
  the rows unpublished in the outbox and they are delivered again.
- `KafkaBus` (distributed mode): aiokafka with an idempotent producer (acks=all) and consumer
  groups that commit offsets by hand, after the consumer's transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from shared.events import Envelope, KafkaOrigin, from_kafka_record, to_kafka
from shared.supervisor import Supervisor
from shared.tasks import BackgroundLoop

log = structlog.get_logger("bus")

BatchHandler = Callable[[Sequence[Envelope]], Awaitable[None]]


class Subscription(Protocol):
    async def start(self, supervisor: Supervisor | None = None) -> None:
        """Start consuming; a transport that runs a background task runs it under `supervisor`."""

    async def stop(self) -> None: ...


class Bus(Protocol):
    #: Whether every subscriber gets a service's whole outbox as one stream, in outbox order. Only
    #: then may one event stand for many aggregates (a batch): over Kafka an aggregate's events must
    #: share its key's partition, or two consumers could apply one aggregate at once.
    in_outbox_order: bool

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def ping(self) -> None: ...
    async def publish(self, topic: str, batch: Sequence[tuple[Envelope, bytes]]) -> None: ...
    def subscription(self, group: str, topics: Sequence[str], handler: BatchHandler) -> Subscription: ...


def _with_data(batch: Sequence[tuple[Envelope, bytes]]) -> list[Envelope]:
    return [
        Envelope(id=e.id, type=e.type, source=e.source, subject=e.subject, time=e.time, data=orjson.loads(raw))
        for e, raw in batch
    ]


class _InProcessSubscription:
    def __init__(self, bus: InProcessBus, group: str, topics: Sequence[str], handler: BatchHandler) -> None:
        self.bus = bus
        self.group = group
        self.topics = list(topics)
        self.handler = handler

    async def start(self, supervisor: Supervisor | None = None) -> None:
        # No task of its own: the relay's publish calls the handler (its task is the one supervised).
        self.bus._subscriptions.append(self)

    async def stop(self) -> None:
        if self in self.bus._subscriptions:
            self.bus._subscriptions.remove(self)


class InProcessBus:
    """Delivery inside one process, still fed from each service's outbox (embedded mode)."""

    in_outbox_order = True

    def __init__(self) -> None:
        self._subscriptions: list[_InProcessSubscription] = []
        # Subscribers write to their own SQLite files; one delivery at a time keeps one writer each.
        self._lock = asyncio.Lock()
        # Nothing is delivered before every subscriber of the process is registered: a relay that
        # published into an empty bus would mark rows published that nobody applied.
        self._open = asyncio.Event()

    async def start(self) -> None:
        """Open delivery; the embedded suite calls it once all services have subscribed."""
        self._open.set()

    async def stop(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def publish(self, topic: str, batch: Sequence[tuple[Envelope, bytes]]) -> None:
        await self._open.wait()
        envelopes = _with_data(batch)
        async with self._lock:
            for sub in list(self._subscriptions):
                if topic in sub.topics:
                    await sub.handler(envelopes)

    def subscription(self, group: str, topics: Sequence[str], handler: BatchHandler) -> Subscription:
        return _InProcessSubscription(self, group, topics, handler)


async def ensure_topics(bootstrap: str, topics: Sequence[str], partitions: int) -> None:
    """Create the topics if missing; several services may race to do it, which is fine."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [NewTopic(name=t, num_partitions=partitions, replication_factor=1) for t in missing]
                )
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: KafkaSubscription) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        # aiokafka rebalances in its own task, possibly while a batch is being applied; that batch's
        # offset commit then fails and the new owner redelivers it (see `_commit`).
        log.info("partitions revoked", group=self.runner.group, partitions=[str(tp) for tp in revoked])

    async def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("partitions assigned", group=self.runner.group, partitions=[str(tp) for tp in assigned])
        self.runner.assigned.set()


class KafkaSubscription(BackgroundLoop):
    """A consumer-group member: poll, apply in one transaction, then commit the offsets.

    Each run of the task builds its own consumer: a run that ended for any reason leaves the group
    and the next one resumes from the committed offsets, so nothing polled but not applied is lost.
    """

    def __init__(
        self, bootstrap: str, group: str, topics: Sequence[str], handler: BatchHandler, *, max_records: int = 2000
    ) -> None:
        self.bootstrap = bootstrap
        self.group = group
        self.topics = list(topics)
        self.handler = handler
        self.max_records = max_records
        self.assigned = asyncio.Event()
        self.commits_skipped = 0

    @property
    def task_name(self) -> str:
        return f"consumer:{self.group}"

    async def start(self, supervisor: Supervisor | None = None) -> None:
        self.start_loop(supervisor)

    async def stop(self) -> None:
        await self.stop_loop()

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        consumer.subscribe(self.topics, listener=_Rebalance(self))
        await consumer.start()
        try:
            await self._consume(consumer)
        finally:
            await consumer.stop()

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        backoff = 0.2
        while True:
            polled = await consumer.getmany(timeout_ms=500, max_records=self.max_records)
            if not polled:
                continue
            # A record that is not a CloudEvent comes as a stand-in for the consumer to quarantine.
            envelopes = [
                from_kafka_record(tp.topic, tp.partition, m.offset, m.key, m.value, m.headers)
                for tp, messages in polled.items()
                for m in messages
            ]
            try:
                await self.handler(envelopes)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Nothing was committed: rewind to the first message of each partition and retry.
                log.error("consumer batch failed; will retry", group=self.group, error=repr(exc), retry_in=backoff)
                assignment = consumer.assignment()
                for tp, messages in polled.items():
                    if tp in assignment:  # a revoked partition restarts at its committed offset anyway
                        consumer.seek(tp, messages[0].offset)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = 0.2
            await self._commit(consumer, {tp: messages[-1].offset + 1 for tp, messages in polled.items()})

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[Any, int]) -> None:
        """Commit the applied batch's offsets, tolerating a rebalance that happened meanwhile.

        The batch's effects and its event ids (the inbox) are already committed in the database, so
        an offset that cannot be committed only means the partition's next owner (this member or
        another) redelivers the batch and the inbox skips it. aiokafka raises `IllegalStateError`
        for a partition no longer assigned and `CommitFailedError` when the group's generation
        changed; neither may end the consumer.
        """
        assignment = consumer.assignment()
        owned = {tp: offset for tp, offset in offsets.items() if tp in assignment}
        if len(owned) < len(offsets):
            self.commits_skipped += 1
            log.info(
                "partitions moved while a batch was applied; their redelivery will be skipped",
                group=self.group,
                partitions=[str(tp) for tp in offsets if tp not in owned],
            )
        if not owned:
            return
        try:
            await consumer.commit(owned)
        except KafkaError as exc:
            self.commits_skipped += 1
            log.warning(
                "offset commit failed after the batch was applied; its redelivery will be skipped",
                group=self.group,
                error=repr(exc),
            )


class KafkaBus:
    """Publishing with an idempotent producer, and consumer groups, on a real Kafka cluster."""

    in_outbox_order = False

    def __init__(
        self,
        bootstrap: str,
        *,
        topics: Sequence[str] = (),
        partitions: int = 6,
        publish_timeout_s: float = 30.0,
    ) -> None:
        self.bootstrap = bootstrap
        self.topics = list(topics)
        self.partitions = partitions
        self.publish_timeout_s = publish_timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._dlq_topics: set[str] = set()
        self._started = False
        self._renewing = asyncio.Lock()
        self.producers_renewed = 0

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            enable_idempotence=True,  # forces acks=all and keeps each partition's order across retries
            linger_ms=5,
            max_batch_size=1024 * 1024,
            request_timeout_ms=15000,
        )

    async def start(self) -> None:
        if self.topics:
            await ensure_topics(self.bootstrap, self.topics, self.partitions)
        self._producer = self._new_producer()
        await self._producer.start()
        self._started = True

    async def stop(self) -> None:
        self._started = False
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def _current_producer(self) -> AIOKafkaProducer:
        if not self._started:
            raise RuntimeError("producer not started")
        if self._producer is None:  # a renewal failed while the broker was away: try again now
            await self._renew_producer(None, RuntimeError("no producer since a failed renewal"))
        assert self._producer is not None
        return self._producer

    async def _renew_producer(self, failed: AIOKafkaProducer | None, reason: BaseException) -> None:
        """Replace the producer after a failed or hung publish.

        An idempotent aiokafka producer never expires a batch: while the broker is away a publish
        waits, and when the broker lost the producer's state (a restart, `OutOfOrderSequenceNumber`)
        its sender task dies and every later send fails. Neither heals by itself, so the relay's
        retry gets a fresh producer (a new producer id). Republishing the batch is safe: the rows
        are marked only after an acknowledgement and consumers drop duplicates by event id.
        """
        async with self._renewing:
            if self._producer is not failed:
                return  # another caller renewed it meanwhile
            await self._replace_producer(reason)

    async def _replace_producer(self, reason: BaseException) -> None:
        old, self._producer = self._producer, None
        if old is not None:
            # Said once per failed producer; the retries while the broker stays away are the relay's to log.
            self.producers_renewed += 1
            log.warning("kafka producer replaced after a failed publish", error=repr(reason))
            try:
                # stop() flushes what is pending: with the broker away it would wait for ever.
                async with asyncio.timeout(5):
                    await old.stop()
            except Exception as exc:  # the old producer is dropped whatever it says
                log.info("old kafka producer did not stop cleanly", error=repr(exc))
        producer = self._new_producer()
        try:
            await producer.start()
        except BaseException:
            # Broker still away: the next publish tries again.
            await producer.stop()
            raise
        self._producer = producer

    async def ping(self) -> None:
        producer = await self._current_producer()
        async with asyncio.timeout(3):
            await producer.client.fetch_all_metadata()

    async def publish(self, topic: str, batch: Sequence[tuple[Envelope, bytes]]) -> None:
        """Return only when the broker acknowledged every record (acks=all), within `publish_timeout_s`."""
        producer = await self._current_producer()
        try:
            # asyncio.timeout, not wait_for: in Python 3.11 wait_for swallows a cancel that comes as the
            # sends complete (gh-86296), and the relay then outlived its service's shutdown.
            async with asyncio.timeout(self.publish_timeout_s):
                await self._send_all(producer, topic, batch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._renew_producer(producer, exc)
            raise

    @staticmethod
    async def _send_all(producer: AIOKafkaProducer, topic: str, batch: Sequence[tuple[Envelope, bytes]]) -> None:
        futures = []
        for envelope, raw in batch:
            record = to_kafka(envelope, raw)
            futures.append(await producer.send(topic, record.value, key=record.key, headers=record.headers))
        await asyncio.gather(*futures)

    async def dead_letter(self, origin: KafkaOrigin, headers: Sequence[tuple[str, bytes]]) -> None:
        """Republish a consumed record unchanged on `<topic>.dlq` (same key, its headers plus `headers`)."""
        producer = await self._current_producer()
        topic = f"{origin.topic}.dlq"
        if topic not in self._dlq_topics:
            await ensure_topics(self.bootstrap, [topic], self.partitions)
            self._dlq_topics.add(topic)
        future = await producer.send(topic, origin.value, key=origin.key, headers=[*origin.headers, *headers])
        await future

    def subscription(self, group: str, topics: Sequence[str], handler: BatchHandler) -> Subscription:
        return KafkaSubscription(self.bootstrap, group, topics, handler)
