"""Webhooks end to end, embedded: a real HTTP receiver started by the test gets exactly the events
it subscribed to, signed per Standard Webhooks (checked with the `standardwebhooks` package and with
the spec's algorithm written here), every event in order after answering 500 for a while, a replay
from a point, and nothing once its subscription is disabled; warnings arrive the same way."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from shared.clock import FixedClock
from shared.contracts.gateway import WARNING_RAISED
from shared.contracts.sampling import RESULT_BATCH_RECORDED, RESULT_CORRECTED, RESULT_RECORDED
from shared.pagination import decode_cursor
from shared.settings import PlatformSettings
from tests.e2e.webhook_helpers import Auth, embedded_suite, receiving, spec_verify
from tests.factories import USCC_A, USCC_B, result_body
from tests.helpers import eventually

SUBSCRIBER = ("subscriptions:write",)


async def subscribe(client: httpx.AsyncClient, auth: Auth, url: str, types: list[str], **over: Any) -> dict[str, Any]:
    r = await client.post(
        "/v1/subscriptions",
        json={"url": url, "event_types": types, **over},
        headers=auth(*SUBSCRIBER, subject="procurement"),
    )
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


async def record(client: httpx.AsyncClient, auth: Auth, n: int, uscc: str, prefix: str, **over: Any) -> list[str]:
    ids = []
    for i in range(n):
        r = await client.post(
            "/v1/results", json=result_body(f"{prefix}-{i:03d}", uscc=uscc, **over), headers=auth("sampling:write")
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


async def feed(client: httpx.AsyncClient, auth: Auth, type_: str, subject: str) -> list[dict[str, Any]]:
    """The change feed's items of one type and subject, in order."""
    items: list[dict[str, Any]] = []
    after = None
    while True:
        r = await client.get(
            "/v1/changes",
            params={"subject": subject, "limit": 500, **({"after": after} if after else {})},
            headers=auth("read"),
        )
        page = r.json()
        items += [i for i in page["items"] if i["event"]["type"] == type_]
        if not page["items"]:
            return items
        after = page["next_cursor"]


async def deliveries(client: httpx.AsyncClient, auth: Auth, sid: str) -> list[dict[str, Any]]:
    r = await client.get(f"/v1/subscriptions/{sid}/deliveries", headers=auth(*SUBSCRIBER, subject="procurement"))
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def settled(client: httpx.AsyncClient, auth: Auth, sid: str, n: int) -> list[dict[str, Any]]:
    """Wait until the subscription has `n` deliveries and none pending."""
    return await eventually(
        lambda: deliveries(client, auth, sid),
        lambda ds: len(ds) >= n and all(d["state"] != "pending" for d in ds),
    )


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


async def test_a_subscriber_gets_exactly_its_events_signed(
    data: Path, platform: PlatformSettings, clock: FixedClock, monkeypatch: pytest.MonkeyPatch, auth: Auth
) -> None:
    async with receiving() as (receiver, url), embedded_suite(data, platform, clock, monkeypatch) as client:
        sub = await subscribe(client, auth, url, [RESULT_RECORDED], subjects=[USCC_A.lower()])
        secret = sub["secret"]
        assert secret.startswith("whsec_") and sub["subjects"] == [USCC_A]
        shown = (
            await client.get(
                f"/v1/subscriptions/{sub['subscription_id']}", headers=auth(*SUBSCRIBER, subject="procurement")
            )
        ).json()
        assert "secret" not in shown and shown["state"] == "active"
        # Someone else's token does not see it.
        other = await client.get(
            f"/v1/subscriptions/{sub['subscription_id']}", headers=auth(*SUBSCRIBER, subject="other")
        )
        assert other.status_code == 404

        a_ids = await record(client, auth, 3, USCC_A, "A")
        await record(client, auth, 2, USCC_B, "B")  # another enterprise: filtered out
        fixed = await client.patch(
            f"/v1/results/{a_ids[0]}",
            json={"reason": "typo", "changes": {"product_name": "矿泉水 550mL"}},
            headers={**auth("sampling:write"), "If-Match": '"1"'},
        )
        assert fixed.status_code == 200, fixed.text  # a correction: a type not subscribed

        expected = await eventually(lambda: feed(client, auth, RESULT_RECORDED, USCC_A), lambda f: len(f) == 3)
        await eventually(lambda: feed(client, auth, RESULT_CORRECTED, USCC_A), lambda f: len(f) == 1)
        await settled(client, auth, sub["subscription_id"], 3)
        got = receiver.delivered()
        assert [h.headers["webhook-id"] for h in got] == [i["event"]["id"] for i in expected]
        assert [h.event for h in got] == [i["event"] for i in expected]
        for hit in got:
            assert Webhook(secret).verify(hit.body, hit.headers) == hit.event
            assert spec_verify(secret, hit.headers, hit.body)
            assert hit.headers["content-type"] == "application/cloudevents+json"
        # The checks can fail: a changed body or another secret does not verify.
        tampered = got[0].body.replace(b"pass", b"fail")
        assert not spec_verify(secret, got[0].headers, tampered)
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(tampered, got[0].headers)
        assert not spec_verify("whsec_" + "A" * 44, got[0].headers, got[0].body)


