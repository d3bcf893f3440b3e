"""The credit service distributed: served over real HTTP on PostgreSQL, fed by a real Kafka broker.

Sampling events are put on the real `sampling` topic as the sampling service's relay would (the
CloudEvents binary binding, keyed by USCC); the credit service's own events are read back from
its topic, as the awards service and the gateway read them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import func, select

from services.credit.main import create_app
from services.credit.models import blacklist_entries, entry_history, outbox, records
from services.credit.settings import CreditSettings
from shared.bus import KafkaBus
from shared.clock import FixedClock
from shared.settings import PlatformSettings
from tests.e2e.credit_helpers import (
    ENTERPRISE,
    FOURTH,
    START,
    proposal,
    run_lifecycle,
    sampling_event,
    snapshot,
    wire,
)
from tests.e2e.records_helpers import run_due_process, run_records
from tests.helpers import Served, eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@dataclass
class Suite:
    credit: Served
    client: httpx.AsyncClient
    platform: PlatformSettings
    clock: FixedClock
    producer: KafkaBus
    bootstrap: str

    @property
    def url(self) -> str:
        return self.credit.url

    @property
    def runtime(self) -> Any:
        return self.credit.app.state.runtime

    async def publish_sampling(self, envelopes: list[Any]) -> None:
        await self.producer.publish(self.platform.topic("sampling"), wire(envelopes))

    async def counts(self) -> tuple[int, int, int, int]:
        async with self.runtime.unit_of_work() as uow:
            s = uow.session
            n = [
                int(await s.scalar(select(func.count()).select_from(t)) or 0)
                for t in (blacklist_entries, entry_history, outbox, records)
            ]
        return n[0], n[1], n[2], n[3]


@pytest.fixture
async def suite(
    platform: PlatformSettings, kafka_bootstrap: str, pg_database: Callable[[str], Any]
) -> AsyncIterator[Suite]:
    platform = platform.model_copy(update={"bus": "kafka", "kafka_bootstrap": kafka_bootstrap})
    clock = FixedClock(START)
    settings = CreditSettings(database_url=await pg_database("credit"), platform=platform, relay_interval_s=0.1)
    credit = await Served(create_app(settings, clock=clock)).start()
    producer = KafkaBus(kafka_bootstrap, topics=[platform.topic("sampling")], partitions=platform.topic_partitions)
    await producer.start()
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            yield Suite(credit, client, platform, clock, producer, kafka_bootstrap)
    finally:
        await producer.stop()
        await credit.stop()


async def _credit_topic(s: Suite, expected: int) -> list[tuple[str, dict[str, Any]]]:
    consumer = AIOKafkaConsumer(
        s.platform.topic("credit"),
        bootstrap_servers=s.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    seen: list[Any] = []
    try:

        async def more() -> int:
            for msgs in (await consumer.getmany(timeout_ms=500)).values():
                seen.extend(msgs)
            return len(seen)

        await eventually(more, lambda n: n >= expected, timeout=30)
    finally:
        await consumer.stop()
    return [(dict(m.headers)["ce_type"].decode(), orjson.loads(m.value)) for m in seen]


async def test_blacklist_lifecycle_distributed(suite: Suite, auth: Callable[..., dict[str, str]]) -> None:
    await run_lifecycle(suite.client, suite.url, auth, suite.clock, suite.runtime)
    events = await _credit_topic(suite, 11)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for type_, data in events:
        by_type.setdefault(type_, []).append(data)
    # What the awards service relies on: listed and removed, with the entry's uscc, id and dates.
    # (Order holds per enterprise, its partition key, not across enterprises.)
    listed = sorted(by_type["credit.blacklist_entry.listed.v1"], key=lambda d: d["entry"]["uscc"])
    removed = sorted(by_type["credit.blacklist_entry.removed.v1"], key=lambda d: d["entry"]["uscc"])
    assert [d["entry"]["uscc"] for d in listed] == [ENTERPRISE, "91370200MA3C00001N"]
    assert all(d["entry"]["listed_on"] and d["entry"]["status"] == "listed" for d in listed)
    assert [(d["entry"]["removal_reason"], d["reason"]) for d in removed] == [
        ("repaired", "repaired"),
        ("expired", "expired"),
    ]
    assert [d["entry"]["entry_id"] for d in removed] == [d["entry"]["entry_id"] for d in listed]
    assert all(d["entry"]["removed_on"] for d in removed)
    ratings = [(d["previous"], d["rating"]) for d in by_type["credit.rating.changed.v1"] if d["uscc"] == ENTERPRISE]
    assert ratings == [(None, "D"), ("D", "B")]


async def _proposals(s: Suite, headers: dict[str, str]) -> list[dict[str, Any]]:
    r = await s.client.get(f"{s.url}/v1/blacklist-entries", params={"uscc": FOURTH}, headers=headers)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def _value(x: int) -> int:
    return x


async def test_automatic_proposal_fed_by_sampling_events_over_kafka(
    suite: Suite, auth: Callable[..., dict[str, str]]
) -> None:
    s, officer, reader = suite, auth("credit:write", subject="alice"), auth("read")
    fails = [snapshot(FOURTH, state="provisional", report_date=date(2013, 11 + i, 5)) for i in range(2)]
    fails.append(snapshot(FOURTH, state="provisional", report_date=date(2014, 1, 5)))
    recorded = [sampling_event(f, "recorded") for f in fails]
    finalised = [sampling_event(dict(f, version=2, state="final")) for f in fails]
    await s.publish_sampling(recorded + finalised[:2])

    async def negatives() -> int:
        r = await s.client.get(f"{s.url}/v1/enterprises/{FOURTH}/credit", headers=reader)
        return sum(1 for x in r.json()["records"] if x["kind"] == "negative")

    await eventually(negatives, lambda n: n == 2)
    assert await _proposals(s, officer) == []  # provisional fails do not count; two final ones are not enough

    await s.publish_sampling([finalised[2]])
    (entry,) = await eventually(lambda: _proposals(s, officer), lambda v: len(v) == 1)
    assert (entry["status"], entry["automatic"], entry["listed_on"]) == ("proposed", True, None)
    check = await s.client.get(f"{s.url}/v1/blacklist/check", params={"uscc": FOURTH}, headers=reader)
    assert check.json()["listed"] is False

    # The same events redelivered over Kafka: the inbox drops them; nothing changes.
    consumer = s.runtime.consumer
    before, dupes = await s.counts(), consumer.duplicates_total
    await s.publish_sampling(recorded + finalised)
    await eventually(lambda: _value(consumer.duplicates_total), lambda n: n == dupes + 6)
    assert await s.counts() == before
    assert len(await _proposals(s, officer)) == 1

    # A reviewer lists it; only then is the enterprise on the list.
    ok = await s.client.post(
        f"{s.url}/v1/blacklist-entries/{entry['entry_id']}:approve",
        json={"decision_no": "青质监信〔2014〕1号"},
        headers=auth("credit:review", subject="bob") | {"If-Match": f'"{entry["version"]}"'},
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["earliest_repair_on"] == "2014-09-03"  # general category: six months after listing
    check = await s.client.get(f"{s.url}/v1/blacklist/check", params={"uscc": FOURTH}, headers=reader)
    assert check.json()["listed"] is True


async def test_two_reviewers_at_once_on_postgres_leave_exactly_one_decision(
    suite: Suite, auth: Callable[..., dict[str, str]]
) -> None:
    s = suite
    created = await s.client.post(
        f"{s.url}/v1/blacklist-entries", json=proposal(), headers=auth("credit:write", subject="alice")
    )
    url = f"{s.url}/v1/blacklist-entries/{created.json()['entry_id']}"
    tag = created.headers["etag"]
    results = await asyncio.gather(
        *[
            s.client.post(f"{url}:approve", json={}, headers=auth("credit:review", subject=f"r{i}") | {"If-Match": tag})
            for i in range(5)
        ]
    )
    assert sorted(r.status_code for r in results) == [200, 412, 412, 412, 412], [r.text for r in results]
    async with s.runtime.unit_of_work() as uow:
        actions = list(await uow.session.scalars(select(entry_history.c.action).order_by(entry_history.c.id)))
        decided = list(
            await uow.session.scalars(select(outbox.c.type).where(outbox.c.type == "credit.blacklist_entry.listed.v1"))
        )
    assert actions == ["proposed", "listed"] and len(decided) == 1


async def test_authority_records_move_ratings_and_proposals_distributed(
    suite: Suite, auth: Callable[..., dict[str, str]]
) -> None:
    ids = await run_records(suite.client, suite.url, auth, suite.clock, suite.runtime)
    events = await _credit_topic(suite, 10)  # 6 record events, proposed and rejected, 2 rating changes
    records = [(t, d["record"]) for t, d in events if t.startswith("credit.record.")]
    # One enterprise, one partition: its record events arrive in the order they were written.
    assert [(t.split(".")[2], r["record_id"], r["version"]) for t, r in records[:5]] == [
        ("recorded", ids[0], 1),
        ("recorded", ids[1], 1),
        ("recorded", ids[2], 1),
        ("withdrawn", ids[1], 2),
        ("corrected", ids[0], 2),
    ]
    assert {r["authority"] for _, r in records[:5]} == {"QD-AMR"}
    assert records[4][1]["details"]["amount_yuan"] == "30000.00"


async def test_due_process_before_listing_distributed(suite: Suite, auth: Callable[..., dict[str, str]]) -> None:
    await run_due_process(suite.client, suite.url, auth, suite.clock, suite.runtime)
