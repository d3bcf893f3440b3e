"""The preamble every router shares: scope dependencies, parameter types and the error responses.

One module, so a route reads `principal: Reader, cursor: Cursor, limit: Limit` the same way in
every service.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header, Query

from shared.auth import Principal, require, require_any
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

#: Page size of authenticated lists; each route sets its own default.
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size")]
#: Page size of the public (no token) lists.
PublicLimit = Annotated[int, Query(ge=1, le=500, description="Page size")]
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page")]
IfMatch = Annotated[
    str | None, Header(alias="If-Match", description="The ETag read from the resource; required to change it")
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
