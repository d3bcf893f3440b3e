"""Fixtures of the fault suite: the topology as processes, the load's size, and the soak's table.

`QC_FAULT_WRITES` sets the writes per fault (`make test`: 2,000; `make soak`: enough for ≥ 100,000 in
all). Every fault adds a row (fault, acknowledged, stored, doubled, recovery seconds) to the table
printed at the end of the run.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.settings import PlatformSettings
from tests.faults.table import ROWS, SOAK_MINIMUM, Row, render, writes_per_fault
from tests.faults.topology import SERVICES, Topology


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "outage: stops a shared server (Kafka, PostgreSQL); run with QC_FAULT_OUTAGES=1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`outage` tests stop the servers every test uses: selected only where nothing else shares them."""
    if os.environ.get("QC_FAULT_OUTAGES") == "1":
        return
    outages = [item for item in items if item.get_closest_marker("outage")]
    if outages:
        config.hook.pytest_deselected(items=outages)
        items[:] = [item for item in items if not item.get_closest_marker("outage")]


@pytest.fixture
def pg_ctl() -> str:
    """The script that stops and starts the test PostgreSQL (deploy/local/postgres.sh in `make test`)."""
    ctl = os.environ.get("QC_TEST_PG_CTL")
    if not ctl:
        pytest.fail("QC_TEST_PG_CTL is not set: run the outage tests with `make test` or `make soak`")
    return ctl


@pytest.fixture
def pg_address() -> str:
    """host:port of the test PostgreSQL (from QC_TEST_PG_URL)."""
    url = os.environ.get("QC_TEST_PG_URL", "")
    return url.rsplit("@", 1)[-1].split("/", 1)[0]


@pytest.fixture
def fault_writes() -> int:
    return writes_per_fault()


@pytest.fixture
def fault_table() -> list[Row]:
    return ROWS


@pytest.fixture
async def topology(
    platform: PlatformSettings,
    kafka_bootstrap: str,
    pg_database: Callable[[str], Any],
    tmp_path: Path,
) -> AsyncIterator[Callable[..., Awaitable[Topology]]]:
    """Start the topology with `replicas` per service (default one each); stopped after the test."""
    started: list[Topology] = []
    platform = platform.model_copy(update={"bus": "kafka", "kafka_bootstrap": kafka_bootstrap, "topic_partitions": 6})

    async def make(services: tuple[str, ...] = SERVICES, **replicas: int) -> Topology:
        databases = {s: await pg_database(s) for s in services}
        topology = Topology(platform, databases, tmp_path, counts=replicas, services=services)
        started.append(topology)
        return await topology.start()

    yield make
    for topology in started:
        await topology.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=60) as client:
        yield client


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if ROWS:
        terminalreporter.write_line("")
        for line in render(ROWS):
            terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The soak must reach its size: fewer acknowledged writes than promised fails the run."""
    if os.environ.get("QC_FAULT_SOAK") and ROWS and sum(r.acknowledged for r in ROWS) < SOAK_MINIMUM:
        session.exitstatus = 1
