"""The servers stopped mid-load: the Kafka broker, then PostgreSQL. Each test stops the server every test
uses, starts it again and waits for it, so they run only where nothing else shares the servers: marked
`outage`, selected by QC_FAULT_OUTAGES=1 (`make test` and `make soak` set it; docs/operations.md).
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import Awaitable, Callable

import httpx
import pytest

from tests.faults.scenario import under_load
from tests.faults.table import Row
from tests.faults.topology import Topology

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.outage]

Start = Callable[..., Awaitable[Topology]]
Auth = Callable[..., dict[str, str]]

#: How long each server stays down.
OUTAGE_S = 20


def _answers(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


async def _ctl(script: str, action: str) -> None:
    await asyncio.to_thread(subprocess.run, [script, action], check=True, timeout=180)


def _outage(ctl: str, address: str, what: str) -> Callable[[], Awaitable[None]]:
    """The fault: the server stopped, down for OUTAGE_S, started again (the script waits for it)."""

    async def outage() -> None:
        await _ctl(ctl, "stop")
        try:
            assert not _answers(address), f"{what} still answers: the test could not stop it"
            await asyncio.sleep(OUTAGE_S)
        finally:
            await _ctl(ctl, "start")

    return outage


async def test_the_broker_stopped_under_load(
    topology: Start,
    http: httpx.AsyncClient,
    auth: Auth,
    fault_writes: int,
    fault_table: list[Row],
    kafka_ctl: str,
    kafka_bootstrap: str,
) -> None:
    """Writes go on being accepted (into the outboxes); once the broker is back everything is delivered once."""
    suite = await topology()
    outage = _outage(kafka_ctl, kafka_bootstrap, "the broker")
    await under_load(f"broker stopped {OUTAGE_S} s", suite, http, auth, fault_writes, outage, fault_table)


async def test_postgresql_stopped_under_load(
    topology: Start,
    http: httpx.AsyncClient,
    auth: Auth,
    fault_writes: int,
    fault_table: list[Row],
    pg_ctl: str,
    pg_address: str,
) -> None:
    """Writes are refused while PostgreSQL is down (the writer retries them); every service recovers
    without a restart, and nothing acknowledged is lost or doubled."""
    suite = await topology()
    outage = _outage(pg_ctl, pg_address, "PostgreSQL")
    await under_load(f"PostgreSQL stopped {OUTAGE_S} s", suite, http, auth, fault_writes, outage, fault_table)
