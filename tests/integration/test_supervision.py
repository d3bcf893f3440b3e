"""Background tasks never stop silently: the supervisor, a consumer through a rebalance, the relay
through a broker outage (no transaction held), and readiness that tells writes from delayed events."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import generate_latest
from sqlalchemy import text
from structlog.testing import capture_logs

import services.gateway as gateway_pkg
from services.gateway.models import outbox
from services.sampling.main import create_app as create_sampling
from services.sampling.settings import SamplingSettings
from shared.bus import KafkaBus, KafkaSubscription, ensure_topics
from shared.events import Envelope, to_kafka
from shared.outbox import OutboxRelay, add_to_outbox
from shared.settings import PlatformSettings
from shared.supervisor import Supervisor, TasksDown
from tests.factories import result_body
from tests.helpers import eventually

GATEWAY_DIR = Path(gateway_pkg.__file__).parent


# ------------------------------------------------------------------------------------ the supervisor


async def test_a_task_that_raises_is_logged_restarted_counted_and_reported_down_meanwhile() -> None:
    supervisor = Supervisor(initial_backoff_s=0.3)
    runs = 0
    release = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs <= 2:
            raise RuntimeError(f"boom {runs}")
        await release.wait()  # the third run stays up

    with capture_logs() as logs:
        supervisor.start("consumer:test", flaky)
        await _supervise_flaky(supervisor, lambda: runs)
    stopped = [e for e in logs if e["event"] == "background task stopped; restarting"]
    assert [(e["log_level"], e["task"], e["error"]) for e in stopped] == [
        ("error", "consumer:test", "RuntimeError: boom 1"),
        ("error", "consumer:test", "RuntimeError: boom 2"),
    ]
    assert all(isinstance(e["exc_info"], RuntimeError) for e in stopped)  # the traceback goes with the record
    assert supervisor.down() == []  # stopped tasks are no longer supervised


async def _supervise_flaky(supervisor: Supervisor, runs: Any) -> None:
    try:
        await eventually(lambda: _value(runs()), lambda n: n >= 1)
        # Down between the failure and the restart: readiness names it, the gauge says 0.
        await eventually(lambda: _value(supervisor.down()), lambda d: d == ["consumer:test"])
        with pytest.raises(TasksDown, match="consumer:test .*boom"):
            await supervisor.check()
        assert 'qc_task_up{task="consumer:test"} 0.0' in generate_latest(supervisor.registry).decode()
        # Restarted twice, then up for good.
        await eventually(lambda: _value(runs()), lambda n: n == 3, timeout=30)
        await supervisor.check()
        assert supervisor.status()["consumer:test"]["restarts"] == 2
        metrics = generate_latest(supervisor.registry).decode()
        assert 'qc_task_restarts_total{task="consumer:test"} 2.0' in metrics
        assert 'qc_task_up{task="consumer:test"} 1.0' in metrics
    finally:
        await supervisor.stop()


async def test_a_task_that_returns_is_restarted_too() -> None:
    supervisor = Supervisor(initial_backoff_s=0.05)
    runs = 0

    async def quits() -> None:
        nonlocal runs
        runs += 1
        if runs > 1:
            await asyncio.Event().wait()

    supervisor.start("job:quits", quits)
    try:
        await eventually(lambda: _value(runs), lambda n: n == 2)
        assert supervisor.status()["job:quits"] == {"up": True, "restarts": 1, "last_error": "returned"}
    finally:
        await supervisor.stop()


async def _value(x: Any) -> Any:
    return x


# ------------------------------------------------------------------- a consumer through a rebalance


class SharedInbox:
    """Two group members applying to one store, idempotent by event id (as the inbox makes them)."""

    def __init__(self) -> None:
        self.applied: Counter[str] = Counter()
        self.duplicates = 0
        self.by_member: dict[str, set[str]] = {"first": set(), "second": set()}

    def apply(self, member: str, batch: Sequence[Envelope]) -> None:
        for e in batch:
            if e.id in self.applied:
                self.duplicates += 1
                continue
            self.applied[e.id] += 1
            self.by_member[member].add(e.id)


async def _produce(bootstrap: str, topic: str, n: int) -> list[str]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    ids = []
    try:
        for i in range(n):
            # Distinct keys spread the events over every partition.
            e = Envelope(type="t.thing.made.v1", source="/t", subject=f"S{i:05d}", data={"i": i})
            record = to_kafka(e, b'{"i": %d}' % i)
            await producer.send_and_wait(topic, record.value, key=record.key, headers=record.headers)
            ids.append(e.id)
    finally:
        await producer.stop()
    return ids


@pytest.mark.kafka
async def test_a_member_keeps_consuming_after_a_second_member_joins_while_it_applies_a_batch(
    kafka_bootstrap: str,
) -> None:
    topic, group = f"t-rebalance-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_bootstrap, [topic], partitions=6)
    store = SharedInbox()
    in_first_batch = asyncio.Event()
    second_joined = asyncio.Event()

    async def first_handler(batch: Sequence[Envelope]) -> None:
        if not in_first_batch.is_set():
            in_first_batch.set()
            # Still applying when the group rebalances: the second member takes partitions away.
            await asyncio.wait_for(second_joined.wait(), 60)
            await asyncio.sleep(2)
        store.apply("first", batch)

    async def second_handler(batch: Sequence[Envelope]) -> None:
        store.apply("second", batch)

    first = KafkaSubscription(kafka_bootstrap, group, [topic], first_handler)
    second = KafkaSubscription(kafka_bootstrap, group, [topic], second_handler)
    ids = await _produce(kafka_bootstrap, topic, 60)
    supervisor = Supervisor(initial_backoff_s=0.2)
    await first.start(supervisor)
    try:
        await asyncio.wait_for(in_first_batch.wait(), 60)
        await second.start()
        await asyncio.wait_for(second.assigned.wait(), 60)
        second_joined.set()
        await eventually(lambda: _value(len(store.applied)), lambda n: n == 60, timeout=60)
        # The second member leaves: every partition goes back to the first, which must still be consuming.
        await second.stop()
        later = await _produce(kafka_bootstrap, topic, 30)
        await eventually(lambda: _value(len(store.applied)), lambda n: n == 90, timeout=60)
    finally:
        await second.stop()
        restarts = supervisor.status().get(first.task_name, {}).get("restarts")
        await supervisor.stop()
    assert set(store.applied) == set(ids) | set(later)  # nothing lost
    assert set(store.applied.values()) == {1}  # nothing applied twice
    assert set(later) <= store.by_member["first"]  # the first member kept consuming after the rebalance
    assert restarts == 0  # not by being restarted: the commit failure is expected and handled in place
    assert first.commits_skipped >= 1  # the rebalance did hit the batch being applied


# ------------------------------------------------------------ a producer that cannot recover is replaced


async def test_a_publish_whose_producer_died_fails_in_time_and_the_retry_gets_a_fresh_producer(
    kafka_bootstrap: str,
) -> None:
    """When the broker loses an idempotent producer's state (a restart), aiokafka's sender task dies
    and every later send waits for ever: the relay froze with its backlog after a broker outage. The
    publish now fails within its timeout and the next one goes through a new producer."""
    topic = f"t-renew-{uuid.uuid4().hex[:8]}"
    bus = KafkaBus(kafka_bootstrap, topics=[topic], partitions=1, publish_timeout_s=3)
    await bus.start()
    try:
        first, second = _events(1), _events(1)
        await bus.publish(topic, [(e, orjson.dumps(e.data)) for e in first])
        dead = bus._producer
        assert dead is not None
        dead._sender.sender_task.cancel()  # the sender routine ends, as it does on OutOfOrderSequenceNumber
        with pytest.raises(TimeoutError):
            await bus.publish(topic, [(e, orjson.dumps(e.data)) for e in second])
        await bus.publish(topic, [(e, orjson.dumps(e.data)) for e in second])  # the relay's retry
        assert bus._producer is not dead and bus.producers_renewed == 1
        await bus.ping()
    finally:
        await bus.stop()
    delivered = await _consume_ids(kafka_bootstrap, topic, 2)
    assert delivered[0] == first[0].id and delivered[-1] == second[0].id


async def _consume_ids(bootstrap: str, topic: str, at_least: int) -> list[str]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    ids: list[str] = []
    try:
        async with asyncio.timeout(30):
            while len(ids) < at_least:
                for messages in (await consumer.getmany(timeout_ms=500)).values():
                    ids.extend(dict(m.headers)["ce_id"].decode() for m in messages)
    finally:
        await consumer.stop()
    return ids


# ------------------------------------------------------------ the relay holds no transaction while waiting


class BlockedPublisher:
    """A broker that takes the batch and does not acknowledge it until released."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.published: list[str] = []

    async def publish(self, topic: str, batch: Sequence[tuple[Envelope, bytes]]) -> None:
        self.entered.set()
        await self.release.wait()
        self.published.extend(e.id for e, _ in batch)


