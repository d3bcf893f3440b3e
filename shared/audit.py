"""The audit record: one row per write request, in the service's own database, never editable.

Who (the token's subject and agency), when (wall-clock time, not the service's business clock), the
request id, what (method, route template, the route's path parameters, the resource's version before
and after when the write went through `update_if_version`), the outcome status and the client address
(`request.client`, resolved through the trusted proxies as for the rate limits).

A write that commits carries its audit row in the same transaction: `AuditMiddleware` marks each
write request (POST, PUT, PATCH, DELETE) in a context variable, and every unit of work of the
service's `Database` committed during that request adds the row just before its commit (one insert
per request, however many rows the write stores; `record` below). A rolled-back write leaves no row;
a committed one always has one. Requests that write nothing (a screening, an idempotent replay) leave
none.

A write refused for who asks or for the state it met — 401, 403, 404, 409, 412, 428 — is recorded
in a short transaction of its own before the answer leaves (outcome `refused`): attempts matter in a
government system. Malformed input (400, 413, 422) and server errors are not: they change nothing,
say nothing about intent, and would let anyone fill the table; the logs keep them.

The gateway records the refusals it makes itself (its own scope checks); a forwarded write is
audited by the service that owns it. `GET /v1/audit` (`admin`) reads the rows; there is no route
that changes them.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import structlog
from fastapi import APIRouter, FastAPI, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import JSON, Column, Index, Integer, MetaData, String, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.clock import as_utc
from shared.db import UtcDateTime
from shared.pagination import Page, decode_cursor, keyset, page
from shared.routing import Admin, Cursor, Limit, problems
from shared.strict import Stamp
from shared.uuid7 import new_id

if TYPE_CHECKING:
    from shared.db import Database, UnitOfWork
    from shared.runtime import ServiceRuntime

log = structlog.get_logger("audit")

AUDIT_TABLE = "audit_log"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Refused writes that are recorded (see the module's docstring).
REFUSED = frozenset({401, 403, 404, 409, 412, 428})
#: `session.info` key of the versions a compare-and-set moved (`note_versions`).
_VERSIONS = "qc_audit_versions"
#: `session.info` key of what a write adds to its audit row's `resource` (`note_resource`).
_RESOURCE = "qc_audit_resource"
#: `request.state` key: the audit middleware that records the request's refusal. An app mounted in
#: another (embedded mode) takes it over from the outer one; the gateway's forwarding clears it.
_OWNER = "qc_audit_owner"


def audit_table(metadata: MetaData) -> Table:
    return Table(
        AUDIT_TABLE,
        metadata,
        Column("id", String(36), primary_key=True),  # uuid7: in the order recorded
        Column("at", UtcDateTime(), nullable=False),
        Column("subject", String(200)),  # null: no valid token (401)
        Column("agency", String(64)),
        Column("request_id", String(128), nullable=False),
        Column("client", String(128)),
        Column("method", String(8), nullable=False),
        Column("route", String(200), nullable=False),  # the route's template, e.g. /v1/results/{result_id}
        Column("resource", JSON),  # the route's path parameters
        Column("version_before", Integer),
        Column("version_after", Integer),
        Column("status", Integer, nullable=False),
        Column("outcome", String(10), nullable=False),  # committed | refused
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_subject", "subject"),
    )


def note_versions(session: AsyncSession, before: int, after: int) -> None:
    """Record the versions a write moved a resource between, for the request's audit row."""
    session.info[_VERSIONS] = (before, after)


def note_resource(session: AsyncSession, **values: str) -> None:
    """Add to the request's audit row `resource` (e.g. an archive import's `imported` and `source_file`)."""
    session.info.setdefault(_RESOURCE, {}).update(values)


def delegated(request: Request) -> None:
    """This app forwards the request: the owning service records it, this one does not again."""
    setattr(request.state, _OWNER, None)


@dataclass(slots=True)
class _Pending:
    """A write request in progress: what its audit row is made of, read when it is written."""

    scope: Scope
    table: Table
    db: Database | None
    recorded: bool = False

    def row(self, status: int, outcome: str, versions: tuple[int, int] | None = None) -> dict[str, Any]:
        state = self.scope.get("state", {})
        principal = state.get("principal")
        route = self.scope.get("route")
        client = self.scope.get("client")
        return {
            "id": new_id(),
            "at": datetime.now(UTC),
            "subject": getattr(principal, "subject", None),
            "agency": getattr(principal, "agency", None),
            "request_id": str(state.get("request_id", ""))[:128],
            "client": str(client[0])[:128] if client else None,
            "method": self.scope["method"][:8],
            # The template as documented: `path` may carry parameter convertors ({result_id:segment}).
            "route": str(getattr(route, "path_format", None) or getattr(route, "path", self.scope["path"]))[:200],
            "resource": {k: str(v)[:200] for k, v in self.scope.get("path_params", {}).items()} or None,
            "version_before": versions[0] if versions else None,
            "version_after": versions[1] if versions else None,
            "status": status,
            "outcome": outcome,
        }


_current: ContextVar[_Pending | None] = ContextVar("qc_audit_pending", default=None)


