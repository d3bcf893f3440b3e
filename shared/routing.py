"""The preamble every router shares: scope dependencies, parameter types and the error responses.

One module, so a route reads `principal: Reader, cursor: Cursor, limit: Limit` the same way in
every service.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.routing import APIRoute, APIWebSocketRoute
from fastapi.types import DecoratedCallable
from starlette.convertors import Convertor, register_url_convertor
from starlette.routing import Route

from shared.auth import Principal, require, require_any
from shared.pagination import Page
from shared.problems import PROBLEM_SCHEMA

#: A principal holding `read`: non-public data.
Reader = Annotated[Principal, require("read")]
#: A principal holding `admin`: operations.
Admin = Annotated[Principal, require("admin")]
#: Importing archives with their recorded dates (docs/archive-import.md).
ArchiveImporter = Annotated[Principal, require_any("admin", "archive:import")]

#: The archive file an import reads, recorded in the history and the audit row (docs/archive-import.md).
SourceFile = Annotated[
    str,
    Header(
        alias="X-Source-File",
        min_length=1,
        max_length=200,
        description="The archive file the rows come from (recorded with every imported record)",
    ),
]


async def _archive_source(_: ArchiveImporter, source_file: SourceFile) -> str:
    return source_file


#: An archive import's source file, once the caller is known to import archives: the two always go together.
ArchiveSource = Annotated[str, Depends(_archive_source)]

#: Page size of authenticated lists; each route sets its own default.
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size")]
#: Page size of the public (no token) lists.
PublicLimit = Annotated[int, Query(ge=1, le=500, description="Page size")]
#: The form of every cursor (base64url, unpadded); only one this API issued is accepted (else 422).
CURSOR_PATTERN = r"^[A-Za-z0-9_-]*$"
Cursor = Annotated[
    str | None,
    Query(
        description="`next_cursor` of the previous page (opaque; empty or absent for the first page)",
        json_schema_extra={"pattern": CURSOR_PATTERN},
    ),
]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='The ETag read from the resource (`"<version>"`); without it the change answers 428',
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="Retries with the same key and body answer the first response again"),
]


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for these statuses, each answering the shared Problem schema."""
    return {s: PROBLEM_SCHEMA for s in statuses}


#: The errors any authenticated route may answer.
ERRORS = problems(401, 403, 404, 422)
#: …and a route that changes a versioned resource.
WRITE_ERRORS = problems(401, 403, 404, 409, 412, 422, 428)


class Section:
    """The routes of one tag of a router: the tag and the errors they answer are said once (those of its
    writes too, where they differ), each route states its path, model and summary (and other `responses`
    where it answers others).

    `results = Section(router, "results", ERRORS)` then `@results.get("/results/{id}", ...)`; the
    routes stay on `router`, in the order they are written (the document's order)."""

    def __init__(
        self,
        router: APIRouter,
        tag: str,
        responses: dict[int | str, dict[str, Any]] | None = None,
        writes: dict[int | str, dict[str, Any]] | None = None,
    ) -> None:
        self.router = router
        self.tag = tag
        self.responses = responses
        #: The errors its POST and PATCH routes answer, where they are not those of its reads.
        self.writes = responses if writes is None else writes

    def route(self, method: str, path: str, **options: Any) -> Callable[[DecoratedCallable], DecoratedCallable]:
        options.setdefault("responses", self.responses if method == "GET" else self.writes)
        return self.router.api_route(path, methods=[method], tags=[self.tag], **options)

    def get(self, path: str, **options: Any) -> Callable[[DecoratedCallable], DecoratedCallable]:
        return self.route("GET", path, **options)

    def listing(self, path: str, item: type[Any], **options: Any) -> Callable[[DecoratedCallable], DecoratedCallable]:
        """A keyset-paginated list: GET answering a `Page` of `item` (`items` and `next_cursor`)."""
        return self.get(path, response_model=Page[item], **options)  # type: ignore[valid-type]  # a runtime model

    def post(self, path: str, **options: Any) -> Callable[[DecoratedCallable], DecoratedCallable]:
        return self.route("POST", path, **options)

    def create(self, path: str, item: type[Any], **options: Any) -> Callable[[DecoratedCallable], DecoratedCallable]:
        """A route creating one resource: POST answering 201 with `item`."""
        return self.post(path, status_code=201, response_model=item, **options)

    def patch(self, path: str, **options: Any) -> Callable[[DecoratedCallable], DecoratedCallable]:
        return self.route("PATCH", path, **options)


def endpoint(
    name: str,
    run: Callable[..., Awaitable[Any]],
    params: Mapping[str, Any],
    defaults: Mapping[str, Any] | None = None,
) -> Callable[..., Awaitable[Any]]:
    """A route function made from data, for routes registered from a table: named `name`, taking `params`
    (name → annotation, in the document's order; `defaults` for the optional ones) as keywords and answering
    `run(**them)`. FastAPI reads the signature set here: the annotations are the objects themselves, where a
    function written in a module with postponed annotations holds strings it resolves in that module."""

    async def route(**values: Any) -> Any:
        return await run(**values)

    given = defaults or {}
    route.__name__ = route.__qualname__ = name
    route.__signature__ = inspect.Signature(  # type: ignore[attr-defined]  # read by inspect.signature
        [
            inspect.Parameter(
                p, inspect.Parameter.KEYWORD_ONLY, annotation=a, default=given.get(p, inspect.Parameter.empty)
            )
            for p, a in params.items()
        ],
        return_annotation=Any,
    )
    return route


class SegmentConvertor(Convertor[str]):
    """A path parameter that never holds `:`: `GET /v1/results/{id}:retract` is not `GET
    /v1/results/{id}` with an id ending in `:retract` (it answers 405 naming the action's methods)."""

    regex = "[^/:\x00-\x1f\x7f]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return str(value)


register_url_convertor("segment", SegmentConvertor())
_PLAIN_PARAM = re.compile(r"\{(\w+)\}")


def segment_params(router: APIRouter) -> APIRouter:
    """Every plain `{param}` of the router's paths becomes `{param:segment}` (the documented path is
    unchanged). Called on each router before an app includes it."""
    for route in router.routes:
        if isinstance(route, APIRoute | APIWebSocketRoute | Route):
            route.path = _PLAIN_PARAM.sub(r"{\1:segment}", route.path)
    return router
