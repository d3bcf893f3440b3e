"""Warnings as a workflow, embedded and distributed: raised -> acknowledged -> closed with who, when
and a note, under If-Match; deduplicated while not closed and raised anew after a close; every step an
event in the change feed; the filters; and (embedded) a rebuild of the read models leaves the warnings
as they were."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.gateway.rebuild import rebuild_from_feed
from shared.clock import FixedClock
from shared.contracts.gateway import WARNING_ACKNOWLEDGED, WARNING_CLOSED, WARNING_EVENTS, WARNING_RAISED
from shared.contracts.sampling import RESULT_FINALISED
from shared.settings import PlatformSettings
from tests.e2e.modes import gateway_client
from tests.factories import USCC_A, result_body
from tests.helpers import eventually

Auth = Callable[..., dict[str, str]]
HANDLER = ("warnings:write",)
#: The suite's clock: mid-2015, so 2014's fails are past their objection window.
STARTED = datetime(2015, 6, 1, 4, 0, tzinfo=UTC)


async def final_fails(client: httpx.AsyncClient, auth: Auth, days: list[str], prefix: str) -> None:
    """Final fails of USCC_A's 饮料 on these days (recorded, then finalised by the job), waited for
    until the gateway applied them (the warnings of a batch are raised in its transaction)."""
    for i, day in enumerate(days):
        body = result_body(
            f"{prefix}-{i}", conclusion="fail", sampling_date=day, production_date="2014-01-01", report_date=day
        )
        r = await client.post("/v1/results", json=body, headers=auth("sampling:write"))
        assert r.status_code == 201, r.text
    before = len(await feed(client, auth, (RESULT_FINALISED,)))
    ran = await client.post("/v1/sampling/jobs/finalise-results:run", headers=auth("admin"))
    assert ran.status_code == 200 and ran.json()["changed"] == len(days), ran.text
    await eventually(lambda: feed(client, auth, (RESULT_FINALISED,)), lambda es: len(es) == before + len(days))


async def feed(client: httpx.AsyncClient, auth: Auth, types: tuple[str, ...]) -> list[dict[str, Any]]:
    """The events of these types about USCC_A in the change feed, in order."""
    r = await client.get("/v1/changes", params={"subject": USCC_A, "limit": 1000}, headers=auth("read"))
    assert r.status_code == 200, r.text
    return [i["event"] for i in r.json()["items"] if i["event"]["type"] in types]


async def warnings(client: httpx.AsyncClient, auth: Auth, **params: str) -> list[dict[str, Any]]:
    r = await client.get("/v1/warnings", params=params, headers=auth("read"))
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def workflow(client: httpx.AsyncClient, auth: Auth, now: datetime) -> list[dict[str, Any]]:
    """Raise, refuse what must be refused, acknowledge, deduplicate, close, raise again; returns the
    warning events of the change feed. `now`: the suite's clock."""
    await final_fails(client, auth, ["2014-03-10", "2014-06-10", "2014-09-10"], "W")
    (w,) = await eventually(lambda: warnings(client, auth, kind="repeated_final_fails"), lambda ws: len(ws) == 1)
    assert w["state"] == "open" and w["version"] == 1 and w["occurrence"] == 1 and w["acknowledged_by"] is None
    wid = w["warning_id"]
    got = await client.get(f"/v1/warnings/{wid}", headers=auth("read"))
    assert got.status_code == 200 and got.headers["etag"] == '"1"' and got.json() == w

    ack = f"/v1/warnings/{wid}:acknowledge"
    note = {"note": "已通知市场监管所核查"}
    # Who may, and the preconditions: a reader may not; without If-Match 428; a stale one 412.
    assert (await client.post(ack, json=note, headers={**auth("read"), "If-Match": '"1"'})).status_code == 403
    r = await client.post(ack, json=note, headers=auth(*HANDLER))
    assert r.status_code == 428 and r.json()["type"].endswith("precondition-required")
    r = await client.post(ack, json=note, headers={**auth(*HANDLER), "If-Match": '"7"'})
    assert r.status_code == 412 and r.json()["type"].endswith("precondition-failed")
    r = await client.post(ack, json={"note": "x", "extra": 1}, headers={**auth(*HANDLER), "If-Match": '"1"'})
    assert r.status_code == 422
    missing = await client.post("/v1/warnings/nope:acknowledge", json=note, headers={**auth(*HANDLER), "If-Match": "*"})
    assert missing.status_code == 404 and missing.json()["type"].endswith("warning-not-found")
    unchanged = (await client.get(f"/v1/warnings/{wid}", headers=auth("read"))).json()
    assert unchanged == w  # every refusal changed nothing

    r = await client.post(ack, json=note, headers={**auth(*HANDLER, subject="inspector-li"), "If-Match": '"1"'})
    assert r.status_code == 200, r.text
    acked = r.json()
    assert r.headers["etag"] == '"2"'
    assert acked["state"] == "acknowledged" and acked["version"] == 2
    assert acked["acknowledged_by"] == "inspector-li" and acked["acknowledged_note"] == note["note"]
    assert datetime.fromisoformat(acked["acknowledged_at"]) == now  # the service clock
    again = await client.post(ack, json=note, headers={**auth(*HANDLER), "If-Match": '"2"'})
    assert again.status_code == 409 and again.json()["type"].endswith("warning-state-conflict")
    assert again.json()["state_now"] == "acknowledged"

    # The filters: state, kind, district, category, enterprise.
    assert [x["warning_id"] for x in await warnings(client, auth, state="acknowledged")] == [wid]
    assert await warnings(client, auth, state="open") == []
    assert [x["warning_id"] for x in await warnings(client, auth, category="饮料", uscc=USCC_A)] == [wid]
    assert await warnings(client, auth, category="乳制品") == []
    assert await warnings(client, auth, kind="fail_rate_above_baseline") == []
    bad = await client.get("/v1/warnings", params={"state": "raised"}, headers=auth("read"))
    assert bad.status_code == 422

    # Deduplicated while not closed: a fourth final fail in the year raises nothing new.
    await final_fails(client, auth, ["2014-10-10"], "W4")
    assert [x["warning_id"] for x in await warnings(client, auth, kind="repeated_final_fails")] == [wid]

    close = f"/v1/warnings/{wid}:close"
    r = await client.post(close, json={}, headers={**auth(*HANDLER), "If-Match": '"2"'})
    assert r.status_code == 422  # a close needs its reason
    r = await client.post(
        close,
        json={"note": "企业已整改，复检合格"},
        headers={**auth(*HANDLER, subject="chief-wang"), "If-Match": '"2"'},
    )
    assert r.status_code == 200, r.text
    closed = r.json()
    assert closed["state"] == "closed" and closed["closed_by"] == "chief-wang" and closed["version"] == 3
    assert closed["acknowledged_by"] == "inspector-li"  # the earlier step is kept
    r = await client.post(close, json={"note": "again"}, headers={**auth(*HANDLER), "If-Match": '"3"'})
    assert r.status_code == 409

    # After the close the same condition raises again: its next occurrence, with an id of its own.
    await final_fails(client, auth, ["2014-11-10"], "W5")
    ws = await eventually(lambda: warnings(client, auth, kind="repeated_final_fails"), lambda ws: len(ws) == 2)
    new = next(x for x in ws if x["warning_id"] != wid)
    assert new["state"] == "open" and new["occurrence"] == 2 and new["evidence"]["fails"] == 5
    assert [x["warning_id"] for x in await warnings(client, auth, state="closed")] == [wid]

    # Each step is an event in the change feed (and so on the webhooks), in order, with the warning's state.
    events = await feed(client, auth, WARNING_EVENTS)
    assert [(e["type"], e["data"]["warning"]["warning_id"]) for e in events] == [
        (WARNING_RAISED, wid),
        (WARNING_ACKNOWLEDGED, wid),
        (WARNING_CLOSED, wid),
        (WARNING_RAISED, new["warning_id"]),
    ]
    assert events[2]["data"]["warning"] == closed
    assert len({e["id"] for e in events}) == 4

    return events