def _events(n: int) -> list[Envelope]:
    return [
        Envelope(type="x.thing.made.v1", source="/t", subject="91370200163562681G", data={"i": i}) for i in range(n)
    ]


async def test_the_relay_holds_no_transaction_while_the_broker_does_not_answer(migrated: Any) -> None:
    db = await migrated(GATEWAY_DIR, "relaytx")
    async with db.unit_of_work() as uow:
        await add_to_outbox(uow.session, outbox, _events(3))
        await uow.commit()
    pub = BlockedPublisher()
    relay = OutboxRelay(db, outbox, pub, "t")
    publishing = asyncio.create_task(relay.publish_pending())
    try:
        await asyncio.wait_for(pub.entered.wait(), 60)
        if db.is_sqlite:
            # SQLite's one write lock is free: a writer gets it at once (BEGIN IMMEDIATE, no busy wait).
            async with db.engine.connect() as conn:
                await conn.exec_driver_sql("PRAGMA busy_timeout=0")
                await conn.execute(text("UPDATE outbox SET source = source WHERE id < 0"))
                await conn.commit()
        else:
            async with db.engine.connect() as conn:
                idle_in_tx = await conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
                    )
                )
                assert idle_in_tx == 0
        assert await relay.backlog() == 3
        pub.release.set()
        assert await asyncio.wait_for(publishing, 60) == 3
    finally:
        pub.release.set()
        if not publishing.done():
            publishing.cancel()
    assert len(pub.published) == 3 and await relay.backlog() == 0


