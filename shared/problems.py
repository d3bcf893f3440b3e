"""RFC 9457 problem details for every 4xx and 5xx answer, with a stable `type` per error.

The conditions are the classes of `shared.errors`; this module is the one place at the edge that
turns them (and FastAPI's validation errors, Starlette's HTTP errors, integrity races and anything
unexpected) into problem+json."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from shared.errors import ConcurrentConflict, DatabaseUnavailable, QualityCityError, ValidationFailed
from shared.transient import is_transient

log = structlog.get_logger("problems")

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:qualitycity:problem:"

_STATUS_SLUGS = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    412: "precondition-failed",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    428: "precondition-required",
    429: "too-many-requests",
    500: "internal-error",
    502: "bad-gateway",
    503: "service-unavailable",
    504: "gateway-timeout",
}


class ProblemResponse(Response):
    media_type = PROBLEM_JSON

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def problem_type(slug: str) -> str:
    return TYPE_PREFIX + slug


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str | None = None,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> ProblemResponse:
    body: dict[str, Any] = {"type": problem_type(slug), "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extensions)
    return ProblemResponse(body, status_code=status, headers=headers)


def error_response(exc: QualityCityError, instance: str | None = None) -> ProblemResponse:
    """The one place an error becomes problem+json."""
    return problem_response(
        exc.status, exc.slug, exc.title, exc.detail, instance=instance, headers=exc.headers, **exc.extensions
    )


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """`("body", "items", 0, "uscc")` → `items[0].uscc`: the field as the client wrote it."""
    parts: list[str] = []
    for p in loc:
        if p in ("body", "query", "path", "header", "cookie") and not parts:
            continue
        if isinstance(p, int):
            parts.append(f"[{p}]")
        else:
            parts.append(("." if parts else "") + str(p))
    return "".join(parts) or "body"


def validation_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for e in errors:
        loc = tuple(e.get("loc", ()))
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        kind = str(e.get("type", "value_error"))
        if kind == "extra_forbidden":
            msg = "unknown field"
        elif kind == "missing":
            msg = "field required"
        item: dict[str, Any] = {
            "field": field_path(loc),
            "in": loc[0] if loc and loc[0] in ("body", "query", "path", "header") else "body",
            "reason": msg,
            "code": kind,
        }
        out.append(item)
    return out


def invalid_fields(errors: list[dict[str, Any]]) -> ValidationFailed:
    """One validation failure for these field errors; the detail names each field once, though two
    checks may refuse the same field (a date both malformed and in the future)."""
    fields = ", ".join(sorted({e["field"] for e in errors}))
    return ValidationFailed(f"Invalid fields: {fields}", errors)


#: The classes a database failure can arrive as; `is_transient` tells an outage from a bad statement.
_DATABASE_ERRORS: tuple[type[Exception], ...] = (
    DBAPIError,
    PoolTimeout,
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers at this path: Starlette's 405 names only the first
    route that matched the path, while several routes share one (`GET` and `PATCH /v1/results/{id}`).
    Each method is tried against the app's routes (FastAPI includes routers lazily, so the routes
    are matched, not listed)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)
    ]


def install_problem_handlers(app: FastAPI) -> None:
    async def on_error_class(request: Request, exc: QualityCityError) -> ProblemResponse:
        return error_response(exc, request.url.path)

    async def on_validation(request: Request, exc: RequestValidationError) -> ProblemResponse:
        return error_response(invalid_fields(validation_errors(list(exc.errors()))), request.url.path)

    async def on_http(request: Request, exc: StarletteHTTPException) -> ProblemResponse:
        slug = _STATUS_SLUGS.get(exc.status_code, f"http-{exc.status_code}")
        title = str(exc.detail) if exc.detail else slug.replace("-", " ").capitalize()
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return problem_response(exc.status_code, slug, title, instance=request.url.path, headers=headers or None)

    async def on_integrity(request: Request, exc: IntegrityError) -> ProblemResponse:
        # A uniqueness rule caught what the checks before it could not see: a concurrent request
        # (the same Idempotency-Key or report number twice at once). Nothing was stored; a retry
        # now finds the first one.
        log.info("integrity conflict", path=request.url.path, error=str(exc.orig)[:200])
        return error_response(ConcurrentConflict(), request.url.path)

    async def on_error(request: Request, exc: Exception) -> ProblemResponse:
        log.exception("unhandled error", path=request.url.path)
        return error_response(QualityCityError("The error was logged; quote the request id."), request.url.path)

    async def on_database_error(request: Request, exc: Exception) -> ProblemResponse:
        # Registered per class (not only under `Exception`) so Starlette answers from its exception
        # middleware: the `Exception` handler runs in the outermost middleware, which re-raises after
        # answering, and the server then logs a raw traceback and may drop the keep-alive connection.
        if is_transient(exc):
            log.warning("database unavailable", path=request.url.path, error=repr(exc)[:300])
            return error_response(DatabaseUnavailable(), request.url.path)
        return await on_error(request, exc)

    app.add_exception_handler(QualityCityError, on_error_class)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, on_validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, on_http)  # type: ignore[arg-type]
    app.add_exception_handler(IntegrityError, on_integrity)  # type: ignore[arg-type]
    for cls in _DATABASE_ERRORS:
        app.add_exception_handler(cls, on_database_error)
    app.add_exception_handler(Exception, on_error)


class FieldError(BaseModel):
    """One reason a request was refused: the field as the client wrote it, where it was, and why."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    field: str = Field(description="`items[0].uscc`: the field's path in the body, or the parameter's name")
    in_: str = Field(alias="in", description="Where the field was: `body`, `query`, `path` or `header`")
    reason: str = Field(description="Why it was refused, in words")
    code: str | None = Field(None, description="A stable code for the reason (pydantic's error type, e.g. `missing`)")


class Problem(BaseModel):
    """RFC 9457 problem details: every 4xx and 5xx answer of the suite."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str = Field(description="`urn:qualitycity:problem:<slug>`: stable; switch on it")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = Field(None, description="The request's path")
    errors: list[FieldError] | None = Field(None, description="Every refused field (validation problems)")


#: For OpenAPI `responses=`: an error status answering the one shared `Problem` schema.
PROBLEM_SCHEMA: dict[str, Any] = {"content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
