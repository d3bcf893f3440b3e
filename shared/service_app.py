"""What every service app has: request ids, problem+json errors, health, readiness and metrics."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from prometheus_client import CollectorRegistry
from prometheus_fastapi_instrumentator import Instrumentator
from sqlalchemy import Table
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from swagger_ui_bundle import swagger_ui_path
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from shared.auth import MISSING_TOKEN, TokenService, require, verify
from shared.consumer import Handler
from shared.errors import (
    JobNotFound,
    NotFound,
    NotReady,
    PayloadTooLarge,
    QualityCityError,
    Unauthenticated,
    UriTooLong,
    ValidationFailed,
)
from shared.openapi import install as install_openapi
from shared.openapi import operation_id
from shared.problems import error_response, install_problem_handlers
from shared.quarantine import QuarantineMetrics
from shared.routing import Admin, Reader, segment_params
from shared.runtime import ServiceSpec
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


#: C0 controls and DEL: never part of a path or query value this API accepts (and httpx refuses to
#: forward them, PostgreSQL refuses NUL).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ControlCharacterMiddleware:
    """A control character in the decoded path or a query value answers a 422 naming where it is."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = _control_characters(scope)
            if problem is not None:
                await error_response(problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _control_characters(scope: Scope) -> ValidationFailed | None:
    reason = "must not contain control characters"
    if _CONTROL.search(scope["path"]):
        return ValidationFailed.one("path", "path", reason, detail=f"The path {reason}")
    query = scope.get("query_string", b"").decode("latin-1")
    if _CONTROL.search(query) or "%" in query:
        for name, value in parse_qsl(query, keep_blank_values=True, errors="replace"):
            if _CONTROL.search(name) or _CONTROL.search(value):
                return ValidationFailed.one(name, "query", reason, detail=f"The query parameter {name!r} {reason}")
    return None


@dataclass(frozen=True)
class BodyCaps:
    """The request body caps (QC_MAX_BODY_BYTES, QC_MAX_BULK_BODY_BYTES): `bulk` for the paths ending
    in one of `bulk_paths`, `default` for every other route."""

    default: int
    bulk: int
    bulk_paths: tuple[str, ...] = ("/v1/results:batch", "/v1/honours:import")
    #: Writes that need no token (the dashboard's sign-in form).
    public_write_prefixes: tuple[str, ...] = ("/dashboard",)

    def cap(self, path: str) -> int:
        return self.bulk if path.endswith(self.bulk_paths) else self.default


class BodyRefused(HTTPException):
    """A problem raised from `receive` while a route reads the body (too large, or no valid token).

    An HTTPException because FastAPI turns any other exception from reading the body into a 400; the
    app's handler for this class (`new_app`) answers the carried error's own problem.
    """

    def __init__(self, error: QualityCityError) -> None:
        super().__init__(error.status, error.detail)
        self.error = error


_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyLimitMiddleware:
    """The body cap of the route: a `Content-Length` over the cap answers 413 at once, and a streamed
    body is counted as it arrives (413 at the first chunk past the cap, the rest never read).

    A write (other than the public forms) has its bearer token verified when the route first asks for
    the body, before a byte of it is read: FastAPI parses a JSON body before it runs the route's auth
    dependency. Checked there rather than before routing so that an unknown route still answers 404
    and the answer is the route's own (the scope matrix holds the gateway and the services to it).
    Starlette's `RequestBodyLimitMiddleware` answers text/plain and has no per-path caps, hence this."""

    def __init__(self, app: ASGIApp, caps: BodyCaps, tokens: TokenService | None = None) -> None:
        self.app = app
        self.caps = caps
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WRITES:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        cap = self.caps.cap(path)
        headers = Headers(scope=scope)
        try:
            declared = int(headers.get("content-length", "0"))
        except ValueError:
            declared = 0
        too_large = PayloadTooLarge(f"The request body is larger than {cap} bytes", max_bytes=cap)
        if declared > cap:
            await error_response(too_large, path)(scope, receive, send)
            return
        check_token = self.tokens is not None and not path.startswith(self.caps.public_write_prefixes)
        received = 0

        async def counted() -> Message:
            nonlocal received, check_token
            if check_token and self.tokens is not None:
                check_token = False
                try:
                    await _authenticate(self.tokens, headers.get("authorization"))
                except QualityCityError as exc:
                    raise BodyRefused(exc) from None
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise BodyRefused(too_large)
            return message

        await self.app(scope, counted, send)


async def _authenticate(tokens: TokenService, authorization: str | None) -> None:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(MISSING_TOKEN)
    await verify(tokens, token.strip())


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
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                await check()
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
                async with asyncio.timeout(CHECK_TIMEOUT_S):
                    body.update(await readiness.details())
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


def new_app(*, body_caps: BodyCaps | None = None, tokens: TokenService | None = None, **fastapi: Any) -> FastAPI:
    """The app with its edge checks, innermost first: body cap (and a write's token), control
    characters, URI length, request id (outermost, so every answer carries it)."""
    # FastAPI's own /docs and /redoc load their scripts from a CDN: /docs is served from the package
    # instead (install_docs), and ReDoc is left out.
    app = FastAPI(docs_url=None, redoc_url=None, generate_unique_id_function=operation_id, **fastapi)
    install_openapi(app)
    install_problem_handlers(app)
    install_docs(app)

    async def on_body_refused(request: Request, exc: BodyRefused) -> Response:
        return error_response(exc.error, request.url.path)

    app.add_exception_handler(BodyRefused, on_body_refused)  # type: ignore[arg-type]
    if body_caps is not None:
        app.add_middleware(BodyLimitMiddleware, caps=body_caps, tokens=tokens)
    app.add_middleware(ControlCharacterMiddleware)
    app.add_middleware(UriLengthMiddleware)
    app.add_middleware(RequestIdMiddleware)
    return app


#: The Swagger UI files /docs loads, served from the installed package (government intranets often
#: have no internet, and a CDN script runs with the page's origin).
_SWAGGER_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


def install_docs(app: FastAPI) -> None:
    """`/docs`: Swagger UI with its script, stylesheet and icon from `/docs/assets/` of the same app."""

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{app.title} · API",
            swagger_js_url=f"{root}/docs/assets/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/docs/assets/swagger-ui.css",
            swagger_favicon_url=f"{root}/docs/assets/favicon-32x32.png",
        )

    @app.get("/docs/assets/{name}", include_in_schema=False)
    async def docs_asset(name: str) -> FileResponse:
        media_type = _SWAGGER_ASSETS.get(name)
        if media_type is None:
            raise DocsAssetNotFound(f"No such file: {name}")
        return FileResponse(
            Path(str(swagger_ui_path)) / name, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"}
        )


