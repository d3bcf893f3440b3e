"""The four apps served over real HTTP, each on its own PostgreSQL database, joined by a real Kafka
broker: the distributed topology the gateway tests run against."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

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
from tests.helpers import Served


@dataclass
class FourApps:
    gateway: Served
    sampling: Served
    credit: Served
    awards: Served
    platform: PlatformSettings  # with the Kafka bus and broker

    @property
    def services(self) -> list[Served]:
        return [self.sampling, self.credit, self.awards]


@asynccontextmanager
async def four_apps(
    platform: PlatformSettings, kafka_bootstrap: str, pg_database: Callable[[str], Any], clock: FixedClock
) -> AsyncIterator[FourApps]:
    platform = platform.model_copy(update={"bus": "kafka", "kafka_bootstrap": kafka_bootstrap})
    kw: dict[str, Any] = {"platform": platform, "relay_interval_s": 0.1}
    sampling = await Served(
        create_sampling(SamplingSettings(database_url=await pg_database("sampling"), **kw), clock=clock)
    ).start()
    credit = await Served(
        create_credit(CreditSettings(database_url=await pg_database("credit"), **kw), clock=clock)
    ).start()
    awards = await Served(
        create_awards(AwardsSettings(database_url=await pg_database("awards"), **kw), clock=clock)
    ).start()
    gateway = await Served(
        create_gateway(
            GatewaySettings(
                database_url=await pg_database("gateway"),
                platform=platform,
                sampling_url=sampling.url,
                credit_url=credit.url,
                awards_url=awards.url,
            ),
            clock=clock,
        )
    ).start()
    try:
        yield FourApps(gateway, sampling, credit, awards, platform)
    finally:
        await gateway.stop()
        for s in (awards, credit, sampling):
            await s.stop()