async def test_a_bulk_ingest_reaches_subscribers_as_single_recorded_events(
    data: Path, platform: PlatformSettings, clock: FixedClock, monkeypatch: pytest.MonkeyPatch, auth: Auth
) -> None:
    """One bulk request travels as a batch event; the subscriber of `sampling.result.recorded.v1` gets one
    delivery per result of its enterprise, with the batch item's derived id. The batch type itself cannot be
    subscribed to: it is never in the feed."""
    async with receiving() as (receiver, url), embedded_suite(data, platform, clock, monkeypatch) as client:
        batch_only = await client.post(
            "/v1/subscriptions",
            json={"url": url, "event_types": [RESULT_BATCH_RECORDED]},
            headers=auth(*SUBSCRIBER, subject="procurement"),
        )
        assert batch_only.status_code == 422 and batch_only.json()["type"].endswith("unknown-event-type")
        sub = await subscribe(client, auth, url, [RESULT_RECORDED], subjects=[USCC_A])
        rows = [result_body(f"BULK-{i}", uscc=USCC_A if i < 3 else USCC_B) for i in range(5)]
        r = await client.post(
            "/v1/results:batch",
            content=b"\n".join(orjson.dumps(row) for row in rows),
            headers=auth("sampling:write") | {"content-type": "application/x-ndjson"},
        )
        assert r.status_code == 200 and r.json()["created"] == 5, r.text
        expected = await eventually(lambda: feed(client, auth, RESULT_RECORDED, USCC_A), lambda f: len(f) == 3)
        await settled(client, auth, sub["subscription_id"], 3)
        got = receiver.delivered()
        assert [h.event for h in got] == [i["event"] for i in expected]
        assert [h.event["data"]["result"]["report_no"] for h in got] == ["BULK-0", "BULK-1", "BULK-2"]
        assert len({h.headers["webhook-id"] for h in got}) == 3


