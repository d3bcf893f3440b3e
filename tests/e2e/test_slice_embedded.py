"""The slice in embedded mode: a result written to sampling reaches the gateway's read model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from services.sampling.models import outbox, results
from tests.factories import result_body as result
from tests.helpers import eventually

Suite = tuple[FastAPI, httpx.AsyncClient]


async def _rates(client: httpx.AsyncClient) -> dict[str, tuple[int, int]]:
    r = await client.get("/v1/pass-rates")
    assert r.status_code == 200
    return {g["sector"]: (g["n"], g["passed"]) for g in r.json()["groups"]}


async def _stored(app: FastAPI) -> tuple[int, int]:
    runtime = app.state.embedded_services["sampling"].state.runtime
    async with runtime.unit_of_work() as uow:
        n_results = await uow.session.scalar(select(func.count()).select_from(results))
        n_events = await uow.session.scalar(select(func.count()).select_from(outbox))
    return int(n_results or 0), int(n_events or 0)


async def test_result_posted_to_gateway_and_to_service_reaches_read_model(
    embedded: Suite, auth: Callable[..., dict[str, str]]
) -> None:
    app, client = embedded
    h = auth("sampling:write", "read")
    r1 = await client.post("/v1/results", json=result("R-1"), headers=h)  # through the gateway's route
    assert r1.status_code == 201, r1.text
    assert r1.headers["location"] == f"/v1/results/{r1.json()['id']}"
    assert r1.json()["agency_code"] == "QD-AGENCY-1"  # from the token, not the body
    r2 = await client.post(
        "/services/sampling/v1/results", json=result("R-2", conclusion="fail", sector="food"), headers=h
    )  # directly on the service
    assert r2.status_code == 201, r2.text
    rates = await eventually(lambda: _rates(client), lambda v: v.get("food") == (2, 1))
    assert rates == {"food": (2, 1)}
    got = await client.get(f"/v1/results/{r1.json()['id']}", headers=h)
    assert got.status_code == 200 and got.json()["report_no"] == "R-1"
    pr = (await client.get("/v1/pass-rates")).json()["groups"][0]
    assert pr["rate"] == 0.5 and 0 < pr["wilson_95"][0] < 0.5 < pr["wilson_95"][1] < 1


async def test_resending_the_same_report_is_idempotent_and_other_content_conflicts(
    embedded: Suite, auth: Callable[..., dict[str, str]]
) -> None:
    app, client = embedded
    h = auth("sampling:write", "read")
    first = await client.post("/v1/results", json=result("R-9"), headers=h)
    again = await client.post("/v1/results", json=result("R-9"), headers=h)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    clash = await client.post("/v1/results", json=result("R-9", conclusion="fail"), headers=h)
    assert clash.status_code == 409
    assert clash.json()["type"] == "urn:qualitycity:problem:report-conflict"
    await eventually(lambda: _rates(client), lambda v: v.get("food") == (1, 1))
    assert await _stored(app) == (1, 1)


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (result(uscc="91370200163562681X"), "uscc", "check digit"),
        (result(colour="red"), "colour", "unknown field"),
        ({k: v for k, v in result().items() if k != "sector"}, "sector", "field required"),
        (result(conclusion="maybe"), "conclusion", "'pass' or 'fail'"),
    ],
    ids=["bad-check-digit", "unknown-field", "missing-field", "unknown-enum"],
)
async def test_bad_input_gets_a_problem_naming_the_field_and_stores_nothing(
    embedded: Suite, auth: Callable[..., dict[str, str]], body: dict[str, Any], field: str, reason: str
) -> None:
    app, client = embedded
    for path in ("/v1/results", "/services/sampling/v1/results"):
        r = await client.post(path, json=body, headers=auth("sampling:write"))
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        problem = r.json()
        assert problem["type"] == "urn:qualitycity:problem:validation-error"
        assert problem["status"] == 422
        assert [e["field"] for e in problem["errors"]] == [field]
        assert reason in problem["errors"][0]["reason"]
    assert await _stored(app) == (0, 0)


async def test_writes_need_a_token_and_the_scope(embedded: Suite, auth: Callable[..., dict[str, str]]) -> None:
    app, client = embedded
    for path in ("/v1/results", "/services/sampling/v1/results"):
        none = await client.post(path, json=result())
        assert none.status_code == 401
        assert none.json()["type"] == "urn:qualitycity:problem:unauthenticated"
        assert none.headers["www-authenticate"].startswith("Bearer")
        forged = await client.post(path, json=result(), headers={"Authorization": "Bearer not.a.jwt"})
        assert forged.status_code == 401
        weak = await client.post(path, json=result(), headers=auth("read"))
        assert weak.status_code == 403
        assert weak.json()["required_scope"] == "sampling:write"
    no_agency = await client.post("/v1/results", json=result(), headers=auth("sampling:write", agency=None))
    assert no_agency.status_code == 403
    assert await _stored(app) == (0, 0)


async def test_health_readiness_and_metrics(embedded: Suite) -> None:
    app, client = embedded
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "bus": "ok", "tasks": "ok"}
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200 and "http_request" in metrics.text
    rid = await client.get("/healthz", headers={"x-request-id": "abc-123"})
    assert rid.headers["x-request-id"] == "abc-123"