@pytest.mark.parametrize(
    "mode", ["embedded", pytest.param("distributed", marks=[pytest.mark.kafka, pytest.mark.postgres])]
)
async def test_a_warning_is_acknowledged_closed_and_its_condition_raises_again(
    mode: str,
    tmp_path: Path,
    platform: PlatformSettings,
    kafka_bootstrap: str,
    pg_database: Callable[[str], Any],
    auth: Auth,
) -> None:
    async for client in gateway_client(mode, STARTED, tmp_path, platform, kafka_bootstrap, pg_database):
        await workflow(client, auth, STARTED)


async def test_a_rebuild_leaves_the_warnings_and_their_workflow(
    embedded: tuple[FastAPI, httpx.AsyncClient], auth: Auth, clock: FixedClock
) -> None:
    """Warnings are the gateway's own records: a rebuild of the read models from the change feed leaves
    them, their workflow and their events as they were; two steps from the same version: one wins."""
    app, client = embedded
    await workflow(client, auth, clock.now())
    (w,) = await warnings(client, auth, state="open")
    answers = await asyncio.gather(
        *(
            client.post(
                f"/v1/warnings/{w['warning_id']}:close",
                json={"note": f"closed by {who}"},
                headers={**auth(*HANDLER, subject=who), "If-Match": '"1"'},
            )
            for who in ("a", "b")
        )
    )
    assert sorted(r.status_code for r in answers) == [200, 412]
    before = await warnings(client, auth)
    events = await feed(client, auth, WARNING_EVENTS)
    await rebuild_from_feed(app.state.runtime.db)
    assert await warnings(client, auth) == before
    assert await feed(client, auth, WARNING_EVENTS) == events