class DocsAssetNotFound(NotFound):
    slug = "docs-asset-not-found"
    title = "No such documentation file"


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

    platform = runtime.platform
    caps = BodyCaps(default=platform.max_body_bytes, bulk=platform.max_bulk_body_bytes)
    app = new_app(
        title=title, description=description, version="0.1.0", body_caps=caps, tokens=runtime.tokens, lifespan=lifespan
    )
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


class ServiceTables(Protocol):
    """A service's models module, as far as its spec needs it: the shared tables every service keeps."""

    __file__: str | None
    outbox: Table
    inbox: Table
    audit_log: Table


def service_spec(
    name: str,
    models: ServiceTables,
    *,
    handlers: Mapping[str, Handler] | None = None,
    batch_handler: Handler | None = None,
    subscribes_to: Sequence[str] = (),
    jobs: Sequence[ScheduledJob] = (),
) -> ServiceSpec:
    """The spec of the service whose `models` module is given: its folder (migrations, data) is the
    module's, its outbox, inbox and audit tables are the module's; what it consumes and runs is given."""
    if models.__file__ is None:
        raise ValueError(f"the {name} service's models are not a module file")
    return ServiceSpec(
        name=name,
        package_dir=Path(models.__file__).parent,
        outbox=models.outbox,
        inbox=models.inbox,
        audit=models.audit_log,
        handlers=handlers or {},
        batch_handler=batch_handler,
        subscribes_to=subscribes_to,
        jobs=jobs,
    )
