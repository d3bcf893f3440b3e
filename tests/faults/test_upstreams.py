"""The gateway's upstream lists: replicas take requests in turn, and one that refuses the connection
passes the request to the next (services/gateway/upstream.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from services.gateway.upstream import Upstreams
from shared.errors import BadGateway
from tests.helpers import Served, free_port


def _replica(name: str) -> FastAPI:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, str]:
        return {"replica": name, "body": (await request.body()).decode()}

    return app


def _front(upstreams: Upstreams) -> FastAPI:
    app = FastAPI()

    @app.post("/echo")
    async def forward(request: Request) -> StreamingResponse:
        return await upstreams.forward("sampling", request)

    @app.exception_handler(BadGateway)
    async def unreachable(_: Request, exc: BadGateway) -> StreamingResponse:
        return StreamingResponse(iter([exc.slug.encode()]), status_code=exc.status)

    return app


@pytest.fixture
async def replicas() -> AsyncIterator[list[Served]]:
    served = [await Served(_replica(name)).start() for name in ("a", "b")]
    try:
        yield served
    finally:
        for s in served:
            await s.stop()


async def _answers(upstreams: Upstreams, n: int) -> list[str]:
    app = _front(upstreams)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
        out = []
        for i in range(n):
            r = await client.post("/echo", content=f"request {i}")
            out.append(r.json()["replica"] if r.status_code == 200 else f"{r.status_code} {r.text}")
            if r.status_code == 200:
                assert r.json()["body"] == f"request {i}"  # the body reaches the replica that answers
    return out


async def test_replicas_take_requests_in_turn(replicas: list[Served]) -> None:
    upstreams = Upstreams({"sampling": ",".join(s.url for s in replicas)}, timeout_s=5)
    try:
        assert await _answers(upstreams, 4) == ["a", "b", "a", "b"]
    finally:
        await upstreams.aclose()


async def test_a_replica_that_refuses_the_connection_passes_the_request_on(replicas: list[Served]) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    upstreams = Upstreams({"sampling": f"{replicas[0].url}, {dead}"}, timeout_s=5)
    try:
        assert await _answers(upstreams, 4) == ["a", "a", "a", "a"]
    finally:
        await upstreams.aclose()


async def test_no_replica_answering_is_a_bad_gateway() -> None:
    dead = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]
    upstreams = Upstreams({"sampling": ",".join(dead)}, timeout_s=5)
    try:
        assert await _answers(upstreams, 1) == ["502 upstream-unreachable"]
    finally:
        await upstreams.aclose()
