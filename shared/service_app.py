"""What every service app has: request ids, problem+json errors, health, readiness and metrics."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request
from prometheus_client import CollectorRegistry
from prometheus_fastapi_instrumentator import Instrumentator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import JobNotFound, NotReady
from shared.problems import error_response, install_problem_handlers
from shared.quarantine import QuarantineMetrics
from shared.routing import Admin

REQUEST_ID = "x-request-id"


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
                request_id = value.decode("latin-1")[:128]
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


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


ReadinessCheck = Callable[[], Awaitable[None]]


def install_platform_routes(app: FastAPI, readiness: dict[str, ReadinessCheck]) -> None:
    """`/healthz` (the process answers), `/readyz` (database and bus reachable), `/metrics`."""

    @app.get("/healthz", tags=["operations"], summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="Readiness: the database and the bus are reachable")
    async def readyz() -> Any:
        checks: dict[str, str] = {}
        ok = True
        for name, check in readiness.items():
            try:
                await check()
                checks[name] = "ok"
            except Exception as exc:
                ok = False
                checks[name] = f"failed: {type(exc).__name__}: {exc}"[:300]
        if ok:
            return {"status": "ready", "checks": checks}
        return error_response(NotReady("A dependency is unreachable", checks=checks))

    # Each app has its own registry so four apps in one process (embedded mode) do not collide.
    registry = CollectorRegistry()
    app.state.metrics_registry = registry
    Instrumentator(registry=registry, excluded_handlers=["/metrics", "/healthz", "/readyz"]).instrument(app).expose(
        app, include_in_schema=False
    )


def new_app(title: str, description: str, version: str = "0.1.0", **kwargs: Any) -> FastAPI:
    app = FastAPI(title=title, description=description, version=version, **kwargs)
    install_problem_handlers(app)
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
    app.state.runtime = runtime
    app.state.tokens = runtime.tokens
    for router in routers:
        app.include_router(router)
    install_platform_routes(app, {"database": runtime.ping_db, "bus": runtime.ping_bus})
    if runtime.spec.handlers:
        app.state.metrics_registry.register(QuarantineMetrics(lambda: runtime.consumer))
    if runtime.scheduler.jobs:
        install_job_routes(app)
    return app


def install_job_routes(app: FastAPI) -> None:
    """`POST /v1/jobs/{name}:run`: run a scheduled job now (operators; `admin` scope)."""

    @app.post("/v1/jobs/{name}:run", tags=["operations"], summary="Run a scheduled job now")
    async def run_job(name: str, request: Request, _: Admin) -> dict[str, Any]:
        scheduler = request.app.state.runtime.scheduler
        if name not in scheduler.jobs:
            raise JobNotFound(f"Jobs: {', '.join(sorted(scheduler.jobs))}")
        return {"job": name, "changed": await scheduler.run_now(name)}
