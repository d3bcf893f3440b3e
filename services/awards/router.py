"""Thin routes of the awards service: parse, call a use case, commit, answer."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from services.awards import repository, schemas, service
from services.awards.csvimport import CsvTooLarge, parse_csv
from services.awards.domain import HonourNotFound, PeriodReversed, UnknownHonourTypeCode, load_catalog
from services.awards.models import idempotency_keys
from services.awards.settings import AwardsSettings
from shared.auth import Principal, require
from shared.context import IdempotentCreation, RequestContext
from shared.errors import field_error
from shared.pagination import Page, decode_cursor, page
from shared.preconditions import etag
from shared.problems import PROBLEM_SCHEMA
from shared.ratelimit import public_rate_limit
from shared.regions import add_regions_route
from shared.routing import ERRORS, ArchiveSource, Cursor, IfMatch, Limit, PublicLimit, Reader, Section, problems
from shared.runtime import Runtime, UoW
from shared.strict import Day
from shared.tabular import tally

router = APIRouter(prefix="/v1")
Writer = Annotated[Principal, require("awards:write")]
_errors = problems(401, 403, 409, 422)
#: The sections of the document, each with the errors its routes answer (writes name theirs).
_catalog = Section(router, "catalog")
_honours = Section(router, "honours", ERRORS)
_counts = Section(router, "counts", ERRORS)
StateQ = Literal["active", "suspended", "revoked", "expired"]


async def _page(uow: UoW, rows: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """A page of honours with their suspensions (one query for the page)."""
    kept = rows[:limit]
    susp = await repository.suspensions_of(uow.session, [r["honour_id"] for r in kept])
    catalog = load_catalog()
    return page(
        rows, limit, lambda r: (r["honour_id"],), lambda r: service.honour_out(r, catalog, susp[r["honour_id"]])
    )


async def _one(uow: UoW, row: dict[str, Any]) -> dict[str, Any]:
    susp = await repository.suspensions_of(uow.session, [row["honour_id"]])
    return service.honour_out(row, load_catalog(), susp[row["honour_id"]])


# ------------------------------------------------------------------------------ catalog (public)


@_catalog.get("/honour-types", response_model=schemas.CatalogOut, summary="Every honour type (no token)")
async def honour_types() -> Any:
    catalog = load_catalog()
    return {"version": catalog.version, "types": [t.as_dict() for t in catalog.types]}


@_catalog.get(
    "/honour-types/{code}",
    response_model=schemas.HonourTypeOut,
    responses={404: PROBLEM_SCHEMA},
    summary="One honour type (no token)",
)
async def honour_type(code: str) -> Any:
    t = load_catalog().find(code)
    if t is None:
        raise UnknownHonourTypeCode(code)
    return t.as_dict()


add_regions_route(router, "catalog")


# ------------------------------------------------------------------------------ writes


@_honours.create(
    "/honours",
    schemas.HonourOut,
    responses=_errors,
    summary="Grant an honour (Idempotency-Key honoured)",
)
async def grant(body: schemas.GrantIn, principal: Writer, creation: IdempotentCreation) -> Any:
    uow = creation.uow

    async def create() -> tuple[int, Any]:
        row = await service.grant(uow.session, service.request_context(creation.ctx), body)
        return 201, schemas.HonourOut.model_validate(await _one(uow, row)).model_dump(mode="json")

    out = await creation.once(idempotency_keys, principal, "/v1/honours", body, create)
    creation.response.headers["Location"] = f"/v1/honours/{out['honour_id']}"
    return out


#: The registry imports (CSV): every row's outcome, or the file refused as too large (413) or not CSV (415).
_registry_import = partial(
    _honours.post, response_model=schemas.ImportOut, responses=_errors | {413: PROBLEM_SCHEMA, 415: PROBLEM_SCHEMA}
)


@_registry_import(
    "/honours:import",
    summary="Import a historical registry (CSV); every row's outcome is reported",
    description="Columns (header row): "
    + ", ".join(service.CSV_COLUMNS)
    + ". Required: "
    + ", ".join(service.CSV_REQUIRED)
    + ". holder_kind may be left out when the type has one holder kind. "
    "Valid rows are stored, bad rows are reported with their field and reason; a re-import of the same "
    "rows reports them as duplicates and changes nothing.",
    openapi_extra={
        "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}}}
    },
)
async def import_csv(request: Request, _: Writer, ctx: RequestContext, uow: UoW, runtime: Runtime) -> Any:
    rows = await _registry(request, runtime)
    outcomes = await service.import_rows(uow.session, service.request_context(ctx), rows)
    await uow.commit()
    return _import_out(rows, outcomes)


async def _registry(
    request: Request, runtime: Any, columns: Sequence[str] = service.CSV_COLUMNS
) -> list[dict[str, str]]:
    """A registry file's rows (CSV), within the configured size."""
    settings: AwardsSettings = runtime.settings
    body = await request.body()
    if len(body) > settings.import_max_bytes:
        raise CsvTooLarge(f"At most {settings.import_max_bytes} bytes")
    return parse_csv(body, request.headers.get("content-type", ""), settings.import_max_rows, columns)


