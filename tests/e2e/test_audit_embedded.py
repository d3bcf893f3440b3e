"""The audit record of writes, embedded mode: who, when, request id, what, outcome, client address."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select
from starlette.types import Receive, Scope, Send

from services.sampling.models import audit_log, idempotency_keys
from shared.audit import AuditMiddleware
from tests.factories import result_body

Suite = tuple[FastAPI, httpx.AsyncClient]
Auth = Callable[..., dict[str, str]]
CLIENT = "203.0.113.7"  # what a trusted proxy in front of the gateway says the client is


async def audit(client: httpx.AsyncClient, h: dict[str, str], service: str, **params: Any) -> list[dict[str, Any]]:
    r = await client.get(f"/v1/audit/{service}", params=params, headers=h)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_writes_through_the_gateway_are_recorded_with_who_what_and_where(suite: Suite, auth: Auth) -> None:
    _, client = suite
    admin = auth("admin")
    owner = auth("sampling:write", "read", subject="inspector-1", agency="QD-AGENCY-1")
    edge = {"X-Forwarded-For": CLIENT}
    created = await client.post(
        "/v1/results", json=result_body("AU-1"), headers=owner | edge | {"X-Request-ID": "req-audit-1"}
    )
    assert created.status_code == 201, created.text
    result_id = created.json()["id"]
    path = f"/v1/results/{result_id}"
    body = {"reason": "typo", "changes": {"brand": "B"}}
    ok = await client.patch(
        path, json=body, headers=owner | edge | {"If-Match": created.headers["etag"], "X-Request-ID": "req-audit-2"}
    )
    assert ok.status_code == 200, ok.text
    other = auth("sampling:write", subject="inspector-9", agency="QD-AGENCY-2")
    foreign = await client.patch(path, json=body, headers=other | edge | {"If-Match": ok.headers["etag"]})
    assert foreign.status_code == 403
    stale = await client.patch(path, json=body, headers=owner | edge | {"If-Match": created.headers["etag"]})
    assert stale.status_code == 412

    rows = await audit(client, admin, "sampling")
    assert [(r["method"], r["route"], r["status"], r["outcome"], r["subject"]) for r in rows] == [
        ("PATCH", "/v1/results/{result_id}", 412, "refused", "inspector-1"),
        ("PATCH", "/v1/results/{result_id}", 403, "refused", "inspector-9"),
        ("PATCH", "/v1/results/{result_id}", 200, "committed", "inspector-1"),
        ("POST", "/v1/results", 201, "committed", "inspector-1"),
    ]
    stale_row, foreign_row, patched, posted = rows
    assert posted["request_id"] == "req-audit-1" and patched["request_id"] == "req-audit-2"
    assert {r["client"] for r in rows} == {CLIENT}
    assert foreign_row["agency"] == "QD-AGENCY-2" and posted["agency"] == "QD-AGENCY-1"
    assert patched["resource"] == {"result_id": result_id} and posted["resource"] is None
    assert (patched["version_before"], patched["version_after"]) == (1, 2)
    assert stale_row["version_after"] is None
    assert all(abs(datetime.fromisoformat(r["at"]) - datetime.now(UTC)) < timedelta(minutes=1) for r in rows)
    # The service recorded them; the gateway, which forwarded, did not record them again.
    assert await audit(client, admin, "gateway") == []
    # Reads are not audited; the same rows directly from the service.
    direct = (await client.get("/services/sampling/v1/audit", headers=admin)).json()["items"]
    assert direct == rows


async def test_filters_and_pages(suite: Suite, auth: Auth) -> None:
    _, client = suite
    admin = auth("admin")
    for n, subject in enumerate(("a-1", "a-2", "a-1")):
        h = auth("sampling:write", subject=subject)
        assert (await client.post("/v1/results", json=result_body(f"F-{n}"), headers=h)).status_code == 201
    assert [r["subject"] for r in await audit(client, admin, "sampling", subject="a-1")] == ["a-1", "a-1"]
    assert len(await audit(client, admin, "sampling", agency="QD-AGENCY-1")) == 3
    assert await audit(client, admin, "sampling", agency="nobody") == []
    assert len(await audit(client, admin, "sampling", path="/v1/results")) == 3
    assert await audit(client, admin, "sampling", path="/v1/results/") == []
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert await audit(client, admin, "sampling", **{"from": future}) == []
    assert len(await audit(client, admin, "sampling", to=future)) == 3
    first = (await client.get("/v1/audit/sampling", params={"limit": 2}, headers=admin)).json()
    rest = (
        await client.get("/v1/audit/sampling", params={"limit": 2, "cursor": first["next_cursor"]}, headers=admin)
    ).json()
    assert len(first["items"]) == 2 and len(rest["items"]) == 1 and rest["next_cursor"] is None
    everything = [r["id"] for r in await audit(client, admin, "sampling")]
    assert [r["id"] for r in first["items"] + rest["items"]] == everything


async def test_writes_the_gateway_refuses_are_recorded_by_the_gateway(suite: Suite, auth: Auth) -> None:
    _, client = suite
    admin = auth("admin")
    reader = auth("read", subject="reader-1")
    assert (await client.post("/v1/results", json=result_body("G-1"), headers=reader)).status_code == 403
    assert (await client.post("/v1/results", json=result_body("G-2"))).status_code == 401
    rows = await audit(client, admin, "gateway")
    assert [(r["route"], r["status"], r["subject"], r["outcome"]) for r in rows] == [
        ("/v1/results", 401, None, "refused"),
        ("/v1/results", 403, "reader-1", "refused"),
    ]
    assert await audit(client, admin, "sampling") == []
    # Refused directly by the mounted service: recorded there once, not by the gateway around it.
    assert (
        await client.post("/services/sampling/v1/results", json=result_body("G-3"), headers=reader)
    ).status_code == 403
    assert len(await audit(client, admin, "sampling")) == 1
    assert len(await audit(client, admin, "gateway")) == 2
    # The gateway's own writes are its to record.
    report = {
        "indicator": "expressway_good_road_rate",
        "period_start": "2014-01-01",
        "period_end": "2014-12-31",
        "value": 0.97,
        "reporting_system": "公路养护管理系统",
        "evidence_ref": "鲁交公路〔2015〕3号",
    }
    h = auth("indicators:write", subject="road-system", agency=None)
    assert (await client.post("/v1/indicator-reports", json=report, headers=h)).status_code == 201
    latest = (await audit(client, admin, "gateway"))[0]
    assert (latest["route"], latest["status"], latest["subject"], latest["agency"], latest["outcome"]) == (
        "/v1/indicator-reports",
        201,
        "road-system",
        None,
        "committed",
    )


@pytest.mark.parametrize("service", ["sampling", "credit", "awards", "gateway"])
async def test_only_admin_reads_the_audit_and_nothing_changes_it(suite: Suite, auth: Auth, service: str) -> None:
    _, client = suite
    everyone_else = auth(*(s for s in ("read", "sampling:write", "credit:write", "credit:review", "awards:write")))
    assert (await client.get(f"/v1/audit/{service}", headers=everyone_else)).status_code == 403
    assert (await client.get(f"/v1/audit/{service}")).status_code == 401
    direct = "/v1/audit/gateway" if service == "gateway" else f"/services/{service}/v1/audit"
    assert (await client.get(direct, headers=everyone_else)).status_code == 403
    for method in ("PUT", "PATCH", "DELETE", "POST"):
        for path in (f"/v1/audit/{service}", direct, f"{direct}/x"):
            r = await client.request(method, path, headers=auth("admin"), json={})
            assert r.status_code in (404, 405), (method, path, r.status_code)
    spec = (await client.get("/openapi.json")).json()
    assert {m for p, ops in spec["paths"].items() if p.startswith("/v1/audit") for m in ops} == {"get"}


async def test_a_rolled_back_write_leaves_no_audit_row_and_a_committed_one_always_has_one(suite: Suite) -> None:
    app, _ = suite
    await rolled_back_and_committed(app.state.embedded_services["sampling"].state.runtime)


async def rolled_back_and_committed(runtime: Any) -> None:
    """Two write requests through the service's audit middleware, each storing a row in a unit of work
    of the service's database: the one that fails after storing leaves neither its row nor an audit
    row; the one that commits leaves both."""

    async def write(scope: Scope, receive: Receive, send: Send) -> None:
        """A route that stores a row, then fails (`/fail`) or commits."""
        async with runtime.unit_of_work() as uow:
            row = {"principal": "p", "key": scope["path"], "request_hash": "h", "status": 201, "body": ""}
            await uow.session.execute(insert(idempotency_keys).values({**row, "created_at": datetime.now(UTC)}))
            if scope["path"] == "/fail":
                raise RuntimeError("the write fails after storing")
            await uow.commit()
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    audited = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=AuditMiddleware(write, audit_log, runtime)), base_url="http://sampling"
    )
    async with audited:
        with pytest.raises(RuntimeError, match="fails after storing"):
            await audited.post("/fail")
        assert (await audited.post("/ok")).status_code == 201

    async with runtime.unit_of_work() as uow:
        keys = list(
            await uow.session.scalars(select(idempotency_keys.c.key).where(idempotency_keys.c.principal == "p"))
        )
        audits = list(
            await uow.session.scalars(select(audit_log.c.route).where(audit_log.c.route.in_(["/fail", "/ok"])))
        )
    assert keys == ["/ok"]
    assert audits == ["/ok"]
