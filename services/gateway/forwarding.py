"""The routes the gateway forwards to their owning service, with the scope each needs.

The table is data (data/forwards.json), read once and validated here; the rows every service has
alike (its jobs, its quarantine, its audit records) are made here from the service's name.

Scopes are checked here and again by the service: the gateway refuses early, the service stays
safe when reached directly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.gateway.plans import load_located
from services.gateway.upstream import Upstreams
from shared.audit import delegated
from shared.auth import SCOPES, require_any
from shared.routing import problems


@dataclass(frozen=True)
class Forward:
    service: str
    method: str
    path: str
    scope: str | tuple[str, ...] | None  # None: public; a tuple: any one of them
    summary: str
    tag: str
    upstream_path: str | None = None  # when the gateway's path differs (two services own /v1/regions)

    @property
    def scopes(self) -> tuple[str, ...]:
        if self.scope is None:
            return ()
        return (self.scope,) if isinstance(self.scope, str) else self.scope

    @property
    def target(self) -> str:
        return self.upstream_path or self.path


#: Groups of scopes, named in capitals by the data file's rows: any one of the group admits.
OFFICER = ("credit:write", "credit:review")
#: Records from other authorities: sent by their systems, read by them (their own) and by officers.
RECORD_READERS = ("credit:records", *OFFICER)
#: Archive imports (docs/archive-import.md).
ARCHIVE = ("admin", "archive:import")
SCOPE_GROUPS: dict[str, tuple[str, ...]] = {"OFFICER": OFFICER, "RECORD_READERS": RECORD_READERS, "ARCHIVE": ARCHIVE}

#: The forwarded routes as data (one row a route, by service, in the order they are served).
FORWARDS_FILE = Path(__file__).parent / "data" / "forwards.json"


def _job(service: str, summary: str) -> tuple[Forward, Forward]:
    """The gateway's paths to a service's jobs: their schedule and the runner (each service serves
    them at /v1/jobs)."""
    return (
        Forward(
            service,
            "GET",
            f"/v1/jobs/{service}",  # not /v1/{service}/jobs: /v1/credit/{uscc} is the gateway's own
            "read",
            f"The {service} service's periodic jobs and their schedule",
            "operations",
            upstream_path="/v1/jobs",
        ),
        Forward(
            service,
            "POST",
            f"/v1/{service}/jobs/{{name}}:run",
            "admin",
            summary,
            "operations",
            upstream_path="/v1/jobs/{name}:run",
        ),
    )


#: Each consuming service's quarantine (shared/quarantine.py) is at `/v1/quarantine/{service}` here:
#: the gateway's own is mounted at its prefix, the others' are forwarded to their `/v1/quarantine`.
QUARANTINE_PREFIX = "/v1/quarantine/gateway"


def quarantine_forwards(service: str) -> tuple[Forward, ...]:
    at, up = f"/v1/quarantine/{service}", "/v1/quarantine"
    return tuple(
        Forward(service, method, at + path, "admin", summary, "operations", upstream_path=up + path)
        for method, path, summary in (
            ("GET", "", f"Quarantined events of the {service} service"),
            ("GET", "/{quarantine_id}", f"One quarantined event of the {service} service"),
            ("POST", "/{quarantine_id}:replay", f"Replay a quarantined event of the {service} service"),
            ("POST", "/{quarantine_id}:discard", f"Discard a quarantined event of the {service} service"),
        )
    )


#: Each service's audit records (shared/audit.py) are at `/v1/audit/{service}` here, like the quarantine:
#: the gateway's own (its writes and the forwarded writes it refused) at its prefix, the others' forwarded.
AUDIT_PREFIX = "/v1/audit/gateway"


def audit_forward(service: str) -> Forward:
    return Forward(
        service,
        "GET",
        f"/v1/audit/{service}",
        "admin",
        f"Audit records of the {service} service's writes",
        "operations",
        upstream_path="/v1/audit",
    )


class Route(BaseModel):
    """A row of data/forwards.json: one forwarded route."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    path: str = Field(pattern=r"^/v1/")
    scope: str | None = Field(description="A scope (shared/auth.py SCOPES), a group's name (SCOPE_GROUPS), or null")
    summary: str = Field(min_length=1)
    tag: str = Field(min_length=1)
    upstream_path: str | None = Field(default=None, pattern=r"^/v1/")

    @field_validator("scope")
    @classmethod
    def _known_scope(cls, scope: str | None) -> str | None:
        if scope is not None and scope not in SCOPES and scope not in SCOPE_GROUPS:
            raise ValueError(
                f"unknown scope {scope!r}: a scope ({', '.join(SCOPES)}) or a group ({', '.join(SCOPE_GROUPS)})"
            )
        return scope

    def forward(self, service: str) -> Forward:
        scope = SCOPE_GROUPS.get(self.scope, self.scope) if self.scope is not None else None
        return Forward(service, self.method, self.path, scope, self.summary, self.tag, self.upstream_path)


class Jobs(BaseModel):
    """A row of data/forwards.json standing for the service's two job routes (`_job`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jobs: str = Field(min_length=1, description="The summary of the route that runs a job now")


class ForwardsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    comment: str = Field(alias="_comment")
    forwards: dict[Literal["sampling", "credit", "awards"], list[Route | Jobs]]

    @model_validator(mode="after")
    def _each_route_once(self) -> ForwardsFile:
        seen: set[tuple[str, str]] = set()
        for rows in self.forwards.values():
            for row in rows:
                if isinstance(row, Route):
                    if (row.method, row.path) in seen:
                        raise ValueError(f"{row.method} {row.path} appears twice")
                    seen.add((row.method, row.path))
        return self


def load_forwards(path: Path = FORWARDS_FILE) -> tuple[Forward, ...]:
    """The file's routes, then each consuming service's quarantine and each service's audit records;
    raises DataFileError (file and line) on a malformed row."""
    table, _, _ = load_located(path, ForwardsFile, "(forwards)")
    rows = [
        fwd
        for service, entries in table.forwards.items()
        for entry in entries
        for fwd in (_job(service, entry.jobs) if isinstance(entry, Jobs) else (entry.forward(service),))
    ]
    return (
        *rows,
        *quarantine_forwards("credit"),
        *quarantine_forwards("awards"),
        *(audit_forward(s) for s in ("sampling", "credit", "awards")),
    )


FORWARDS = load_forwards()


def _endpoint(fwd: Forward) -> Callable[..., Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        upstreams: Upstreams = request.app.state.upstreams
        delegated(request)  # the owning service records the write (or its refusal)
        # Each parameter percent-encoded again: decoded, an id holding `?` or `#` would cut the path.
        params = {k: quote(str(v), safe="") for k, v in request.path_params.items()}
        return await upstreams.forward(fwd.service, request, path=fwd.target.format(**params))

    return endpoint


def forwarding_router(forwards: tuple[Forward, ...] = FORWARDS) -> APIRouter:
    router = APIRouter()
    for fwd in forwards:
        # The gateway's own answers: the scope it checks, the service down (502) or slow (504).
        errors = problems(*((401, 403) if fwd.scopes else ()), 502, 504)
        deps = [require_any(*fwd.scopes)] if fwd.scopes else []
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
