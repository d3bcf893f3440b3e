"""The quarantine's admin API through the gateway, embedded: list, inspect, replay, discard, per service
at `/v1/quarantine/{service}` (`admin` only)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import httpx
import orjson
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway import repository
from services.sampling.models import outbox as sampling_outbox
from shared.consumer import Received
from shared.contracts.sampling import RESULT_RECORDED
from shared.events import Envelope
from shared.outbox import add_to_outbox
from tests.factories import result_body
from tests.helpers import eventually

Auth = Callable[..., dict[str, str]]


async def _listed(client: httpx.AsyncClient, service: str, headers: dict[str, str], **params: Any) -> Any:
    r = await client.get(f"/v1/quarantine/{service}", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_admin_lists_inspects_replays_and_discards_quarantined_events_through_the_gateway(
    suite: tuple[FastAPI, httpx.AsyncClient], auth: Auth
) -> None:
    app, client = suite
    admin, reader = auth("admin", subject="operator"), auth("read")
    sampling = app.state.embedded_services["sampling"].state.runtime
    # A producer bug: a known type whose payload its contract refuses, in the sampling outbox. The
    # gateway and the credit service both consume sampling events: each quarantines it.
    bad, worse = (
        Envelope(type=type_, source="/qualitycity/sampling", subject="91370200163562681G", data={"foo": 1})
        for type_ in (RESULT_RECORDED, "sampling.result.recorded.v9")  # the second: a type no contract defines
    )
    async with sampling.unit_of_work() as uow:
        await add_to_outbox(uow.session, sampling_outbox, [bad, worse])
        await uow.commit()

    for service in ("gateway", "credit"):
        listed = await eventually(lambda s=service: _listed(client, s, admin), lambda p: len(p["items"]) == 2)
        newest, oldest = listed["items"]
        assert [(i["event_id"], i["type"], i["reason"], i["state"], i["consumer"]) for i in (oldest, newest)] == [
            (bad.id, RESULT_RECORDED, "invalid", "quarantined", service),
            (worse.id, worse.type, "unknown-type", "quarantined", service),
        ]
        assert "event" not in newest and listed["next_cursor"] is None
        first = await _listed(client, service, admin, limit=1)  # paged, newest first
        second = await _listed(client, service, admin, limit=1, cursor=first["next_cursor"])
        assert [first["items"][0]["id"], second["items"][0]["id"]] == [newest["id"], oldest["id"]]
        assert second["next_cursor"] is None
        by_type = await _listed(client, service, admin, type=RESULT_RECORDED)
        assert [i["id"] for i in by_type["items"]] == [oldest["id"]]

    # `read` is not enough for any of it, at the gateway as at the service.
    qid = (await _listed(client, "credit", admin, type=RESULT_RECORDED))["items"][0]["id"]
    for method, path, body in (
        ("GET", "/v1/quarantine/credit", None),
        ("GET", f"/v1/quarantine/credit/{qid}", None),
        ("POST", f"/v1/quarantine/credit/{qid}:replay", None),
        ("POST", f"/v1/quarantine/credit/{qid}:discard", {"reason": "x"}),
        ("GET", "/v1/quarantine/gateway", None),
        ("GET", "/services/credit/v1/quarantine", None),
    ):
        r = await client.request(method, path, json=body, headers=reader)
        assert r.status_code == 403, (path, r.text)
        assert r.json()["type"].endswith("insufficient-scope")

    detail = (await client.get(f"/v1/quarantine/credit/{qid}", headers=admin)).json()
    assert detail["event"]["data"] == {"foo": 1} and detail["event"]["id"] == bad.id
    assert detail["error_class"] == "pydantic_core._pydantic_core.ValidationError"
    assert "result" in detail["error"] and detail["attempts"] == 1 and detail["raw_base64"] is None

    # Replayed as it is, it fails again: still quarantined, one more attempt, the new error.
    r = await client.post(f"/v1/quarantine/credit/{qid}:replay", headers=admin)
    assert r.status_code == 409, r.text
    assert r.json()["type"].endswith("replay-failed") and r.json()["attempts"] == 2
    again = (await client.get(f"/v1/quarantine/credit/{qid}", headers=admin)).json()
    assert (again["state"], again["attempts"]) == ("quarantined", 2)

    r = await client.post(f"/v1/quarantine/credit/{qid}:discard", json={}, headers=admin)
    assert r.status_code == 422, r.text  # a discard says why
    r = await client.post(f"/v1/quarantine/credit/{qid}:discard", json={"reason": "producer bug"}, headers=admin)
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["acted_by"], r.json()["note"]) == ("discarded", "operator", "producer bug")
    r = await client.post(f"/v1/quarantine/credit/{qid}:discard", json={"reason": "twice"}, headers=admin)
    assert r.status_code == 409 and r.json()["type"].endswith("not-quarantined"), r.text
    assert [i["event_id"] for i in (await _listed(client, "credit", admin, state="quarantined"))["items"]] == [worse.id]
    assert [i["id"] for i in (await _listed(client, "credit", admin, state="discarded"))["items"]] == [qid]
    r = await client.get("/v1/quarantine/credit/no-such-id", headers=admin)
    assert r.status_code == 404 and r.json()["type"].endswith("quarantined-event-not-found"), r.text


async def test_an_event_a_handler_bug_refused_is_replayed_once_the_bug_is_fixed(
    suite: tuple[FastAPI, httpx.AsyncClient], auth: Auth
) -> None:
    app, client = suite
    admin = auth("admin", subject="operator")
    writer = auth("sampling:write", "read", agency="QD-AGENCY-1")
    consumer = app.state.runtime.consumer
    fixed = consumer.batch_handler

    async def buggy(session: AsyncSession, events: Sequence[Received[Any]]) -> None:
        if any(e.payload.result.report_no == "QD-BUG-1" for e in events):
            raise KeyError("result")
        await fixed(session, events)

    consumer.batch_handler = buggy
    for report_no in ("QD-BUG-1", "QD-OK-1"):
        r = await client.post("/v1/results", json=result_body(report_no), headers=writer)
        assert r.status_code == 201, r.text

    async def rates() -> list[dict[str, Any]]:
        async with app.state.runtime.unit_of_work() as uow:
            return await repository.pass_rates_by_sector(uow.session)

    listed = await eventually(lambda: _listed(client, "gateway", admin, type=RESULT_RECORDED), lambda p: p["items"])
    (item,) = listed["items"]
    assert (item["reason"], item["attempts"], item["error_class"]) == ("apply-failed", 3, "KeyError")
    # The other result applied (in a later batch when the relay sent the two apart: waited for, not raced).
    await eventually(rates, lambda r: r == [{"sector": "food", "n": 1, "passed": 1}])
    metrics = (await client.get("/metrics")).text
    assert 'qc_events_quarantined_total{consumer="gateway",reason="apply-failed"} 1.0' in metrics
    assert 'qc_quarantined_events{consumer="gateway"} 1.0' in metrics

    consumer.batch_handler = fixed  # the fix is deployed
    r = await client.post(f"/v1/quarantine/gateway/{item['id']}:replay", headers=admin)
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["acted_by"]) == ("replayed", "operator")
    assert await rates() == [{"sector": "food", "n": 2, "passed": 2}]
    r = await client.post(f"/v1/quarantine/gateway/{item['id']}:replay", headers=admin)
    assert r.status_code == 409 and r.json()["type"].endswith("not-quarantined")  # applied once, not twice
    assert await rates() == [{"sector": "food", "n": 2, "passed": 2}]
    assert 'qc_quarantined_events{consumer="gateway"} 0.0' in (await client.get("/metrics")).text


async def test_two_bad_events_in_a_batch_of_ten_are_isolated_and_the_eight_others_apply_once(
    suite: tuple[FastAPI, httpx.AsyncClient], auth: Auth
) -> None:
    app, client = suite
    writer = auth("sampling:write", "read", agency="QD-AGENCY-1")
    consumer = app.state.runtime.consumer
    fixed = consumer.batch_handler
    calls: list[int] = []

    async def buggy(session: AsyncSession, events: Sequence[Received[Any]]) -> None:
        calls.append(len(events))
        if any(e.payload.result.report_no in ("QD-B-3", "QD-B-8") for e in events):
            raise ValueError("a handler bug")
        await fixed(session, events)

    consumer.batch_handler = buggy
    rows = [result_body(f"QD-B-{i}") for i in range(10)]
    r = await client.post(
        "/v1/results:batch",
        content=b"\n".join(orjson.dumps(row) for row in rows),
        headers=writer | {"content-type": "application/x-ndjson"},
    )
    assert r.status_code in (200, 201), r.text

    async def rates() -> list[dict[str, Any]]:
        async with app.state.runtime.unit_of_work() as uow:
            return await repository.pass_rates_by_sector(uow.session)

    admin = auth("admin")
    listed = await eventually(lambda: _listed(client, "gateway", admin), lambda p: len(p["items"]) == 2)
    # The good events after the last culprit apply after its quarantine: waited for, not raced.
    assert await eventually(rates, lambda r: r == [{"sector": "food", "n": 8, "passed": 8}]) == [
        {"sector": "food", "n": 8, "passed": 8}
    ]
    assert (
        sorted((i["reason"], i["attempts"], i["error"]) for i in listed["items"])
        == [("apply-failed", 3, "a handler bug")] * 2
    )
    assert calls[:2] == [10, 5]  # the whole batch first, then halves down to each culprit
