"""The routes the gateway forwards to their owning service, with the scope each needs.

Scopes are checked here and again by the service: the gateway refuses early, the service stays
safe when reached directly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from services.gateway.upstream import Upstreams
from shared.auth import require
from shared.problems import PROBLEM_SCHEMA


@dataclass(frozen=True)
class Forward:
    service: str
    method: str
    path: str
    scope: str | None  # None: public
    summary: str
    tag: str


FORWARDS: tuple[Forward, ...] = (
    Forward("sampling", "POST", "/v1/results", "sampling:write", "Record one result", "sampling"),
    Forward("sampling", "POST", "/v1/results:batch", "sampling:write", "Record up to 10,000 results", "sampling"),
    Forward("sampling", "GET", "/v1/results", "read", "List results", "sampling"),
    Forward("sampling", "GET", "/v1/results:export", "read", "Export results as CSV", "sampling"),
    Forward("sampling", "GET", "/v1/results/{result_id}", "read", "One result", "sampling"),
    Forward("sampling", "GET", "/v1/results/{result_id}/history", "read", "A result's versions", "sampling"),
    Forward("sampling", "PATCH", "/v1/results/{result_id}", "sampling:write", "Correct a result", "sampling"),
    Forward("sampling", "POST", "/v1/results/{result_id}:retract", "sampling:write", "Retract a result", "sampling"),
    Forward(
        "sampling",
        "POST",
        "/v1/results/{result_id}/reinspection",
        "sampling:write",
        "Record a re-inspection",
        "sampling",
    ),
    Forward("sampling", "GET", "/v1/stats/pass-rates", "read", "Pass rates from the sampling service", "sampling"),
    Forward("sampling", "GET", "/v1/agencies/{code}/scorecard", "read", "An agency's scorecard", "sampling"),
    Forward("sampling", "GET", "/v1/regions", None, "Districts with validity dates", "reference"),
    Forward("sampling", "GET", "/v1/rules", None, "Sampling rules in force", "reference"),
)


def _endpoint(fwd: Forward) -> Callable[..., Awaitable[StreamingResponse]]:
    async def endpoint(request: Request) -> StreamingResponse:
        upstreams: Upstreams = request.app.state.upstreams
        return await upstreams.forward(fwd.service, request)

    return endpoint


def forwarding_router(forwards: tuple[Forward, ...] = FORWARDS) -> APIRouter:
    router = APIRouter()
    errors: dict[int | str, dict[str, Any]] = {s: PROBLEM_SCHEMA for s in (401, 403, 422, 502, 504)}
    for fwd in forwards:
        deps = [require(fwd.scope)] if fwd.scope else []
        router.add_api_route(
            fwd.path,
            _endpoint(fwd),
            methods=[fwd.method],
            summary=f"{fwd.summary} (→ {fwd.service})",
            tags=[fwd.tag],
            dependencies=deps,
            responses=errors,
            response_class=StreamingResponse,
            name=f"{fwd.service}:{fwd.method}:{fwd.path}",
        )
    return router
