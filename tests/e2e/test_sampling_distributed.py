"""The sampling service distributed: its own PostgreSQL database, real Kafka, the gateway over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from services.gateway.main import create_app as create_gateway
from services.gateway.settings import GatewaySettings
from services.sampling.main import create_app as create_sampling
from services.sampling.settings import SamplingSettings
from shared.clock import FixedClock
from shared.settings import PlatformSettings
from tests.factories import ITEM, USCC_B, result_body
from tests.helpers import Served, eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture
async def served(
    platform: PlatformSettings, kafka_bootstrap: str, pg_database: Callable[[str], Any]
) -> AsyncIterator[tuple[Served, Served, FixedClock]]:
    platform = platform.model_copy(update={"bus": "kafka", "kafka_bootstrap": kafka_bootstrap})
    clock = FixedClock(datetime(2015, 6, 1, 4, tzinfo=UTC))
    sampling = await Served(
        create_sampling(
            SamplingSettings(database_url=await pg_database("sampling"), platform=platform, relay_interval_s=0.1),
            clock=clock,
        )
    ).start()
    gateway = await Served(
        create_gateway(
            GatewaySettings(database_url=await pg_database("gateway"), platform=platform, sampling_url=sampling.url)
        )
    ).start()
    try:
        yield sampling, gateway, clock
    finally:
        await gateway.stop()
        await sampling.stop()


async def test_bulk_lifecycle_and_statistics_on_postgresql_and_kafka(
    served: tuple[Served, Served, FixedClock], auth: Callable[..., dict[str, str]]
) -> None:
    sampling, gateway, clock = served
    h = auth("sampling:write", "read")
    admin = auth("admin")
    dates = {"production_date": "2015-05-01", "sampling_date": "2015-05-10", "report_date": "2015-05-25"}
    rows = [result_body(f"D-{i}", **dates) for i in range(6)]
    rows += [result_body(f"D-F{i}", conclusion="fail", uscc=USCC_B, **dates) for i in range(3)]
    rows.append(result_body("D-bad", district_code="370205", **dates))  # 四方区 was gone by 2015
    async with httpx.AsyncClient(timeout=30) as c:
        r = await c.post(
            f"{gateway.url}/v1/results:batch",
            content=b"\n".join(orjson.dumps(x) for x in rows),
            headers=h | {"content-type": "application/x-ndjson"},
        )
        assert r.status_code == 200, r.text
        out = r.json()
        assert (out["created"], out["rejected"]) == (9, 1)
        assert out["rows"][-1]["problems"][0]["field"] == "district_code"
        csv = (
            "report_no,level,sector,product_category,product_name,uscc,enterprise_name,district_code,"
            "sampling_date,report_date,conclusion,nonconforming_items\n"
            f"D-C1,national,food,饮料,矿泉水,{USCC_B},某厂,370281,2015-05-10,2015-05-25,fail,"
            f'"{orjson.dumps([ITEM]).decode().replace(chr(34), chr(34) * 2)}"\n'
        )
        r = await c.post(
            f"{sampling.url}/v1/results:batch", content=csv.encode(), headers=h | {"content-type": "text/csv"}
        )
        assert r.json()["created"] == 1, r.text

        fails = (await c.get(f"{gateway.url}/v1/results", params={"conclusion": "fail", "limit": 10}, headers=h)).json()
        ids = [x["id"] for x in fails["items"]]
        assert len(ids) == 4
        first = await c.get(f"{gateway.url}/v1/results/{ids[0]}", headers=h)
        over = await c.post(
            f"{gateway.url}/v1/results/{ids[0]}/reinspection",
            headers=h | {"If-Match": first.headers["etag"]},
            json={
                "outcome": "overturned",
                "reinspection_report_no": "FJ-9",
                "requested_on": "2015-05-28",
                "decided_on": "2015-05-31",
            },
        )
        assert over.status_code == 200, over.text
        second = await c.get(f"{gateway.url}/v1/results/{ids[1]}", headers=h)
        gone = await c.post(
            f"{gateway.url}/v1/results/{ids[1]}:retract",
            json={"reason": "样品混淆"},
            headers=h | {"If-Match": second.headers["etag"]},
        )
        assert gone.status_code == 200
        clock.set(datetime(2015, 6, 12, tzinfo=UTC))
        ran = await c.post(f"{sampling.url}/v1/jobs/finalise-results:run", headers=admin)
        assert ran.json()["changed"] == 2

        stats = (
            await c.get(f"{gateway.url}/v1/stats/pass-rates", params={"include_provisional": "false"}, headers=h)
        ).json()
        assert (stats["n"], stats["groups"][0]["passed"]) == (9, 7)  # 10 recorded, 1 retracted; 6 + 1 overturned pass

        async def gateway_rates() -> dict[str, tuple[int, int]]:
            groups = (await c.get(f"{gateway.url}/v1/pass-rates")).json()["groups"]
            return {g["sector"]: (g["n"], g["passed"]) for g in groups}

        # the gateway's read model, fed only by events over Kafka, agrees with the service's own figures
        assert await eventually(gateway_rates, lambda v: v == {"food": (9, 7)}, timeout=60) == {"food": (9, 7)}
        history = (await c.get(f"{gateway.url}/v1/results/{ids[0]}/history", headers=h)).json()
        assert [v["change"] for v in history] == ["recorded", "reinspected"]
        export = await c.get(f"{gateway.url}/v1/results:export", params={"uscc": USCC_B}, headers=h)
        assert export.status_code == 200 and export.text.count("\n") == 1 + 3  # the retracted one is left out
