"""The gateway distributed: four apps over real HTTP, each on its own PostgreSQL database, joined by a
real Kafka broker. Attainment and the credit profile follow writes made through the gateway, and a
rebuild from the Kafka topics (offset 0) gives the same answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.gateway.rebuild import rebuild_from_kafka
from shared.clock import FixedClock
from shared.settings import PlatformSettings
from tests.e2e.awards_helpers import grant_body
from tests.e2e.credit_helpers import proposal
from tests.e2e.distributed_helpers import four_apps
from tests.factories import result_body
from tests.helpers import Served, eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
ENTERPRISE = "91370200163562681G"


@dataclass
class Suite:
    gateway: Served
    services: list[Served]
    client: httpx.AsyncClient
    platform: PlatformSettings

    def url(self, path: str) -> str:
        return self.gateway.url + path


@pytest.fixture
async def distributed(
    platform: PlatformSettings, kafka_bootstrap: str, pg_database: Callable[[str], Any]
) -> AsyncIterator[Suite]:
    clock = FixedClock(datetime(2015, 6, 1, 4, tzinfo=UTC))
    async with four_apps(platform, kafka_bootstrap, pg_database, clock) as apps:
        async with httpx.AsyncClient(timeout=30) as client:
            yield Suite(apps.gateway, apps.services, client, apps.platform)


async def test_attainment_and_credit_profile_over_kafka_and_postgres_then_rebuilt_from_kafka(
    distributed: Suite, auth: Callable[..., dict[str, str]]
) -> None:
    s = distributed
    w = auth("sampling:write", "awards:write", "read")
    alice = auth("credit:write", "read", subject="alice")
    bob = auth("credit:review", "read", subject="bob")
    mfg = {"sector": "manufacturing", "level": "national", "key_product": True, "uscc": ENTERPRISE}
    for i, conclusion in enumerate(("pass", "pass", "pass", "fail")):
        body = result_body(
            f"QD-D-{i}",
            conclusion=conclusion,
            sampling_date=f"201{3 + i % 2}-05-10",
            report_date=f"201{3 + i % 2}-05-25",
            production_date=f"201{3 + i % 2}-05-01",
            **mfg,
        )
        r = await s.client.post(s.url("/v1/results"), json=body, headers=w)
        assert r.status_code == 201, r.text
    g = await s.client.post(s.url("/v1/honours"), json=grant_body("B5", ENTERPRISE, granted_on="2014-06-01"), headers=w)
    assert g.status_code == 201, g.text

    async def figures() -> dict[str, Any]:
        r = await s.client.get(s.url("/v1/attainment"), params={"as_of": "2015-06-01"})
        assert r.status_code == 200, r.text
        return {f["code"]: f for f in r.json()["indicators"]}

    f = await eventually(
        figures,
        lambda f: f["mfg_key_pass_rate_national"]["n"] == 2 and f["shandong_famous_brands"]["value"] == 1,
        timeout=60,
    )
    nat = f["mfg_key_pass_rate_national"]
    assert (nat["value_year"], nat["n"], nat["passed"], nat["value"]) == (2014, 2, 1, 0.5)
    detail = (
        await s.client.get(s.url("/v1/attainment/mfg_key_pass_rate_national"), params={"as_of": "2015-06-01"})
    ).json()["indicator"]
    assert [(p["year"], p["n"], p["passed"]) for p in detail["series"]] == [(2013, 2, 2), (2014, 2, 1)]
    assert detail["status"] == "deterioration"  # 100 % -> 50 %
    rows = (await s.client.get(s.url(detail["links"]["rows"]), headers=w)).json()["items"]
    assert sorted(r["report_no"] for r in rows) == ["QD-D-1", "QD-D-3"]

    created = await s.client.post(s.url("/v1/blacklist-entries"), json=proposal(ENTERPRISE), headers=alice)
    assert created.status_code == 201, created.text
    approved = await s.client.post(
        s.url(f"/v1/blacklist-entries/{created.json()['entry_id']}:approve"),
        json={},
        headers=bob | {"If-Match": created.headers["etag"]},
    )
    assert approved.status_code == 200, approved.text

    async def profile() -> dict[str, Any]:
        r = await s.client.get(s.url(f"/v1/credit/{ENTERPRISE}"), headers=bob)
        return dict(r.json()) if r.status_code == 200 else {}

    p = await eventually(
        profile, lambda p: bool(p) and p["blacklist"]["listed"] and bool(p["honours"]["suspended"]), timeout=60
    )
    assert p["sampling"]["n"] == 4 and p["sampling"]["passed"] == 3
    assert p["procurement_priority"]["eligible"] is False
    assert p["freshness"]["events_applied"] >= 7 and p["freshness"]["lag_s"] is not None
    after = await eventually(figures, lambda f: f["shandong_famous_brands"]["value"] == 0)  # suspended at the end
    ready = await s.client.get(s.url("/readyz"))
    assert ready.json()["checks"] == {"database": "ok", "bus": "ok", "tasks": "ok"}

    # Rebuild the read models from the Kafka topics, offset 0, and read the same answers.
    runtime = s.gateway.app.state.runtime
    # The rating the listing causes may still be on its way: read the profile once the feed is quiet.
    settled = await eventually(_Quiet(profile).probe, lambda v: v is not None, timeout=30, interval=1.0)
    before_profile = {k: v for k, v in settled.items() if k != "freshness"}
    replayed = await rebuild_from_kafka(
        runtime.db, s.platform.kafka_bootstrap, [s.platform.topic(n) for n in ("sampling", "credit", "awards")]
    )
    assert replayed >= 7
    assert await figures() == after
    again = await profile()
    assert {k: v for k, v in again.items() if k != "freshness"} == before_profile


class _Quiet:
    """Yields the profile once two reads a second apart saw the same number of applied events."""

    def __init__(self, read: Any) -> None:
        self.read = read
        self.last: int | None = None

    async def probe(self) -> dict[str, Any] | None:
        p = await self.read()
        n = p["freshness"]["events_applied"]
        quiet, self.last = n == self.last, n
        return dict(p) if quiet else None