def audit_hook(table: Table, db: Database) -> Callable[[UnitOfWork], None]:
    """For `Database.on_unit_of_work`: a unit of work opened during a write request to this database
    adds the request's audit row just before it commits, when it wrote something."""

    def attach(uow: UnitOfWork) -> None:
        pending = _current.get()
        if pending is None or pending.db is not db:
            return

        async def before_commit() -> None:
            if pending.recorded or not await uow.has_uncommitted_writes():
                return
            route = pending.scope.get("route")
            status = getattr(route, "status_code", None) or 200  # the status the route answers on success
            row = pending.row(status, "committed", uow.session.info.pop(_VERSIONS, None))
            extra = uow.session.info.pop(_RESOURCE, None)
            if extra:
                row["resource"] = (row["resource"] or {}) | {k: str(v)[:200] for k, v in extra.items()}
            await uow.session.execute(insert(table).values(row))
            uow.after_commit(lambda: setattr(pending, "recorded", True))

        uow.before_commit(before_commit)

    return attach


@dataclass(eq=False)
class AuditMiddleware:
    """Marks write requests for `audit_hook` and records refused ones (plain ASGI: no task per request)."""

    app: ASGIApp
    table: Table
    runtime: ServiceRuntime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        pending = _Pending(scope, self.table, self.runtime.db)
        # A request's own state: the principal is set by this request's token check, never left from
        # another (ASGI servers copy the lifespan state per request; some test transports share it).
        state = {k: v for k, v in scope.get("state", {}).items() if k != "principal"}
        scope["state"] = state | {_OWNER: pending}

        async def send_audited(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in REFUSED:
                await self._refused(pending, message["status"])
            await send(message)

        token = _current.set(pending)
        try:
            await self.app(scope, receive, send_audited)
        finally:
            _current.reset(token)

    async def _refused(self, pending: _Pending, status: int) -> None:
        if pending.recorded or pending.db is None or pending.scope["state"].get(_OWNER) is not pending:
            return
        try:
            async with pending.db.engine.begin() as conn:
                await conn.execute(insert(self.table).values(pending.row(status, "refused")))
            pending.recorded = True
        except Exception:  # the refusal still answers; the failure to record it is logged loudly
            log.exception("refused write not recorded", method=pending.scope["method"], path=pending.scope["path"])


# ---------------------------------------------------------------------------------- the admin API


class AuditRecordOut(BaseModel):
    id: str
    at: datetime
    subject: str | None = Field(description="The token's subject; null when no valid token was sent")
    agency: str | None
    request_id: str
    client: str | None = Field(description="The client address (through trusted proxies)")
    method: str
    route: str = Field(description="The route's template")
    resource: dict[str, str] | None = Field(description="The route's path parameters")
    version_before: int | None
    version_after: int | None
    status: int
    outcome: str = Field(description="`committed` (stored in the same transaction) or `refused`")


def audit_router(prefix: str = "/v1/audit") -> APIRouter:
    """The read-only admin route over the service's audit rows. Services mount it at `/v1/audit`;
    the gateway mounts its own at `/v1/audit/gateway` and forwards `/v1/audit/{service}`."""
    router = APIRouter(prefix=prefix, tags=["operations"], responses=problems(401, 403, 422))

    @router.get("", summary="Audit records of writes, newest first", response_model=Page[AuditRecordOut])
    async def list_audit(
        request: Request,
        _: Admin,
        subject: Annotated[str | None, Query(max_length=200, description="Only this subject's")] = None,
        agency: Annotated[str | None, Query(max_length=64, description="Only this agency's")] = None,
        from_: Annotated[Stamp | None, Query(alias="from", description="Recorded at or after")] = None,
        to: Annotated[Stamp | None, Query(description="Recorded before")] = None,
        path: Annotated[
            str | None, Query(max_length=200, description="Route templates starting with this, e.g. /v1/results")
        ] = None,
        cursor: Cursor = None,
        limit: Limit = 100,
    ) -> dict[str, Any]:
        after = decode_cursor(cursor, str)
        runtime: ServiceRuntime = request.app.state.runtime
        t = runtime.spec.audit
        if t is None:
            raise RuntimeError("this service keeps no audit table")
        stmt = select(t)
        if subject is not None:
            stmt = stmt.where(t.c.subject == subject)
        if agency is not None:
            stmt = stmt.where(t.c.agency == agency)
        if from_ is not None:
            stmt = stmt.where(t.c.at >= as_utc(from_))
        if to is not None:
            stmt = stmt.where(t.c.at < as_utc(to))
        if path is not None:
            stmt = stmt.where(t.c.route.startswith(path, autoescape=True))
        async with runtime.unit_of_work() as uow:
            result = await uow.session.execute(keyset(stmt, [t.c.id], after, limit + 1, descending=True))
            rows = [dict(r) for r in result.mappings()]
        return page(rows, limit, lambda r: (r["id"],), lambda r: r | {"at": as_utc(r["at"])})

    return router


def install_audit(app: FastAPI, runtime: ServiceRuntime, prefix: str = "/v1/audit") -> None:
    """The middleware that records a service's writes and the admin route that reads them."""
    if runtime.spec.audit is None:
        raise ValueError(f"the {runtime.spec.name} service's spec names no audit table")
    app.add_middleware(AuditMiddleware, table=runtime.spec.audit, runtime=runtime)
    app.include_router(audit_router(prefix))
