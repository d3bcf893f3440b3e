"""Webhooks in the distributed topology (PostgreSQL, Kafka, four apps over HTTP): a real receiver
gets exactly its filtered events, signed, in order after answering 500 for a while, a replay, and
a ping signed by both secrets during a rotation's overlap."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from shared.clock import FixedClock
from shared.contracts.sampling import RESULT_RECORDED
from shared.settings import PlatformSettings
from tests.e2e.distributed_helpers import four_apps
from tests.e2e.test_webhooks_embedded import SUBSCRIBER, deliveries, feed, record, settled, subscribe
from tests.e2e.webhook_helpers import FAST, Auth, receiving, spec_verify
from tests.factories import USCC_A, USCC_B
from tests.helpers import eventually


@pytest.mark.kafka
@pytest.mark.postgres
async def test_webhooks_deliver_filtered_signed_in_order_and_replay_distributed(
    platform: PlatformSettings,
    kafka_bootstrap: str,
    pg_database: Callable[[str], Any],
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
    auth: Auth,
) -> None:
    for name, value in FAST.items():
        monkeypatch.setenv(name, value)
    async with receiving() as (receiver, url), four_apps(platform, kafka_bootstrap, pg_database, clock) as apps:
        async with httpx.AsyncClient(base_url=apps.gateway.url, timeout=30) as client:
            owner = auth(*SUBSCRIBER, subject="procurement")
            receiver.status = 500
            sub = await subscribe(client, auth, url, [RESULT_RECORDED], subjects=[USCC_A])
            sid = sub["subscription_id"]
            await record(client, auth, 3, USCC_A, "DA")
            await record(client, auth, 2, USCC_B, "DB")
            expected = await eventually(lambda: feed(client, auth, RESULT_RECORDED, USCC_A), lambda f: len(f) == 3)
            await eventually(lambda: feed(client, auth, RESULT_RECORDED, USCC_B), lambda f: len(f) == 2)
            await eventually(lambda: asyncio.sleep(0, receiver.hits), lambda hits: len(hits) >= 2)
            assert {h.headers["webhook-id"] for h in receiver.hits} == {expected[0]["event"]["id"]}
            head = (await deliveries(client, auth, sid))[0]
            assert head["last_status"] == 500 and head["state"] == "pending"

            receiver.status = 200
            await settled(client, auth, sid, 3)
            ids = [i["event"]["id"] for i in expected]
            got = receiver.delivered()
            assert [h.headers["webhook-id"] for h in got] == ids
            assert all(spec_verify(sub["secret"], h.headers, h.body) for h in got)
            assert [h.event for h in got] == [i["event"] for i in expected]

            r = await client.post(
                f"/v1/subscriptions/{sid}:replay",
                params={"from": expected[0]["cursor"]},
                headers=owner,
            )
            assert r.status_code == 200, r.text
            await settled(client, auth, sid, 5)
            assert [h.headers["webhook-id"] for h in receiver.delivered()[3:]] == ids[1:]

            # A rotated secret: both sign the next delivery during the overlap (PostgreSQL's timestamps).
            r = await client.post(f"/v1/subscriptions/{sid}:rotate-secret", headers=owner)
            assert r.status_code == 200, r.text
            new_secret = r.json()["secret"]
            pong = await client.post(f"/v1/subscriptions/{sid}:ping", headers=owner)
            assert pong.status_code == 200 and pong.json()["ok"] is True, pong.text
            ping = receiver.hits[-1]
            assert ping.headers["webhook-id"] == pong.json()["webhook_id"]
            assert spec_verify(sub["secret"], ping.headers, ping.body) and spec_verify(
                new_secret, ping.headers, ping.body
            )
