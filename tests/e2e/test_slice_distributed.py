"""The slice distributed: one app per service over real HTTP, real PostgreSQL, a real Kafka broker.

Covers: the slice end to end; the broker stopped while writes go on; a duplicate delivery to the
gateway; the relay killed between publishing and marking.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy import func, select

from services.gateway.main import create_app as create_gateway
from services.gateway.settings import GatewaySettings
from services.sampling.main import create_app as create_sampling
from services.sampling.models import outbox
from services.sampling.settings import SamplingSettings
from shared.contracts.sampling import RESULT_RECORDED
from shared.settings import PlatformSettings
from tests.factories import result_body as result
from tests.helpers import Served, eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@dataclass
class Suite:
    sampling: Served
    gateway: Served
    client: httpx.AsyncClient
    platform: PlatformSettings

    @property
    def sampling_app(self) -> FastAPI:
        return self.sampling.app

    async def rates(self) -> dict[str, tuple[int, int]]:
        r = await self.client.get(f"{self.gateway.url}/v1/pass-rates")
        assert r.status_code == 200, r.text
        return {g["sector"]: (g["n"], g["passed"]) for g in r.json()["groups"]}

    async def unpublished(self) -> int:
        runtime = self.sampling_app.state.runtime
        async with runtime.unit_of_work() as uow:
            return int(await uow.session.scalar(select(func.count()).where(outbox.c.published_at.is_(None))) or 0)


@pytest.fixture
async def distributed(
    platform: PlatformSettings, kafka_bootstrap: str, pg_database: Callable[[str], Any]
) -> AsyncIterator[Suite]:
    platform = platform.model_copy(update={"bus": "kafka", "kafka_bootstrap": kafka_bootstrap})
    sampling = await Served(
        create_sampling(
            SamplingSettings(database_url=await pg_database("sampling"), platform=platform, relay_interval_s=0.1)
        )
    ).start()
    gateway = await Served(
        create_gateway(
            GatewaySettings(database_url=await pg_database("gateway"), platform=platform, sampling_url=sampling.url)
        )
    ).start()
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            yield Suite(sampling, gateway, client, platform)
    finally:
        await gateway.stop()
        await sampling.stop()


async def _topic_messages(bootstrap: str, topic: str, expected: int) -> list[Any]:
    """Read the whole topic from the start (no group) until `expected` messages are seen."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    seen: list[Any] = []
    try:

        async def more() -> int:
            for msgs in (await consumer.getmany(timeout_ms=500)).values():
                seen.extend(msgs)
            return len(seen)

        await eventually(more, lambda n: n >= expected, timeout=30)
        await asyncio.sleep(1.0)
        await more()  # and nothing beyond what was expected arrives
    finally:
        await consumer.stop()
    return seen


async def test_slice_through_gateway_and_service_over_kafka_and_postgres(
    distributed: Suite, auth: Callable[..., dict[str, str]], kafka_bootstrap: str
) -> None:
    s, h = distributed, auth("sampling:write", "read")
    via_gateway = await s.client.post(f"{s.gateway.url}/v1/results", json=result("D-1"), headers=h)
    assert via_gateway.status_code == 201, via_gateway.text
    direct = await s.client.post(f"{s.sampling.url}/v1/results", json=result("D-2", conclusion="fail"), headers=h)
    assert direct.status_code == 201, direct.text
    assert await eventually(s.rates, lambda v: v.get("food") == (2, 1)) == {"food": (2, 1)}
    # The event went over Kafka in the CloudEvents binary binding, keyed by the enterprise.
    msgs = await _topic_messages(kafka_bootstrap, s.platform.topic("sampling"), 2)
    assert len(msgs) == 2
    assert {m.key for m in msgs} == {b"91370200163562681G"}
    headers = dict(msgs[0].headers)
    assert headers["ce_type"] == b"sampling.result.recorded.v1" and headers["ce_specversion"] == b"1.0"
    ready = await s.client.get(f"{s.gateway.url}/readyz")
    assert ready.json()["checks"] == {"database": "ok", "bus": "ok", "tasks": "ok"}


async def test_bulk_ingest_goes_over_kafka_as_single_events_keyed_by_enterprise(
    distributed: Suite, auth: Callable[..., dict[str, str]], kafka_bootstrap: str
) -> None:
    """Over Kafka a bulk request's results travel as single events keyed by the enterprise, never as a
    batch event: a batch mixing enterprises would sit in another partition than each result's later
    events (two gateway replicas would apply one result at once). A correction after it wins."""
    s, h = distributed, auth("sampling:write", "read")
    rows = [result(f"DB-{i}", conclusion="fail" if i == 0 else "pass") for i in range(3)]
    body = b"\n".join(orjson.dumps(r) for r in rows)
    r = await s.client.post(
        f"{s.sampling.url}/v1/results:batch", content=body, headers=h | {"content-type": "application/x-ndjson"}
    )
    assert r.status_code == 200 and r.json()["created"] == 3, r.text
    assert await eventually(s.rates, lambda v: v.get("food") == (3, 2)) == {"food": (3, 2)}
    records = await _topic_messages(kafka_bootstrap, s.platform.topic("sampling"), 3)
    assert len(records) == 3
    assert {(m.key, dict(m.headers)["ce_type"]) for m in records} == {
        (rows[0]["uscc"].encode(), RESULT_RECORDED.encode())
    }
    assert sorted(orjson.loads(m.value)["result"]["result_id"] for m in records) == sorted(
        x["id"] for x in r.json()["rows"]
    )

    failed = r.json()["rows"][0]["id"]
    got = await s.client.get(f"{s.sampling.url}/v1/results/{failed}", headers=h)
    fixed = await s.client.patch(
        f"{s.sampling.url}/v1/results/{failed}",
        json={"reason": "wrong sector", "changes": {"sector": "agricultural"}},
        headers=h | {"If-Match": got.headers["etag"]},
    )
    assert fixed.status_code == 200, fixed.text
    await eventually(s.rates, lambda v: v == {"food": (2, 2), "agricultural": (1, 0)})


