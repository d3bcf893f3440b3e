"""What every use case needs besides the session: who acts, for which agency, which request, and when."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Annotated, Any, Self

from fastapi import Depends, Request

from shared.auth import Principal, current_principal
from shared.clock import Clock
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
