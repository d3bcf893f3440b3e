"""What every use case needs besides the session: who acts, for which agency, which request, and when."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from typing import Annotated, Any, Self

from fastapi import Depends, Request, Response
from pydantic import BaseModel
from sqlalchemy import Table

from shared.auth import Principal, current_principal
from shared.clock import Clock
from shared.db import UnitOfWork
from shared.errors import etag
from shared.idempotency import post_once
from shared.routing import IdempotencyKey, IfMatch
from shared.runtime import UoW
from shared.service_app import request_id


@dataclass(frozen=True, kw_only=True)
class Context:
    """The base each service's use-case context extends with its own rules (keyword-only fields)."""

    actor: str
    clock: Clock
    agency: str | None = None
    request_id: str = ""

    @classmethod
    def extend(cls, base: Context, **extra: Any) -> Self:
        """This service's context from the request's base context and the service's own fields."""
        return cls(**{f.name: getattr(base, f.name) for f in fields(Context)}, **extra)


async def request_context(request: Request, principal: Annotated[Principal, Depends(current_principal)]) -> Context:
    """The one dependency that builds the context: the token's subject and agency, the request id, the clock."""
    clock: Clock = request.app.state.runtime.clock
    return Context(actor=principal.subject, clock=clock, agency=principal.agency, request_id=request_id(request))


RequestContext = Annotated[Context, Depends(request_context)]


@dataclass(frozen=True)
class Write:
    """What a write route needs besides its id and body: the request and its context, the unit of work,
    and the response (for its status and headers)."""

    request: Request
    ctx: Context
    uow: UnitOfWork
    response: Response


@dataclass(frozen=True)
class Change(Write):
    """What a route changing a versioned resource needs besides its id and body (one dependency)."""

    if_match: str | None

    async def commit(
        self, use_case: Callable[..., Awaitable[dict[str, Any]]], ctx: Context, key: str, *args: Any
    ) -> dict[str, Any]:
        """Run `use_case(session, ctx, key, if_match, *args)`, commit, and answer the new version's ETag."""
        row = await use_case(self.uow.session, ctx, key, self.if_match, *args)
        await self.uow.commit()
        self.response.headers["ETag"] = etag(row["version"])
        return row


async def change(
    request: Request, ctx: RequestContext, uow: UoW, response: Response, if_match: IfMatch = None
) -> Change:
    return Change(request, ctx, uow, response, if_match)


#: `change: VersionedChange` in a route that takes If-Match, changes one row and answers it with its ETag.
VersionedChange = Annotated[Change, Depends(change)]


@dataclass(frozen=True)
class Creation(Write):
    """What a route creating a resource under an Idempotency-Key needs besides its body (one dependency)."""

    idempotency_key: str | None

    async def once(
        self,
        table: Table,
        principal: Principal,
        path: str,
        body: BaseModel,
        create: Callable[[], Awaitable[tuple[int, Any]]],
    ) -> Any:
        """`create()` once for this key and body, committed; a retry answers the stored response."""
        return await post_once(self.uow, self.response, table, principal, self.idempotency_key, path, body, create)


async def creation(
    request: Request, ctx: RequestContext, uow: UoW, response: Response, idempotency_key: IdempotencyKey = None
) -> Creation:
    return Creation(request, ctx, uow, response, idempotency_key)


#: `creation: IdempotentCreation` in a route that creates one resource and honours Idempotency-Key.
IdempotentCreation = Annotated[Creation, Depends(creation)]
