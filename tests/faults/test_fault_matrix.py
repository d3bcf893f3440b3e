"""The fault matrix: the distributed topology as processes, a bounded steady load through the gateway,
one fault injected mid-load; afterwards every acknowledged write is stored, nothing is doubled, the
gateway's figures equal the sampling service's and credit holds one record per result.

`make test` writes `QC_FAULT_WRITES` (2,000) results per fault; `make soak` many more (docs/operations.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from shared.contracts.sampling import RESULT_RECORDED, SOURCE
from shared.events import Envelope, to_kafka
from tests.e2e.awards_helpers import make_uscc
from tests.e2e.credit_helpers import sampling_event, snapshot
from tests.faults.scenario import under_load
from tests.faults.table import Row
from tests.faults.topology import Topology, asyncpg_dsn

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

Start = Callable[..., Awaitable[Topology]]
Auth = Callable[..., dict[str, str]]


@pytest.mark.parametrize("service", ["sampling", "credit", "awards", "gateway"])
async def test_a_service_killed_mid_batch_and_restarted(
    service: str, topology: Start, http: httpx.AsyncClient, auth: Auth, fault_writes: int, fault_table: list[Row]
) -> None:
    """SIGKILL while writes are stored (sampling), results applied (credit, and the gateway, which also
    takes the writes) or credit events applied (awards); then the same service started again."""
    suite = await topology()
    victim = suite.replicas[service][0]

    async def kill_and_restart() -> None:
        await suite.restart(victim)

    label = "gateway killed while applying" if service == "gateway" else f"{service} killed mid-batch"
    await under_load(label, suite, http, auth, fault_writes, kill_and_restart, fault_table)


async def test_a_second_gateway_joins_under_load(
    topology: Start, http: httpx.AsyncClient, auth: Auth, fault_writes: int, fault_table: list[Row]
) -> None:
    """A second member joins the gateway's consumer group mid-load: partitions are revoked from the
    first while it applies batches, and both go on applying."""
    suite = await topology()

    async def join() -> None:
        await suite.add("gateway")

    await under_load("rebalance: second gateway joins", suite, http, auth, fault_writes, join, fault_table)


@pytest.mark.parametrize("service", ["sampling", "credit"])  # the gateway's: test_replicas.py
async def test_a_replica_killed_for_good(
    service: str, topology: Start, http: httpx.AsyncClient, auth: Auth, fault_writes: int, fault_table: list[Row]
) -> None:
    """Two replicas of the service, one SIGKILLed and left dead: the other carries on (the gateway sends
    writes to the surviving sampling replica; a consumer group gives the dead member's partitions to
    the live one)."""
    suite = await topology(**{service: 2})

    async def kill() -> None:
        await suite.replicas[service][1].kill()

    await under_load(f"{service} replica killed", suite, http, auth, fault_writes, kill, fault_table)


async def test_poison_events_of_three_kinds_are_set_aside(
    topology: Start, http: httpx.AsyncClient, auth: Auth, fault_writes: int, fault_table: list[Row]
) -> None:
    """Mid-load, three bad records on the sampling topic among the real ones: a known type whose payload
    its contract refuses, a result whose 30-character USCC no database column holds, and bytes that are
    not a CloudEvent. Each consumer quarantines all three; every partition moves on."""
    suite = await topology()
    topic = suite.platform.topic("sampling")
    too_long = "9137020016356268" + "1" * 14
    invalid = Envelope(type=RESULT_RECORDED, source=SOURCE, subject=make_uscc(7), data={"foo": 1})
    unstorable = sampling_event(snapshot(too_long, result_id="poison-uscc"))

    async def poison() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=suite.platform.kafka_bootstrap, enable_idempotence=True)
        await producer.start()
        try:
            for e in (invalid, unstorable):
                record = to_kafka(e)
                await producer.send_and_wait(topic, record.value, key=record.key, headers=record.headers)
            await producer.send_and_wait(topic, b"\x00\xffnot a cloud event", key=make_uscc(11).encode())
        finally:
            await producer.stop()

    await under_load("poison events (3 kinds)", suite, http, auth, fault_writes, poison, fault_table)
    for service in ("gateway", "credit"):
        conn = await asyncpg.connect(asyncpg_dsn(suite.databases[service]))
        try:
            rows = await conn.fetch("SELECT reason, event_id FROM quarantined_events")
        finally:
            await conn.close()
        assert len(rows) == 3, (service, [dict(r) for r in rows])
        assert {invalid.id, unstorable.id} <= {r["event_id"] for r in rows}, service
