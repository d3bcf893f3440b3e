"""The suite running: embedded in one process, or distributed over real HTTP, PostgreSQL and Kafka."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from qcity.embedded import create_embedded_app
from shared.clock import FixedClock
from shared.settings import PlatformSettings
from tests.e2e.modes import gateway_client
from tests.helpers import running


@pytest.fixture
def clock() -> FixedClock:
    """The suite's clock: mid-2015, so 2014 results are in the past; tests move it."""
    return FixedClock(datetime(2015, 6, 1, 4, 0, tzinfo=UTC))


@pytest.fixture
async def embedded(
    tmp_path: Path, platform: PlatformSettings, clock: FixedClock
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_embedded_app(tmp_path / "data", platform, clock=clock)
    async with running(app) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://suite") as client:
            yield app, client


@pytest.fixture
async def suite(embedded: tuple[FastAPI, httpx.AsyncClient]) -> tuple[FastAPI, httpx.AsyncClient]:
    return embedded


@pytest.fixture(params=["embedded", pytest.param("distributed", marks=[pytest.mark.kafka, pytest.mark.postgres])])
async def suite_2016(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    platform: PlatformSettings,
    kafka_bootstrap: str,
    pg_database: Callable[[str], Any],  # lazy: creates a database only when asked
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the gateway, embedded and distributed, early in 2016: the 2011–2015 plan is over."""
    started = datetime(2016, 3, 1, 4, tzinfo=UTC)
    async for c in gateway_client(request.param, started, tmp_path, platform, kafka_bootstrap, pg_database):
        yield c