class DownPublisher:
    def __init__(self) -> None:
        self.up = False
        self.attempts = 0

    async def publish(self, topic: str, batch: Sequence[tuple[Envelope, bytes]]) -> None:
        self.attempts += 1
        if not self.up:
            raise ConnectionError("broker down")


async def test_the_relay_logs_an_outage_once_with_its_backlog_and_then_its_recovery(migrated: Any) -> None:
    db = await migrated(GATEWAY_DIR, "relaylog")
    async with db.unit_of_work() as uow:
        await add_to_outbox(uow.session, outbox, _events(4))
        await uow.commit()
    pub = DownPublisher()
    relay = OutboxRelay(db, outbox, pub, "t", interval_s=0.01)
    with capture_logs() as logs:
        relay.start()
        try:
            await eventually(lambda: _value(pub.attempts), lambda n: n >= 3, timeout=20)
            pub.up = True
            # Wait for the recovery's log line, not for an empty backlog: the rows are marked before
            # the round ends and logs, and a stop in between cancelled the line (seen in CI).
            recovered = lambda: [e["published"] for e in logs if e["event"] == "event publishing recovered"]  # noqa: E731
            await eventually(lambda: _value(recovered()), lambda r: r != [], timeout=20)
            assert await relay.backlog() == 0
        finally:
            await relay.stop()
    stopped = [e for e in logs if e["event"].startswith("event publishing stopped")]
    assert [(e["backlog"], e["topic"]) for e in stopped] == [(4, "t")]  # once, with the backlog
    assert [e["published"] for e in logs if e["event"] == "event publishing recovered"] == [4]


# ------------------------------------------------------------------------------ readiness


class _DownBus:
    """A bus whose broker cannot be reached: publishing and pinging fail."""

    in_outbox_order = False

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def ping(self) -> None:
        raise ConnectionError("broker unreachable")

    async def publish(self, topic: str, batch: Sequence[tuple[Envelope, bytes]]) -> None:
        raise ConnectionError("broker unreachable")

    def subscription(self, group: str, topics: Sequence[str], handler: Any) -> Any:
        raise AssertionError("sampling subscribes to nothing")


async def test_readiness_is_degraded_not_failed_while_the_broker_is_unreachable(
    sqlite_url: Any, auth: Any, platform: PlatformSettings
) -> None:
    settings = SamplingSettings(database_url=sqlite_url("ready"), run_jobs=False, platform=platform)
    app = create_sampling(settings, bus=_DownBus())  # type: ignore[arg-type]
    runtime = app.state.runtime
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as client:
            stored = await client.post("/v1/results", json=result_body("R-1"), headers=auth("sampling:write"))
            assert stored.status_code == 201, stored.text  # writes are accepted...
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text  # ...so the load balancer keeps the replica
            body = ready.json()
            assert body["status"] == "degraded"
            assert body["checks"]["database"] == "ok" and body["checks"]["bus"].startswith("failed")
            assert body["outbox_backlog"] == 1
            assert body["tasks"][runtime.relay.task_name]["up"] is True
            metrics = (await client.get("/metrics")).text
            assert f'qc_task_up{{task="{runtime.relay.task_name}"}} 1.0' in metrics

            # A background task down (between a crash and its restart): named, and still 200.
            async def crashes() -> None:
                raise RuntimeError("job broke")

            runtime.supervisor.initial_backoff_s = 30.0
            runtime.supervisor.start("job:broken", crashes)
            await eventually(lambda: _value(runtime.supervisor.down()), lambda d: d == ["job:broken"])
            down = await client.get("/readyz")
            assert down.status_code == 200 and down.json()["status"] == "degraded"
            assert "job:broken (RuntimeError: job broke" in down.json()["checks"]["tasks"]
            assert down.json()["tasks"]["job:broken"]["up"] is False
            await runtime.supervisor.stop("job:broken")

            # The database gone: writes cannot be accepted, so not ready.
            async def refuse() -> None:
                raise ConnectionRefusedError("database down")

            runtime.db.ping = refuse
            broken = await client.get("/readyz")
            assert broken.status_code == 503 and broken.json()["checks"]["database"].startswith("failed")
