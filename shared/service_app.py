"""What every service app has: request ids, problem+json errors, health, readiness and metrics."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request
from prometheus_client import CollectorRegistry
from prometheus_fastapi_instrumentator import Instrumentator
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from shared.auth import require
from shared.errors import JobNotFound, NotReady, UriTooLong
from shared.openapi import install as install_openapi
from shared.openapi import operation_id
from shared.problems import error_response, install_problem_handlers
from shared.quarantine import QuarantineMetrics
from shared.routing import Admin, Reader, segment_params
from shared.scheduler import ScheduledJob

REQUEST_ID = "x-request-id"
#: A caller's request id is kept only in this form (it goes into logs and back into a header).
_SAFE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,128}")
#: Path plus query; longer answers 414. The server must let such a line through to the app
#: (qcity/cli.py runs uvicorn with h11 and a larger incomplete-event limit).
MAX_URI_BYTES = 8192


class RequestIdMiddleware:
    """Takes the caller's X-Request-ID (or makes one), binds it to logs and echoes it back.

    A plain ASGI middleware: BaseHTTPMiddleware would cost a task per request on the bulk path.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                if _SAFE_REQUEST_ID.fullmatch(value):  # anything else is replaced, never echoed
                    request_id = value.decode("ascii")
                break
        if not request_id:
            request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")


class UriLengthMiddleware:
    """A path and query over `MAX_URI_BYTES` answers a 414 problem before any routing or parsing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = len(scope.get("raw_path") or scope["path"].encode()) + len(scope.get("query_string", b""))
            if length > MAX_URI_BYTES:
                problem = UriTooLong(f"The path and query hold {length} bytes; at most {MAX_URI_BYTES} are accepted.")
                await error_response(problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


ReadinessCheck = Callable[[], Awaitable[None]]

#: A readiness check that has not answered in this time has failed (a black-holed database would
#: otherwise hold `/readyz` for the driver's whole connect timeout).
CHECK_TIMEOUT_S = 5.0


@dataclass
class Readiness:
    """What `/readyz` checks.

    `required` checks decide whether the service can accept writes (its database): one failing
    answers 503, and a load balancer takes the replica out. `degrading` checks (the bus, the
    background tasks) only delay events: one failing still answers 200, with `"status":
    "degraded"`, because taking every writable replica out for a broker outage would refuse the
    writes the outbox would keep. `details` adds fields to the body (the outbox backlog, the tasks).
    """

    required: dict[str, ReadinessCheck]
    degrading: dict[str, ReadinessCheck] = field(default_factory=dict)
    details: Callable[[], Awaitable[dict[str, Any]]] | None = None


async def _run_checks(checks: dict[str, ReadinessCheck]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
            out[name] = "ok"
        except Exception as exc:
            out[name] = f"failed: {type(exc).__name__}: {exc}"[:300]
    return out


def install_platform_routes(
    app: FastAPI,
    readiness: Readiness,
    registry: CollectorRegistry | None = None,
    *,
    metrics_need_admin: bool = False,
) -> None:
    """`/healthz` (the process answers), `/readyz` (writes accepted; events delayed?), `/metrics` (an
    `admin` token in production: docs/security.md)."""

    @app.get("/healthz", tags=["operations"], summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Readiness: 200 while the database accepts writes (degraded if events are delayed)",
    )
    async def readyz() -> Any:
        required = await _run_checks(readiness.required)
        degrading = await _run_checks(readiness.degrading)
        checks = {**required, **degrading}
        if any(v != "ok" for v in required.values()):
            return error_response(NotReady("The database is unreachable: writes cannot be accepted", checks=checks))
        body: dict[str, Any] = {
            "status": "ready" if all(v == "ok" for v in degrading.values()) else "degraded",
            "checks": checks,
        }
        if readiness.details is not None:
            try:
                body.update(await asyncio.wait_for(readiness.details(), CHECK_TIMEOUT_S))
            except Exception as exc:
                body["details_error"] = f"{type(exc).__name__}: {exc}"[:300]
        return body

    # Each app has its own registry so four apps in one process (embedded mode) do not collide; the
    # runtime's (its supervisor's task metrics) when it has one.
    registry = registry if registry is not None else CollectorRegistry()
    app.state.metrics_registry = registry
    Instrumentator(registry=registry, excluded_handlers=["/metrics", "/healthz", "/readyz"]).instrument(app).expose(
        app, include_in_schema=False, dependencies=[require("admin")] if metrics_need_admin else []
    )


def new_app(title: str, description: str, version: str = "0.1.0", **kwargs: Any) -> FastAPI:
    app = FastAPI(
        title=title, description=description, version=version, generate_unique_id_function=operation_id, **kwargs
    )
    install_openapi(app)
    install_problem_handlers(app)
    app.add_middleware(UriLengthMiddleware)
    app.add_middleware(RequestIdMiddleware)
    return app


def service_app(
    runtime: Any,
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter] = (),
    on_start: Callable[[FastAPI], Awaitable[None]] | None = None,
    on_stop: Callable[[FastAPI], Awaitable[None]] | None = None,
) -> FastAPI:
    """A service app around its `ServiceRuntime`: started in the lifespan, never at import."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            if on_start is not None:
                await on_start(app)
            yield
        finally:
            try:
                if on_stop is not None:
                    await on_stop(app)
            finally:
                await runtime.stop()

    app = new_app(title, description, lifespan=lifespan)
    # The client address from X-Forwarded-For, believed only from QC_TRUSTED_PROXIES (rate limits).
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(runtime.platform.trusted_proxies))
    app.state.runtime = runtime
    app.state.tokens = runtime.tokens
    for router in routers:
        app.include_router(segment_params(router))
    install_platform_routes(
        app,
        Readiness(
            required={"database": runtime.ping_db},
            degrading={"bus": runtime.ping_bus, "tasks": runtime.supervisor.check},
            details=runtime.readiness_details,
        ),
        registry=runtime.supervisor.registry,
        metrics_need_admin=runtime.platform.env == "production",
    )
    if runtime.spec.handlers:
        app.state.metrics_registry.register(QuarantineMetrics(lambda: runtime.consumer))
    if runtime.scheduler.jobs:
        install_job_routes(app)
    return app


def install_job_routes(app: FastAPI) -> None:
    """`GET /v1/jobs`: the periodic jobs and their schedule (`read`); `POST /v1/jobs/{name}:run`: run
    a scheduled job now (operators; `admin` scope)."""

    @app.get("/v1/jobs", tags=["operations"], summary="The periodic jobs and how often each runs")
    async def list_jobs(request: Request, _: Reader) -> dict[str, Any]:
        return {"jobs": job_schedule(request.app.state.runtime.scheduler.jobs.values())}

    @app.post("/v1/jobs/{name}:run", tags=["operations"], summary="Run a scheduled job now")
    async def run_job(name: str, request: Request, _: Admin) -> dict[str, Any]:
        scheduler = request.app.state.runtime.scheduler
        if name not in scheduler.jobs:
            raise JobNotFound(f"Jobs: {', '.join(sorted(scheduler.jobs))}")
        return {"job": name, "changed": await scheduler.run_now(name)}


def job_schedule(jobs: Iterable[ScheduledJob]) -> list[dict[str, Any]]:
    """What each periodic job does and how often it runs."""
    return [{"name": j.name, "every_s": j.every_s, "does": j.does} for j in jobs]