# With an hour's poll, only the wake-ups deliver: the feed growing (after the consumer's commit) and
# each retry falling due.
@pytest.mark.parametrize("poll_s", ["0.1", "3600"], ids=["polling", "woken-only"])
async def test_a_receiver_answering_500_for_a_while_gets_every_event_later_in_order_and_a_replay(
    data: Path,
    platform: PlatformSettings,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
    auth: Auth,
    poll_s: str,
) -> None:
    async with (
        receiving() as (receiver, url),
        embedded_suite(data, platform, clock, monkeypatch, QC_GATEWAY_WEBHOOK_POLL_S=poll_s) as client,
    ):
        receiver.status = 500
        sub = await subscribe(client, auth, url, [RESULT_RECORDED])
        sid = sub["subscription_id"]
        await record(client, auth, 4, USCC_A, "R")
        expected = await eventually(lambda: feed(client, auth, RESULT_RECORDED, USCC_A), lambda f: len(f) == 4)
        first = expected[0]["event"]["id"]
        # Retried with back-off, and nothing overtakes the head while it fails.
        await eventually(lambda: asyncio.sleep(0, receiver.hits), lambda hits: len(hits) >= 3)
        assert {h.headers["webhook-id"] for h in receiver.hits} == {first}
        head = (await deliveries(client, auth, sid))[0]
        assert head["attempts"] >= 2 and head["last_status"] == 500 and head["state"] == "pending"
        failing = (
            await client.get(f"/v1/subscriptions/{sid}", headers=auth(*SUBSCRIBER, subject="procurement"))
        ).json()
        assert failing["failing_since"] is not None and failing["state"] == "active"

        receiver.status = 200
        ds = await settled(client, auth, sid, 4)
        ids = [i["event"]["id"] for i in expected]
        assert [h.headers["webhook-id"] for h in receiver.delivered()] == ids
        assert all(d["state"] == "delivered" and d["last_status"] == 200 for d in ds)

        # A replay from the second event's cursor re-sends the third and fourth, same ids.
        before = len(receiver.delivered())
        r = await client.post(
            f"/v1/subscriptions/{sid}:replay",
            params={"from": expected[1]["cursor"]},
            headers=auth(*SUBSCRIBER, subject="procurement"),
        )
        assert r.status_code == 200, r.text
        await eventually(lambda: asyncio.sleep(0, receiver.delivered()), lambda d: len(d) >= before + 2)
        await settled(client, auth, sid, 6)
        assert [h.headers["webhook-id"] for h in receiver.delivered()[before:]] == ids[2:]


async def test_a_failing_endpoint_is_disabled_and_stops_receiving(
    data: Path, platform: PlatformSettings, clock: FixedClock, monkeypatch: pytest.MonkeyPatch, auth: Auth
) -> None:
    env = {"QC_GATEWAY_WEBHOOK_DISABLE_AFTER_S": "0.3"}
    async with receiving() as (receiver, url), embedded_suite(data, platform, clock, monkeypatch, **env) as client:
        receiver.status = 503
        sub = await subscribe(client, auth, url, [RESULT_RECORDED])
        sid = sub["subscription_id"]
        await record(client, auth, 1, USCC_A, "D")

        async def state() -> dict[str, Any]:
            r = await client.get(f"/v1/subscriptions/{sid}", headers=auth(*SUBSCRIBER, subject="procurement"))
            body: dict[str, Any] = r.json()
            return body

        disabled = await eventually(state, lambda s: s["state"] == "disabled")
        assert "503" in disabled["disabled_reason"] and disabled["disabled_at"] is not None
        # The delivery loop is a supervised task, on /readyz and /metrics like the relay and the consumer.
        ready = (await client.get("/readyz")).json()
        assert ready["tasks"]["webhooks"]["up"] is True
        metrics = (await client.get("/metrics")).text
        assert 'qc_webhook_attempts_total{outcome="failed"}' in metrics
        assert "qc_webhook_disabled_total 1.0" in metrics and 'qc_task_up{task="webhooks"} 1.0' in metrics
        seen = len(receiver.hits)
        receiver.status = 200
        await record(client, auth, 2, USCC_A, "E")
        await eventually(lambda: feed(client, auth, RESULT_RECORDED, USCC_A), lambda f: len(f) == 3)
        await asyncio.sleep(1.0)  # many poll intervals: a live subscription would have been served by now
        assert len(receiver.hits) == seen
        # Its owner enables it again: the held event and the new ones arrive, in order.
        r = await client.post(f"/v1/subscriptions/{sid}:enable", headers=auth(*SUBSCRIBER, subject="procurement"))
        assert r.status_code == 200 and r.json()["state"] == "active"
        await eventually(lambda: asyncio.sleep(0, receiver.delivered()), lambda d: len(d) >= 3)
        expected = await feed(client, auth, RESULT_RECORDED, USCC_A)
        assert [h.headers["webhook-id"] for h in receiver.delivered()] == [i["event"]["id"] for i in expected]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/hook", "http and https"),
        ("file:///etc/passwd", "http and https"),
        ("http://10.1.2.3/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "private"),
        ("http://localhost:8000/hook", "private"),
        ("http://[::1]/hook", "private"),
        ("https://user:pw@example.com/hook", "credentials"),
    ],
)
async def test_callback_urls_that_could_reach_inside_are_refused(
    data: Path,
    platform: PlatformSettings,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
    auth: Auth,
    url: str,
    why: str,
) -> None:
    async with embedded_suite(data, platform, clock, monkeypatch, QC_GATEWAY_WEBHOOK_ALLOWED_HOSTS="") as client:
        r = await client.post(
            "/v1/subscriptions", json={"url": url, "event_types": [RESULT_RECORDED]}, headers=auth(*SUBSCRIBER)
        )
        assert r.status_code == 422, r.text
        problem = r.json()
        assert problem["type"].endswith("callback-url-refused") and why in problem["errors"][0]["reason"]
        unknown = await client.post(
            "/v1/subscriptions",
            json={"url": "https://example.com/hook", "event_types": ["sampling.result.exploded.v1"]},
            headers=auth(*SUBSCRIBER),
        )
        assert unknown.status_code == 422 and unknown.json()["type"].endswith("unknown-event-type")


