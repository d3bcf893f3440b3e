"""The audit record on PostgreSQL: a service and the gateway over real HTTP, each with its own
database, the services joined by Kafka."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from services.gateway.main import create_app as create_gateway
from services.gateway.settings import GatewaySettings
from services.sampling.main import create_app as create_sampling
from services.sampling.settings import SamplingSettings
from shared.settings import PlatformSettings
from tests.e2e.test_audit_embedded import rolled_back_and_committed
from tests.factories import result_body
from tests.helpers import Served

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
CLIENT = "198.51.100.23"


@pytest.fixture
async def served(
    platform: PlatformSettings, kafka_bootstrap: str, pg_database: Callable[[str], Any]
) -> AsyncIterator[tuple[Served, Served]]:
    platform = platform.model_copy(update={"bus": "kafka", "kafka_bootstrap": kafka_bootstrap})
    sampling = await Served(
        create_sampling(SamplingSettings(database_url=await pg_database("sampling"), platform=platform))
    ).start()
    gateway = await Served(
        create_gateway(
            GatewaySettings(
                database_url=await pg_database("gateway"),
                platform=platform,
                sampling_url=sampling.url,
                credit_url="http://127.0.0.1:9",  # not started: this test writes sampling results only
                awards_url="http://127.0.0.1:9",
            )
        )
    ).start()
    try:
        yield sampling, gateway
    finally:
        await gateway.stop()
        await sampling.stop()


async def test_writes_and_refusals_are_audited_in_the_services_postgres_database(
    served: tuple[Served, Served], auth: Callable[..., dict[str, str]]
) -> None:
    sampling, gateway = served
    admin = auth("admin")
    writer = auth("sampling:write", subject="inspector-7", agency="QD-AGENCY-7")
    # The gateway believes the loopback proxy in front of it (QC_TRUSTED_PROXIES), the service the gateway.
    edge = {"X-Forwarded-For": CLIENT}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        created = await client.post(
            "/v1/results", json=result_body("PG-1"), headers=writer | edge | {"X-Request-ID": "pg-req-1"}
        )
        assert created.status_code == 201, created.text
        refused = await client.post("/v1/results", json=result_body("PG-2"), headers=auth("read") | edge)
        assert refused.status_code == 403
        assert (await client.get("/v1/audit/sampling", headers=auth("read"))).status_code == 403
        rows = (await client.get("/v1/audit/sampling", headers=admin)).json()["items"]
        at_gateway = (await client.get("/v1/audit/gateway", headers=admin)).json()["items"]
    assert [(r["subject"], r["agency"], r["request_id"], r["client"], r["status"], r["outcome"]) for r in rows] == [
        ("inspector-7", "QD-AGENCY-7", "pg-req-1", CLIENT, 201, "committed")
    ]
    assert [(r["route"], r["status"], r["client"], r["outcome"]) for r in at_gateway] == [
        ("/v1/results", 403, CLIENT, "refused")
    ]
    await rolled_back_and_committed(sampling.app.state.runtime)
