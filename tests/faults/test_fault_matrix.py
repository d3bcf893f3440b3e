"""The fault matrix: the distributed topology as processes, a bounded steady load through the gateway,
one fault injected mid-load; afterwards every acknowledged write is stored, nothing is doubled, the
gateway's figures equal the sampling service's and credit holds one record per result.

`make test` writes `QC_FAULT_WRITES` (2,000) results per fault; `make soak` many more (docs/operations.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from tests.faults.scenario import under_load
from tests.faults.table import Row
from tests.faults.topology import Topology

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
