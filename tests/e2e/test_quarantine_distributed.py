"""One bad event never blocks a partition: distributed mode, real Kafka and PostgreSQL.

Events are put on the real `sampling` topic as the sampling service's relay would (the CloudEvents
binary binding, keyed by USCC), with a bad one ahead of good ones on the same partition.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

import services.credit as credit_pkg
from services.credit.domain import RuleBook
from services.credit.main import build_spec
from services.credit.main import create_app as create_credit
from services.credit.models import inbox as credit_inbox
from services.credit.models import quarantined_events as credit_quarantine
from services.credit.models import records
from services.credit.settings import CreditSettings
from services.gateway import repository
from services.gateway.main import create_app as create_gateway
from services.gateway.models import quarantined_events as gateway_quarantine
from services.gateway.settings import GatewaySettings
from shared.bus import ensure_topics
from shared.clock import FixedClock
from shared.consumer import IdempotentConsumer
from shared.contracts.sampling import RESULT_RECORDED
from shared.db import Database
from shared.events import Envelope, to_kafka
from shared.migrations import upgrade
from shared.quarantine import is_transient
from shared.settings import PlatformSettings
from tests.e2e.credit_helpers import ENTERPRISE, START, sampling_event, snapshot
from tests.factories import result_event
from tests.helpers import Served, eventually, read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

GARBAGE = b"\x00\xffnot a cloud event"


@pytest.fixture
def kafka_platform(platform: PlatformSettings, kafka_bootstrap: str) -> PlatformSettings:
    return platform.model_copy(update={"bus": "kafka", "kafka_bootstrap": kafka_bootstrap})


@pytest.fixture
async def producer(kafka_platform: PlatformSettings) -> AsyncIterator[AIOKafkaProducer]:
    await ensure_topics(
        kafka_platform.kafka_bootstrap, [kafka_platform.topic("sampling")], kafka_platform.topic_partitions
    )
    p = AIOKafkaProducer(bootstrap_servers=kafka_platform.kafka_bootstrap, enable_idempotence=True)
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


async def _send(producer: AIOKafkaProducer, topic: str, e: Envelope) -> int:
    """Send one event and wait for the broker; its partition."""
    record = to_kafka(e)
    meta = await producer.send_and_wait(topic, record.value, key=record.key, headers=record.headers)
    return int(meta.partition)


async def _rows(runtime: Any, table: Any) -> list[dict[str, Any]]:
    async with runtime.unit_of_work() as uow:
        return [dict(r) for r in (await uow.session.execute(select(table).order_by(table.c.id))).mappings()]


async def test_gateway_quarantines_an_invalid_payload_and_garbage_bytes_and_applies_the_events_behind_them(
    kafka_platform: PlatformSettings, pg_database: Callable[[str], Any], producer: AIOKafkaProducer
) -> None:
    topic = kafka_platform.topic("sampling")
    bad = Envelope(type=RESULT_RECORDED, source="/qualitycity/sampling", subject=ENTERPRISE, data={"foo": 1})
    goods = [result_event(result_id=f"q{i}", uscc=ENTERPRISE) for i in range(3)]
    # The bad ones first, then the good ones, all keyed by one enterprise: one partition, in this order.
    partitions = {await _send(producer, topic, bad)}
    garbage = await producer.send_and_wait(topic, GARBAGE, key=ENTERPRISE.encode())
    partitions.add(garbage.partition)
    for e in goods:
        partitions.add(await _send(producer, topic, e))
    assert len(partitions) == 1

    gateway = await Served(
        create_gateway(
            GatewaySettings(
                database_url=await pg_database("gateway"),
                platform=kafka_platform,
                sampling_url="http://127.0.0.1:9",
                credit_url="http://127.0.0.1:9",
                awards_url="http://127.0.0.1:9",
            ),
            clock=FixedClock(datetime(2015, 6, 1, 4, tzinfo=UTC)),
        )
    ).start()
    runtime = gateway.app.state.runtime
    try:

        async def rates() -> list[dict[str, Any]]:
            async with runtime.unit_of_work() as uow:
                return await repository.pass_rates_by_sector(uow.session)

        assert await eventually(rates, lambda r: r != [], timeout=60) == [{"sector": "food", "n": 3, "passed": 3}]
        rows = await eventually(lambda: _rows(runtime, gateway_quarantine), lambda r: len(r) == 2)
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"{gateway.url}/metrics")).text
    finally:
        await gateway.stop()

    invalid, undecodable = rows
    assert (invalid["event_id"], invalid["type"], invalid["reason"], invalid["state"]) == (
        bad.id,
        RESULT_RECORDED,
        "invalid",
        "quarantined",
    )
    assert invalid["error_class"] == "pydantic_core._pydantic_core.ValidationError"
    assert "result" in invalid["error"] and invalid["envelope"]["data"] == {"foo": 1}
    assert invalid["raw"] == b'{"foo":1}' and invalid["kafka_topic"] == topic
    assert (undecodable["reason"], undecodable["type"], undecodable["raw"]) == ("undecodable", "", GARBAGE)
    assert (undecodable["kafka_partition"], undecodable["kafka_offset"]) == (garbage.partition, garbage.offset)
    assert undecodable["envelope"] is None
    assert 'qc_events_quarantined_total{consumer="gateway",reason="invalid"} 1.0' in metrics
    assert 'qc_events_quarantined_total{consumer="gateway",reason="undecodable"} 1.0' in metrics
    assert 'qc_quarantined_events{consumer="gateway"} 2.0' in metrics

    # The original records on `<topic>.dlq`: same key, same value, their headers plus the error.
    dlq = await read_topic(kafka_platform.kafka_bootstrap, f"{topic}.dlq", 2)
    assert [(m.key, m.value) for m in dlq] == [(ENTERPRISE.encode(), b'{"foo":1}'), (ENTERPRISE.encode(), GARBAGE)]
    headers = [dict(m.headers) for m in dlq]
    assert headers[0]["ce_id"] == bad.id.encode() and headers[0]["ce_type"] == RESULT_RECORDED.encode()
    assert [(h["qc_dlq_consumer"], h["qc_dlq_reason"]) for h in headers] == [
        (b"gateway", b"invalid"),
        (b"gateway", b"undecodable"),
    ]
    assert b"result" in headers[0]["qc_dlq_error"]


def _valid_uscc(n: int) -> str:
    from stdnum.cn import uscc

    code17 = f"9137020{n:04d}MA3C00"
    return code17 + uscc.calc_check_digit(code17)


async def test_credit_quarantines_a_result_the_database_refuses_after_three_attempts_and_every_partition_moves_on(
    kafka_platform: PlatformSettings, pg_database: Callable[[str], Any], producer: AIOKafkaProducer
) -> None:
    topic = kafka_platform.topic("sampling")
    too_long = "9137020016356268" + "1" * 14  # 30 characters: the contract takes it, varchar(18) does not
    bad = sampling_event(snapshot(too_long))
    bad_partition = await _send(producer, topic, bad)
    # Good results behind it on every partition, the bad one's included.
    sent: dict[str, int] = {}
    n = 0
    while set(sent.values()) != set(range(kafka_platform.topic_partitions)) or bad_partition not in sent.values():
        uscc = _valid_uscc(n)
        sent[uscc] = await _send(producer, topic, sampling_event(snapshot(uscc)))
        n += 1

    credit = await Served(
        create_credit(
            CreditSettings(database_url=await pg_database("credit"), platform=kafka_platform, relay_interval_s=0.1),
            clock=FixedClock(START),
        )
    ).start()
    runtime = credit.app.state.runtime
    try:

        async def applied() -> set[str]:
            async with runtime.unit_of_work() as uow:
                return set(await uow.session.scalars(select(records.c.uscc)))

        assert await eventually(applied, lambda got: got == set(sent), timeout=60) == set(sent)
        (row,) = await eventually(lambda: _rows(runtime, credit_quarantine), lambda r: len(r) == 1)
    finally:
        await credit.stop()
    assert (row["event_id"], row["reason"], row["attempts"], row["state"]) == (bad.id, "apply-failed", 3, "quarantined")
    assert row["error_class"].startswith("sqlalchemy.exc."), row["error_class"]
    assert "value too long for type character varying(18)" in row["error"]
    assert row["kafka_partition"] == bad_partition and row["subject"] == too_long
    dlq = await read_topic(kafka_platform.kafka_bootstrap, f"{topic}.dlq", 1)
    assert [(m.key, dict(m.headers)["qc_dlq_reason"], dict(m.headers)["qc_dlq_attempts"]) for m in dlq] == [
        (too_long.encode(), b"apply-failed", b"3")
    ]


async def test_a_transient_database_error_is_retried_never_quarantined(pg_database: Callable[[str], Any]) -> None:
    """The database connection dies under the consumer (its server process terminated), more times
    than the attempts an event gets: each time the batch goes back to the transport, and once the
    database holds, every event applies once and nothing is quarantined."""
    url = await pg_database("credit")
    await upgrade(url, Path(credit_pkg.__file__).parent)
    db = Database(url)
    spec = build_spec(FixedClock(START), RuleBook.load(), 3600)
    assert spec.batch_handler is not None
    apply = spec.batch_handler
    outages = 5

    async def flaky(session: AsyncSession, events: Any) -> None:
        nonlocal outages
        if outages:
            outages -= 1
            await session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        await apply(session, events)

    consumer = IdempotentConsumer("credit", db, credit_inbox, spec.handlers, batch_handler=flaky, max_attempts=3)
    batch = [sampling_event(snapshot(_valid_uscc(i))) for i in range(4)]
    failures: list[BaseException] = []
    try:
        for _ in range(10):  # what the transport does: deliver the batch again until it is taken
            try:
                await consumer.handle_batch(batch)
                break
            except Exception as exc:
                failures.append(exc)
        await consumer.handle_batch(batch)  # and a redelivery changes nothing
        async with db.unit_of_work() as uow:
            s = uow.session
            stored = int(await s.scalar(select(func.count()).select_from(records)) or 0)
            quarantined = int(await s.scalar(select(func.count()).select_from(credit_quarantine)) or 0)
            processed = int(await s.scalar(select(func.count()).select_from(credit_inbox)) or 0)
    finally:
        await db.dispose()
    assert len(failures) == 5 and all(is_transient(f) for f in failures), failures
    assert (stored, processed, quarantined) == (4, 4, 0)
    assert consumer.quarantine.quarantined_total.total() == 0


def test_a_handler_bug_is_not_transient_and_a_lost_connection_is() -> None:
    from sqlalchemy.exc import DataError, OperationalError

    assert not is_transient(KeyError("result"))
    assert not is_transient(DataError("INSERT", {}, ValueError("value too long")))
    assert is_transient(OperationalError("SELECT 1", {}, ConnectionRefusedError()))
    assert is_transient(RuntimeError("wrapped")) is False
    wrapped = RuntimeError("while applying")
    wrapped.__cause__ = ConnectionResetError()
    assert is_transient(wrapped)
