"""The awards service distributed: its own process-like app over real HTTP, PostgreSQL and a real
Kafka broker. Credit's blacklist events are put on the real `credit` topic, as its relay would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import select

from services.awards.domain import load_catalog
from services.awards.main import create_app
from services.awards.models import outbox
from services.awards.settings import AwardsSettings
from shared.bus import KafkaBus
from shared.clock import FixedClock
from shared.events import Envelope
from shared.settings import PlatformSettings
from tests.e2e.awards_helpers import grant_body, listed_event, make_uscc, removed_event, usccable_types
from tests.helpers import Served, eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

USCC = make_uscc(11)


@dataclass
class Suite:
    awards: Served
    client: httpx.AsyncClient
    credit_bus: KafkaBus
    platform: PlatformSettings
    clock: FixedClock

    @property
    def url(self) -> str:
        return f"{self.awards.url}/v1"

    async def credit(self, *events: Envelope) -> None:
        await self.credit_bus.publish(self.platform.topic("credit"), [(e, orjson.dumps(e.data)) for e in events])

    async def events(self, type_: str) -> list[dict[str, Any]]:
        runtime = self.awards.app.state.runtime
        async with runtime.unit_of_work() as uow:
            rows = (
                await uow.session.execute(select(outbox.c.data).where(outbox.c.type == type_).order_by(outbox.c.id))
            ).all()
        return [orjson.loads(r.data) for r in rows]

    async def states(self, ids: list[str], h: dict[str, str]) -> set[str]:
        out = set()
        for i in ids:
            r = await self.client.get(f"{self.url}/honours/{i}", headers=h)
            out.add(r.json()["state"])
        return out


@pytest.fixture
async def distributed(
    platform: PlatformSettings, kafka_bootstrap: str, pg_database: Callable[[str], Any]
) -> AsyncIterator[Suite]:
    platform = platform.model_copy(update={"bus": "kafka", "kafka_bootstrap": kafka_bootstrap})
    clock = FixedClock(datetime(2015, 2, 1, 4, tzinfo=UTC))
    settings = AwardsSettings(database_url=await pg_database("awards"), platform=platform, relay_interval_s=0.1)
    awards = await Served(create_app(settings, clock=clock)).start()
    credit_bus = KafkaBus(kafka_bootstrap, topics=[platform.topic("credit")], partitions=platform.topic_partitions)
    await credit_bus.start()
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            yield Suite(awards, client, credit_bus, platform, clock)
    finally:
        await credit_bus.stop()
        await awards.stop()


async def _awards_topic(bootstrap: str, topic: str, expected: int) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    seen: list[Any] = []
    try:

        async def more() -> int:
            for msgs in (await consumer.getmany(timeout_ms=500)).values():
                seen.extend(msgs)
            return len(seen)

        await eventually(more, lambda n: n >= expected, timeout=30)
        await asyncio.sleep(1.0)
        await more()
    finally:
        await consumer.stop()
    return seen


async def test_every_type_granted_then_suspended_and_reinstated_over_kafka_and_postgres(
    distributed: Suite, auth: Callable[..., dict[str, str]], kafka_bootstrap: str
) -> None:
    s = distributed
    h = auth("awards:write", "read", agency=None)
    granted: dict[str, str] = {}
    for t in load_catalog().types:
        r = await s.client.post(f"{s.url}/honours", json=grant_body(t, USCC, cert=f"{t.code}-D"), headers=h)
        assert r.status_code == 201, r.text
        granted[t.code] = r.json()["honour_id"]
    mine = [granted[t.code] for t in usccable_types()]
    others = [i for c, i in granted.items() if i not in mine]  # held by a region or a person: never listed
    assert len(mine) + len(others) == len(load_catalog().types) and others

    s.clock.set(datetime(2015, 3, 2, 4, tzinfo=UTC))
    listed = listed_event("entry-D1", USCC, listed_on=date(2015, 3, 1))
    await s.credit(listed)
    await s.credit(listed)  # delivered twice over Kafka: the inbox applies it once
    await eventually(lambda: s.states(mine, h), lambda v: v == {"suspended"}, timeout=60)
    assert await s.states(others, h) == {"active"}

    refused = await s.client.post(f"{s.url}/honours", json=grant_body("B5", USCC, cert="B5-D2"), headers=h)
    assert refused.status_code == 409
    assert refused.json()["type"] == "urn:qualitycity:problem:holder-blacklisted"
    assert (refused.json()["entry_id"], refused.json()["decision_no"]) == ("entry-D1", "青质监信〔2015〕7号")

    s.clock.set(datetime(2015, 9, 2, 4, tzinfo=UTC))
    await s.credit(removed_event("entry-D1", USCC, date(2015, 9, 1)))
    await eventually(lambda: s.states(mine, h), lambda v: v == {"active"}, timeout=60)

    suspended = await s.events("awards.honour.suspended.v1")
    assert sorted(e["honour"]["honour_id"] for e in suspended) == sorted(mine)  # one each, not two
    reinstated = await s.events("awards.honour.reinstated.v1")
    assert sorted(e["honour"]["honour_id"] for e in reinstated) == sorted(mine)

    # Everything left over Kafka on the awards topic, keyed by the holder.
    n = len(granted) + 2 * len(mine)
    msgs = await _awards_topic(kafka_bootstrap, s.platform.topic("awards"), n)
    assert len(msgs) == n
    types = [dict(m.headers)["ce_type"].decode() for m in msgs]
    assert types.count("awards.honour.suspended.v1") == len(mine)
    assert {m.key for m in msgs if dict(m.headers)["ce_type"] == b"awards.honour.suspended.v1"} == {USCC.encode()}

    # Removed: a new grant is accepted again.
    again = await s.client.post(f"{s.url}/honours", json=grant_body("B5", USCC, cert="B5-D3"), headers=h)
    assert again.status_code == 201, again.text


async def test_bad_input_on_postgres_changes_nothing(distributed: Suite, auth: Callable[..., dict[str, str]]) -> None:
    s = distributed
    h = auth("awards:write", "read", agency=None)
    first = await s.client.post(f"{s.url}/honours", json=grant_body("B5", USCC, cert="B5-P1"), headers=h)
    assert first.status_code == 201
    dup = await s.client.post(f"{s.url}/honours", json=grant_body("B5", make_uscc(12), cert="B5-P1"), headers=h)
    assert dup.status_code == 409 and dup.json()["type"].endswith("duplicate-certificate-no")
    person_zone = grant_body("B1", USCC, holder_kind="person", holder_id="QD-P-1")
    assert (
        (await s.client.post(f"{s.url}/honours", json=person_zone, headers=h))
        .json()["type"]
        .endswith("holder-kind-not-allowed")
    )
    listing = await s.client.get(f"{s.url}/honours", params={"type_code": "B5"}, headers=h)
    assert [x["certificate_no"] for x in listing.json()["items"]] == ["B5-P1"]
    assert len(await s.events("awards.honour.granted.v1")) == 1
