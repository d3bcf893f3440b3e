"""The five-year archive imported distributed: four apps over real HTTP, each on its own PostgreSQL
database, joined by a real Kafka broker; the same figures as of three past dates as embedded."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.awards.main import create_app as create_awards
from services.awards.settings import AwardsSettings
from services.credit.main import create_app as create_credit
from services.credit.settings import CreditSettings
from services.gateway.main import create_app as create_gateway
from services.gateway.settings import GatewaySettings
from services.sampling.main import create_app as create_sampling
from services.sampling.settings import SamplingSettings
from shared.clock import FixedClock
from shared.settings import PlatformSettings
from tests.e2e.archive_helpers import TODAY, import_and_check
from tests.helpers import Served

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture
async def gateway_client(
    platform: PlatformSettings, kafka_bootstrap: str, pg_database: Callable[[str], Any]
) -> AsyncIterator[httpx.AsyncClient]:
    platform = platform.model_copy(update={"bus": "kafka", "kafka_bootstrap": kafka_bootstrap})
    clock = FixedClock(datetime(TODAY.year, TODAY.month, TODAY.day, 4, tzinfo=UTC))
    async with AsyncExitStack() as stack:
        urls: dict[str, str] = {}
        for name, create, settings in (
            ("sampling", create_sampling, SamplingSettings),
            ("credit", create_credit, CreditSettings),
            ("awards", create_awards, AwardsSettings),
        ):
            s = settings(database_url=await pg_database(name), platform=platform, relay_interval_s=0.1)
            served = await Served(create(s, clock=clock)).start()  # type: ignore[operator]
            stack.push_async_callback(served.stop)
            urls[f"{name}_url"] = served.url
        gateway = await Served(
            create_gateway(
                GatewaySettings(database_url=await pg_database("gateway"), platform=platform, **urls), clock=clock
            )
        ).start()
        stack.push_async_callback(gateway.stop)
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
            yield client


async def test_a_five_year_archive_gives_the_past_figures_over_kafka_and_postgres(
    gateway_client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
) -> None:
    await import_and_check(gateway_client, auth)
