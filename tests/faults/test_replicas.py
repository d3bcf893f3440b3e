"""Replicas (`make up REPLICAS=2`): two gateway replicas count exactly, one killed hands its partitions
to the other, and two relays of one service never publish a result's versions out of order."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from tests.e2e.awards_helpers import make_uscc
from tests.factories import result_body
from tests.faults.scenario import under_load
from tests.faults.table import Row
from tests.faults.topology import Topology, asyncpg_dsn
from tests.helpers import eventually, read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

Start = Callable[..., Awaitable[Topology]]
Auth = Callable[..., dict[str, str]]


async def test_two_gateway_replicas_apply_different_partitions_and_count_exactly(
    topology: Start, http: httpx.AsyncClient, auth: Auth, fault_writes: int, fault_table: list[Row]
) -> None:
    """Both replicas hold sampling partitions and update the same sector counters concurrently: the
    gateway's figures equal the sampling service's, none lost, none doubled."""
    suite = await topology(gateway=2)
    topic = suite.platform.topic("sampling")

    async def nothing() -> None:
        return None

    await under_load("two gateway replicas", suite, http, auth, fault_writes, nothing, fault_table)
    first, second = (suite.assigned(r, topic) for r in suite.replicas["gateway"])
    assert first and second, (first, second)  # each applied its own share...
    assert first | second == set(range(6)) and not first & second  # ...of disjoint partitions


async def test_a_gateway_replica_killed_hands_its_partitions_to_the_other(
    topology: Start, http: httpx.AsyncClient, auth: Auth, fault_writes: int, fault_table: list[Row]
) -> None:
    suite = await topology(gateway=2)
    survivor, victim = suite.replicas["gateway"]
    topic = suite.platform.topic("sampling")
    await eventually(lambda: _value(suite.assigned(victim, topic)), bool)  # the victim holds partitions

    async def kill() -> None:
        await victim.kill()

    await under_load("gateway replica killed", suite, http, auth, fault_writes, kill, fault_table)
    assert suite.assigned(survivor, topic) == set(range(6))


async def _value(x: Any) -> Any:
    return x


async def _topic(bootstrap: str, topic: str, expected: int) -> list[Any]:
    """Every record of the topic, once `expected` are there, and a second later (so extras show)."""
    await read_topic(bootstrap, topic, expected, timeout=60)
    await asyncio.sleep(1.0)
    return await read_topic(bootstrap, topic, expected)


async def test_two_relays_publish_each_results_versions_in_order(
    topology: Start, http: httpx.AsyncClient, auth: Auth
) -> None:
    """Two sampling replicas, each with its relay, take corrections of the same results in turn: on the
    topic, every result's versions arrive 1, 2, 3, … — none out of order, none missing, none twice."""
    suite = await topology(services=("sampling",), sampling=2)
    urls = suite.urls("sampling")
    h = auth("sampling:write", "read")
    results, corrections = 24, 12
    body = [result_body(f"ORDER-{i:03d}", uscc=make_uscc(i)) for i in range(results)]
    r = await http.post(f"{urls[0]}/v1/results:batch", json=body, headers=h)
    assert r.status_code == 200 and r.json()["created"] == results, r.text
    ids = [row["id"] for row in r.json()["rows"]]

    async def correct(n: int, result_id: str) -> None:
        for k in range(corrections):  # each version written by the other replica than the last
            url = urls[(n + k) % 2]
            change = {"reason": "order test", "changes": {"product_name": f"矿泉水 v{k + 2}"}}
            r = await http.patch(f"{url}/v1/results/{result_id}", json=change, headers={**h, "If-Match": "*"})
            assert r.status_code == 200, r.text

    await asyncio.gather(*(correct(n, rid) for n, rid in enumerate(ids)))
    msgs = await _topic(suite.platform.kafka_bootstrap, suite.platform.topic("sampling"), results * (corrections + 1))
    versions: dict[str, list[int]] = {}
    for m in sorted(msgs, key=lambda m: (m.partition, m.offset)):
        snapshot = orjson.loads(m.value)["result"]
        versions.setdefault(snapshot["result_id"], []).append(snapshot["version"])
    expected = list(range(1, corrections + 2))
    assert versions == dict.fromkeys(ids, expected)


async def test_the_relay_lock_is_one_postgresql_advisory_lock_across_processes(
    topology: Start, http: httpx.AsyncClient, auth: Auth
) -> None:
    """While another session holds the relay's advisory lock, neither replica's relay publishes (the
    rows wait in the outbox); released, they are published once."""
    suite = await topology(services=("sampling",), sampling=2)
    urls, h = suite.urls("sampling"), auth("sampling:write", "read")
    topic = suite.platform.topic("sampling")
    dsn = asyncpg_dsn(suite.databases["sampling"])
    holder = await asyncpg.connect(dsn)
    try:
        await holder.execute("SELECT pg_advisory_lock($1::bigint)", zlib.crc32(topic.encode()))
        for n, url in enumerate(urls):
            body = [result_body(f"LOCK-{n}-{i:03d}", uscc=make_uscc(i)) for i in range(20)]
            r = await http.post(f"{url}/v1/results:batch", json=body, headers=h)
            assert r.status_code == 200 and r.json()["created"] == 20, r.text
        await asyncio.sleep(3)  # fifteen relay polls or more on each replica
        assert await holder.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 40
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=suite.platform.kafka_bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            assert await consumer.getmany(timeout_ms=2000) == {}
        finally:
            await consumer.stop()
        await holder.execute("SELECT pg_advisory_unlock($1::bigint)", zlib.crc32(topic.encode()))

        async def unpublished() -> int:
            return int(await holder.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))

        await eventually(unpublished, lambda n: n == 0)
    finally:
        await holder.close()
    assert len(await _topic(suite.platform.kafka_bootstrap, topic, 40)) == 40