def _port_open(bootstrap: str) -> bool:
    host, port = bootstrap.rsplit(":", 1)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


async def test_kafka_down_writes_still_accepted_then_delivered_once(
    distributed: Suite, auth: Callable[..., dict[str, str]], kafka_ctl: str, kafka_bootstrap: str
) -> None:
    s, h = distributed, auth("sampling:write", "read")
    assert (await s.client.post(f"{s.sampling.url}/v1/results", json=result("K-1"), headers=h)).status_code == 201
    await eventually(s.rates, lambda v: v.get("food") == (1, 1))
    subprocess.run([kafka_ctl, "stop"], check=True)
    try:
        assert not _port_open(kafka_bootstrap), "the broker still answers: the test could not stop it"
        during = await s.client.post(f"{s.sampling.url}/v1/results", json=result("K-2", conclusion="fail"), headers=h)
        assert during.status_code == 201, during.text
        await asyncio.sleep(2)
        assert await s.unpublished() == 1  # waiting in the outbox, not lost
        assert await s.rates() == {"food": (1, 1)}
        # Writable, so still ready for the load balancer; the body says events are delayed, and how many.
        ready = await s.client.get(f"{s.sampling.url}/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "degraded" and ready.json()["outbox_backlog"] == 1
    finally:
        subprocess.run([kafka_ctl, "start"], check=True)
    await eventually(s.rates, lambda v: v.get("food") == (2, 1), timeout=90)
    await eventually(s.unpublished, lambda n: n == 0, timeout=30)
    await asyncio.sleep(2)
    assert await s.rates() == {"food": (2, 1)}  # counted once


async def test_the_same_event_delivered_twice_changes_the_read_model_once(
    distributed: Suite, auth: Callable[..., dict[str, str]], kafka_bootstrap: str
) -> None:
    s, h = distributed, auth("sampling:write", "read")
    assert (await s.client.post(f"{s.sampling.url}/v1/results", json=result("X-1"), headers=h)).status_code == 201
    await eventually(s.rates, lambda v: v.get("food") == (1, 1))
    topic = s.platform.topic("sampling")
    (original,) = await _topic_messages(kafka_bootstrap, topic, 1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:  # a redelivery, byte for byte
        await producer.send_and_wait(
            topic, original.value, key=original.key, headers=list(original.headers), partition=original.partition
        )
    finally:
        await producer.stop()
    consumer = s.gateway.app.state.runtime.consumer
    await eventually(lambda: _value(consumer.duplicates_total), lambda n: n == 1)
    assert await s.rates() == {"food": (1, 1)}


async def _value(x: int) -> int:
    return x


async def test_relay_killed_after_publishing_before_marking_loses_and_doubles_nothing(
    distributed: Suite, auth: Callable[..., dict[str, str]], kafka_bootstrap: str
) -> None:
    s, h = distributed, auth("sampling:write", "read")
    runtime = s.sampling_app.state.runtime
    relay = runtime.relay
    published = asyncio.Event()

    async def die(*_: Any) -> None:
        published.set()
        await asyncio.Future()  # killed here: the rows are never marked

    relay._mark_published = die
    r = await s.client.post(f"{s.sampling.url}/v1/results", json=result("Z-1", conclusion="fail"), headers=h)
    assert r.status_code == 201
    await asyncio.wait_for(published.wait(), 30)
    await relay.stop()  # the kill: the marking transaction is rolled back
    assert await s.unpublished() == 1
    await eventually(s.rates, lambda v: v.get("food") == (1, 0))  # the first publication did arrive
    del relay._mark_published  # the restarted relay is the real code again
    relay.start()
    await eventually(s.unpublished, lambda n: n == 0)
    msgs = await _topic_messages(kafka_bootstrap, s.platform.topic("sampling"), 2)
    assert len(msgs) == 2 and msgs[0].value == msgs[1].value  # published twice...
    consumer = s.gateway.app.state.runtime.consumer
    await eventually(lambda: _value(consumer.duplicates_total), lambda n: n == 1)
    assert await s.rates() == {"food": (1, 0)}  # ...counted once