async def test_a_warning_is_raised_from_the_stream_and_delivered(
    data: Path, platform: PlatformSettings, clock: FixedClock, monkeypatch: pytest.MonkeyPatch, auth: Auth
) -> None:
    """Three final fails of one enterprise and category within a year: `repeated-final-fails`, to the
    subscription whose filters let that kind and district through."""
    owner = auth(*SUBSCRIBER, subject="procurement")
    async with receiving() as (receiver, url), embedded_suite(data, platform, clock, monkeypatch) as client:
        rules = (await client.get("/v1/warning-rules")).json()
        assert "repeated-final-fails" in {r["id"] for r in rules["rules"]} and rules["version"]
        sub = await subscribe(client, auth, url, [WARNING_RAISED], filters={"warning_kinds": ["repeated_final_fails"]})
        # Another kind only, and another district only: this warning is not theirs.
        others = [
            await subscribe(
                client, auth, url, [WARNING_RAISED], filters={"warning_kinds": ["fail_rate_above_baseline"]}
            ),
            await subscribe(client, auth, url, [WARNING_RAISED], filters={"districts": ["370203"]}),
        ]
        for i, day in enumerate(("2014-03-10", "2014-06-10", "2014-09-10")):
            body = result_body(
                f"W-{i}", conclusion="fail", sampling_date=day, production_date="2014-01-01", report_date=day
            )
            r = await client.post("/v1/results", json=body, headers=auth("sampling:write"))
            assert r.status_code == 201, r.text
        ran = await client.post("/services/sampling/v1/jobs/finalise-results:run", headers=auth("admin"))
        assert ran.status_code == 200 and ran.json()["changed"] == 3, ran.text

        async def warnings() -> list[dict[str, Any]]:
            r = await client.get("/v1/warnings", params={"kind": "repeated_final_fails"}, headers=auth("read"))
            items: list[dict[str, Any]] = r.json()["items"]
            return items

        (w,) = await eventually(warnings, lambda ws: len(ws) == 1)
        assert w["uscc"] == USCC_A and w["evidence"]["fails"] == 3 and len(w["evidence"]["results"]) == 3
        one = await client.get(f"/v1/warnings/{w['warning_id']}", headers=auth("read"))
        assert one.status_code == 200 and one.json() == w
        await settled(client, auth, sub["subscription_id"], 1)
        (hit,) = receiver.delivered()
        assert hit.event["type"] == WARNING_RAISED and hit.event["data"]["warning"]["warning_id"] == w["warning_id"]
        assert spec_verify(sub["secret"], hit.headers, hit.body)
        fanned = (await client.get(f"/v1/subscriptions/{sub['subscription_id']}", headers=owner)).json()["cursor"]
        for other in others:  # fanned out at least as far as the one that got it, and nothing for them
            await eventually(
                lambda o=other: client.get(f"/v1/subscriptions/{o['subscription_id']}", headers=owner),
                lambda r: decode_cursor(r.json()["cursor"], int) >= decode_cursor(fanned, int),
            )
            assert await deliveries(client, auth, other["subscription_id"]) == []
        none = await client.get("/v1/warnings", params={"kind": "repeated_final_fails"})
        assert none.status_code == 401
