"""Webhooks end to end, embedded, the owner's tools: secret rotation with an overlap (checked with the
`standardwebhooks` package and the spec's algorithm: a receiver holding only the old secret verifies
during the overlap, one holding only the new one during and after), the test ping, retrying a
delivery now, and the filters (a 10,000-USCC list and districts)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from services.gateway.webhooks.domain import PING_TYPE
from shared.clock import FixedClock
from shared.contracts.sampling import RESULT_RECORDED
from shared.settings import PlatformSettings
from tests.e2e.test_webhooks_embedded import SUBSCRIBER, deliveries, record, settled, subscribe
from tests.e2e.webhook_helpers import Auth, embedded_suite, receiving, spec_verify
from tests.factories import USCC_A, USCC_B
from tests.helpers import eventually

WAIT_S = 60.0
OUTSIDER = "91370200MA3C00002R"  # a valid USCC that is not a supplier


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def owner(auth: Auth) -> dict[str, str]:
    return auth(*SUBSCRIBER, subject="procurement")


async def rotate(client: httpx.AsyncClient, auth: Auth, sid: str, **params: Any) -> dict[str, Any]:
    r = await client.post(f"/v1/subscriptions/{sid}:rotate-secret", params=params, headers=owner(auth))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_a_rotated_secret_signs_beside_the_old_one_during_the_overlap_then_alone(
    data: Path, platform: PlatformSettings, clock: FixedClock, monkeypatch: pytest.MonkeyPatch, auth: Auth
) -> None:
    async with receiving() as (receiver, url), embedded_suite(data, platform, clock, monkeypatch) as client:
        sub = await subscribe(client, auth, url, [RESULT_RECORDED])
        sid, first = sub["subscription_id"], sub["secret"]

        rotated = await rotate(client, auth, sid)  # the default overlap: a day
        second = rotated["secret"]
        assert second.startswith("whsec_") and second != first
        assert rotated["previous_secret_expires_at"] is not None
        # Reads never show a secret, old or new; they say until when the old one still signs.
        for read in (
            await client.get(f"/v1/subscriptions/{sid}", headers=owner(auth)),
            await client.get("/v1/subscriptions", headers=owner(auth)),
        ):
            assert read.status_code == 200 and first not in read.text and second not in read.text
            assert "secret" not in read.text.replace("previous_secret_expires_at", "")
        shown = (await client.get(f"/v1/subscriptions/{sid}", headers=owner(auth))).json()
        assert shown["previous_secret_expires_at"] == rotated["previous_secret_expires_at"]

        await record(client, auth, 1, USCC_A, "ROT")
        await settled(client, auth, sid, 1)
        (during,) = receiver.delivered()
        assert len(during.headers["webhook-signature"].split()) == 2
        for secret in (first, second):  # a receiver holding either secret alone verifies
            assert Webhook(secret).verify(during.body, during.headers) == during.event
            assert spec_verify(secret, during.headers, during.body)

        # Rotated again with a one-second overlap: once it has passed, only the newest secret signs.
        third = await rotate(client, auth, sid, overlap_s=1)
        ends = datetime.fromisoformat(third["previous_secret_expires_at"])
        await asyncio.sleep(max(0.0, (ends - datetime.now(UTC)).total_seconds()) + 0.1)  # wall-clock time passing
        await record(client, auth, 1, USCC_A, "ROT2")
        await settled(client, auth, sid, 2)
        after = receiver.delivered()[1]
        assert len(after.headers["webhook-signature"].split()) == 1
        assert Webhook(third["secret"]).verify(after.body, after.headers) == after.event
        assert spec_verify(third["secret"], after.headers, after.body)
        for stale in (first, second):
            with pytest.raises(WebhookVerificationError):
                Webhook(stale).verify(after.body, after.headers)
            assert not spec_verify(stale, after.headers, after.body)
        shown = (await client.get(f"/v1/subscriptions/{sid}", headers=owner(auth))).json()
        assert shown["previous_secret_expires_at"] is None

        # No overlap asked: the replaced secret signs nothing more at once.
        fourth = await rotate(client, auth, sid, overlap_s=0)
        assert fourth["previous_secret_expires_at"] is None
        too_long = await client.post(
            f"/v1/subscriptions/{sid}:rotate-secret", params={"overlap_s": 8 * 86400}, headers=owner(auth)
        )
        assert too_long.status_code == 422
        stranger = await client.post(
            f"/v1/subscriptions/{sid}:rotate-secret", headers=auth(*SUBSCRIBER, subject="other")
        )
        assert stranger.status_code == 404


async def test_a_ping_is_signed_and_says_how_the_receiver_answered_without_keeping_its_body(
    data: Path, platform: PlatformSettings, clock: FixedClock, monkeypatch: pytest.MonkeyPatch, auth: Auth
) -> None:
    async with receiving() as (receiver, url), embedded_suite(data, platform, clock, monkeypatch) as client:
        sub = await subscribe(client, auth, url, [RESULT_RECORDED])
        sid = sub["subscription_id"]
        r = await client.post(f"/v1/subscriptions/{sid}:ping", headers=owner(auth))
        assert r.status_code == 200, r.text
        pong = r.json()
        assert pong["ok"] is True and pong["status"] == 200 and pong["error"] is None
        (hit,) = receiver.hits
        assert hit.headers["webhook-id"] == pong["webhook_id"] and hit.event["type"] == PING_TYPE
        assert hit.event["data"]["subscription_id"] == sid
        assert Webhook(sub["secret"]).verify(hit.body, hit.headers) == hit.event

        receiver.status, receiver.body = 500, b"SECRET-STACK-TRACE " * 1000
        failed = (await client.post(f"/v1/subscriptions/{sid}:ping", headers=owner(auth))).json()
        assert failed["ok"] is False and failed["status"] == 500 and failed["error"] == "HTTP 500"
        assert "SECRET-STACK-TRACE" not in str(failed)
        # A ping is not a delivery: nothing in the outbox.
        assert await deliveries(client, auth, sid) == []

        # The receiver's body is not kept on a delivery either: only the status.
        await record(client, auth, 1, USCC_A, "PING")
        (head,) = await eventually(
            lambda: deliveries(client, auth, sid), lambda ds: len(ds) == 1 and ds[0]["attempts"] >= 1, WAIT_S
        )
        assert head["last_status"] == 500 and head["last_error"] == "HTTP 500"
        listing = await client.get(f"/v1/subscriptions/{sid}/deliveries", headers=owner(auth))
        assert "SECRET-STACK-TRACE" not in listing.text

        stranger = await client.post(f"/v1/subscriptions/{sid}:ping", headers=auth(*SUBSCRIBER, subject="other"))
        assert stranger.status_code == 404


async def test_retry_sends_a_pending_delivery_now_instead_of_at_its_back_off(
    data: Path, platform: PlatformSettings, clock: FixedClock, monkeypatch: pytest.MonkeyPatch, auth: Auth
) -> None:
    hour = {"QC_GATEWAY_WEBHOOK_RETRY_BASE_S": "3600", "QC_GATEWAY_WEBHOOK_RETRY_MAX_S": "3600"}
    async with receiving() as (receiver, url), embedded_suite(data, platform, clock, monkeypatch, **hour) as client:
        receiver.status = 502
        sub = await subscribe(client, auth, url, [RESULT_RECORDED])
        sid = sub["subscription_id"]
        await record(client, auth, 2, USCC_A, "RTY")
        ds = await eventually(
            lambda: deliveries(client, auth, sid), lambda ds: len(ds) == 2 and ds[0]["attempts"] == 1, WAIT_S
        )
        head = ds[0]
        assert head["state"] == "pending" and head["last_status"] == 502
        assert datetime.fromisoformat(head["next_attempt_at"]) > datetime.now(UTC)  # an hour away

        receiver.status = 200
        r = await client.post(f"/v1/subscriptions/{sid}/deliveries/{head['delivery_id']}:retry", headers=owner(auth))
        assert r.status_code == 200, r.text
        done = await settled(client, auth, sid, 2)
        assert [d["state"] for d in done] == ["delivered", "delivered"] and done[0]["attempts"] == 2
        assert [h.headers["webhook-id"] for h in receiver.delivered()] == [d["event_id"] for d in done]

        again = await client.post(
            f"/v1/subscriptions/{sid}/deliveries/{head['delivery_id']}:retry", headers=owner(auth)
        )
        assert again.status_code == 409, again.text
        missing = await client.post(f"/v1/subscriptions/{sid}/deliveries/999999:retry", headers=owner(auth))
        assert missing.status_code == 404 and missing.json()["type"].endswith("delivery-not-found")


async def test_filters_keep_only_the_listed_enterprises_in_the_listed_districts(
    data: Path, platform: PlatformSettings, clock: FixedClock, monkeypatch: pytest.MonkeyPatch, auth: Auth
) -> None:
    """A procurement system watching 10,000 suppliers, in one district."""
    suppliers = [USCC_A, USCC_B] + [f"91370200MA{i:08d}" for i in range(9_998)]
    async with receiving() as (receiver, url), embedded_suite(data, platform, clock, monkeypatch) as client:
        sub = await subscribe(
            client, auth, url, [RESULT_RECORDED], subjects=suppliers, filters={"districts": ["370202"]}
        )
        assert len(sub["subjects"]) == 10_000 and sub["filters"]["districts"] == ["370202"]
        sid = sub["subscription_id"]
        too_many = await client.post(
            "/v1/subscriptions",
            json={"url": url, "event_types": [RESULT_RECORDED], "subjects": [*suppliers, "91370200MAX0000001"]},
            headers=owner(auth),
        )
        assert too_many.status_code == 422, too_many.text
        bad = await client.post(
            "/v1/subscriptions",
            json={"url": url, "event_types": [RESULT_RECORDED], "filters": {"warning_kinds": ["volcano"]}},
            headers=owner(auth),
        )
        assert bad.status_code == 422, bad.text

        # The ones filtered out first: once the last kept one is delivered, all were fanned out.
        await record(client, auth, 2, USCC_A, "F-A203", district_code="370203")  # another district
        await record(client, auth, 2, OUTSIDER, "F-X202", district_code="370202")  # not a supplier
        kept = await record(client, auth, 2, USCC_A, "F-A202", district_code="370202")
        kept += await record(client, auth, 1, USCC_B, "F-B202", district_code="370202")
        done = await settled(client, auth, sid, 3)
        got = receiver.delivered()
        assert len(done) == 3 and len(got) == 3
        assert [h.event["data"]["result"]["result_id"] for h in got] == kept
        assert all(h.event["data"]["result"]["district_code"] == "370202" for h in got)