def _import_out(rows: Sequence[dict[str, str]], outcomes: Sequence[schemas.RowOutcome]) -> schemas.ImportOut:
    return schemas.ImportOut(
        received=len(rows), **tally(schemas.ImportOut, (o.outcome for o in outcomes)), rows=list(outcomes)
    )


@_registry_import(
    "/honours:archive",
    summary="Import an archived registry (CSV) with revocations on their own dates",
    description="The columns of `POST /v1/honours:import`, and `revoked_on`, `revoke_reason` (both or neither): "
    "each honour is granted on its date, then revoked on the archive's date. Suspensions follow the "
    "blacklist's own (archived) listing dates. `X-Source-File` names the archive file; the audit record "
    "keeps it. See docs/archive-import.md.",
    openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def import_archive(
    request: Request, source_file: ArchiveSource, ctx: RequestContext, uow: UoW, runtime: Runtime
) -> Any:
    rows = await _registry(request, runtime, service.ARCHIVE_COLUMNS)
    outcomes = await service.import_archive(uow.session, service.request_context(ctx), rows, source_file)
    await uow.commit()
    return _import_out(rows, outcomes)


@_honours.post(
    "/honours/{honour_id}:revoke",
    response_model=schemas.HonourOut,
    responses=_errors | {404: PROBLEM_SCHEMA, 412: PROBLEM_SCHEMA, 428: PROBLEM_SCHEMA},
    summary="Revoke an honour, with a reason (If-Match required)",
)
async def revoke(
    honour_id: str,
    body: schemas.RevokeIn,
    _: Writer,
    ctx: RequestContext,
    uow: UoW,
    response: Response,
    if_match: IfMatch = None,
) -> Any:
    row = await service.revoke(uow.session, service.request_context(ctx), honour_id, if_match, body)
    out = await _one(uow, row)
    await uow.commit()
    response.headers["ETag"] = etag(row["version"])
    return out


# ------------------------------------------------------------------------------ reading


@_honours.listing("/honours", schemas.HonourOut, summary="Honours, filtered; cursor-paginated")
async def list_honours(
    _: Reader,
    uow: UoW,
    type_code: str | None = None,
    holder_id: str | None = None,
    holder_kind: Literal["enterprise", "region", "person", "organisation"] | None = None,
    district_code: str | None = None,
    state: StateQ | None = None,
    active_on: Annotated[Day | None, Query(description="Only honours active on this date (see counts)")] = None,
    granted_from: Day | None = None,
    granted_to: Day | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Any:
    holder = holder_id.strip().upper() if holder_id else None
    equal = {"type_code": type_code, "holder_id": holder, "holder_kind": holder_kind, "district_code": district_code}
    f = repository.HonourFilter({**equal, "state": state}, active_on, granted_from, granted_to)
    rows = await repository.list_honours(uow.session, f, decode_cursor(cursor, str), limit + 1)
    return await _page(uow, rows, limit)


@_honours.get(
    "/honours/{honour_id}",
    response_model=schemas.HonourOut,
    responses=ERRORS | {404: PROBLEM_SCHEMA},
    summary="One honour, with its ETag",
)
async def get_honour(honour_id: str, _: Reader, uow: UoW, response: Response) -> Any:
    row = await repository.get(uow.session, honour_id)
    if row is None:
        raise HonourNotFound(honour_id)
    response.headers["ETag"] = etag(row["version"])
    return await _one(uow, row)


@_honours.listing(
    "/holders/{holder_id}/honours",
    schemas.HonourOut,
    summary="Every honour of one holder (USCC, division code or person id)",
)
async def holder_honours(
    holder_id: str, _: Reader, uow: UoW, state: StateQ | None = None, cursor: Cursor = None, limit: Limit = 50
) -> Any:
    f = repository.HonourFilter({"holder_id": holder_id.strip().upper(), "state": state})
    rows = await repository.list_honours(uow.session, f, decode_cursor(cursor, str), limit + 1)
    return await _page(uow, rows, limit)


@_counts.get(
    "/honour-counts",
    response_model=schemas.CountsOut,
    summary="Counts per type and per plan indicator for a period",
    description="`granted_during`: honours granted within [period_start, period_end] and not revoked by the "
    "period's end (expiry or suspension later does not undo a grant). `active_at_end`: honours active on "
    "period_end — granted by then, within validity, not revoked and **not suspended**: an honour suspended "
    "(its holder blacklisted) on the period's last day is not active at the end.",
)
async def counts(
    _: Reader,
    uow: UoW,
    period_start: Annotated[Day, Query(description="The period's first day")],
    period_end: Annotated[Day, Query(description="The period's last day: not before `period_start` (else 422)")],
    district_code: str | None = None,
) -> Any:
    if period_end < period_start:
        raise PeriodReversed(
            f"period_end {period_end} is before period_start {period_start}",
            [field_error("period_end", "query", "before period_start")],
        )
    got = await repository.counts_by_type(uow.session, period_start, period_end, district_code)
    catalog = load_catalog()
    by_type = []
    by_ind: dict[str, list[Any]] = defaultdict(lambda: [[], 0, 0])
    for t in catalog.types:
        g, a = got.get(t.code, (0, 0))
        by_type.append(
            {
                "type_code": t.code,
                "type_name_zh": t.name_zh,
                "indicator_code": t.indicator_code,
                "granted_during": g,
                "active_at_end": a,
            }
        )
        acc = by_ind[t.indicator_code]
        acc[0].append(t.code)
        acc[1] += g
        acc[2] += a
    return {
        "period_start": period_start,
        "period_end": period_end,
        "district_code": district_code,
        "by_type": by_type,
        "by_indicator": [
            {"indicator_code": k, "type_codes": v[0], "granted_during": v[1], "active_at_end": v[2]}
            for k, v in by_ind.items()
        ],
    }


# ------------------------------------------------------------------------------ public lists (公示)


@router.get(
    "/public/honour-types/{code}/honours",
    response_model=Page[schemas.PublicHonourOut],
    tags=["public"],
    responses={404: PROBLEM_SCHEMA, 429: PROBLEM_SCHEMA},
    dependencies=[Depends(public_rate_limit)],
    summary="The public list (公示) of one type's active honours (no token; rate-limited)",
)
async def public_list(code: str, uow: UoW, cursor: Cursor = None, limit: PublicLimit = 50) -> Any:
    if load_catalog().find(code) is None:
        raise UnknownHonourTypeCode(code)
    f = repository.HonourFilter({"type_code": code, "state": "active"})
    rows = await repository.list_honours(uow.session, f, decode_cursor(cursor, str), limit + 1)
    page = await _page(uow, rows, limit)
    keep = schemas.PublicHonourOut.model_fields
    page["items"] = [{k: v for k, v in item.items() if k in keep} for item in page["items"]]
    return page
