"""Thin routes of the sampling service."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, Literal, TypeVar

import orjson
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from services.sampling import repository, service
from services.sampling.domain import BatchRejected, Conclusion, Level, ResultNotFound, Rules, Sector, State
from services.sampling.ingest import ARCHIVE_COLUMNS, CSV_COLUMNS, parse_archive, parse_batch
from services.sampling.models import idempotency_keys, results
from services.sampling.schemas import (
    ArchiveImportOut,
    BatchOut,
    Correction,
    PassRateGroup,
    PassRates,
    ReinspectionIn,
    ResultIn,
    ResultOut,
    Retraction,
    Scorecard,
    VersionOut,
)
from shared.auth import Principal, require
from shared.context import Change, Context, IdempotentCreation, RequestContext, VersionedChange
from shared.pagination import decode_cursor, page
from shared.preconditions import etag
from shared.problems import PROBLEM_SCHEMA
from shared.regions import add_regions_route
from shared.routing import CURSOR_PATTERN, ERRORS, WRITE_ERRORS, ArchiveSource, Reader, Section
from shared.runtime import Runtime, UoW
from shared.service_app import job_schedule
from shared.stats import wilson_interval
from shared.strict import Day
from shared.tabular import csv_download, tally
from shared.uscc import USCC

router = APIRouter(prefix="/v1")
Writer = Annotated[Principal, require("sampling:write")]
#: The sections of the document, each with the errors its routes answer (writes name theirs).
_results = Section(router, "results", ERRORS)
_statistics = Section(router, "statistics", ERRORS)


def _context(request: Request, base: Context) -> service.Context:
    return service.Context.extend(
        base,
        rules=request.app.state.rules,
        regions=request.app.state.regions,
        batch_events=request.app.state.runtime.bus.in_outbox_order,
    )


def _out(row: dict[str, Any]) -> dict[str, Any]:
    items = row["nonconforming_items"]
    return {**row, "nonconforming_items": orjson.loads(items) if isinstance(items, str) else items}


async def _owned_row(uow: UoW, result_id: str) -> dict[str, Any]:
    row = await repository.get(uow.session, result_id)
    if row is None:
        raise ResultNotFound(result_id)
    return row


# ---------------------------------------------------------------- writing


_Row = TypeVar("_Row")
#: A bulk route's choice: store the valid rows and report the others, or nothing if any row fails.
Atomic = Annotated[bool, Query(description="Store nothing if any row is rejected or conflicts")]
#: A bulk body's own failures: malformed (400), too large (413), of another media type (415).
_BULK_ERRORS = WRITE_ERRORS | {400: PROBLEM_SCHEMA, 413: PROBLEM_SCHEMA, 415: PROBLEM_SCHEMA}


async def _bulk_rows(request: Request, parse: Callable[[bytes, str, int], list[_Row]]) -> list[_Row]:
    """The rows of a bulk body, in any of its formats, up to the rules' row limit."""
    rules: Rules = request.app.state.rules
    return parse(await request.body(), request.headers.get("content-type", ""), rules.batch_max_rows)


async def _commit_outcomes(uow: UoW, outcomes: list[dict[str, Any]], received: int, atomic: bool) -> Counter[str]:
    """Commit a bulk request's stored rows and count the outcomes; with `atomic`, any rejected or
    conflicting row refuses the whole request (nothing committed)."""
    counts = Counter(o["outcome"] for o in outcomes)
    failed = counts["rejected"] + counts["conflict"]
    if atomic and failed:
        raise BatchRejected(failed, received, [o for o in outcomes if o["outcome"] in ("rejected", "conflict")])
    await uow.commit()
    return counts


def _bulk_body(row_schema: str | None) -> dict[str, Any]:
    """The documented request body of a bulk route: NDJSON, a JSON array of `row_schema` (an object
    described in the route's text when the schema is no component of the document), or CSV."""
    item = {"$ref": f"#/components/schemas/{row_schema}"} if row_schema else {"type": "object"}
    array = {"type": "array", "items": item}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": array},
                "application/x-ndjson": {"schema": {"type": "string", "format": "binary"}},
                "text/csv": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    }


@_results.create(
    "/results",
    ResultOut,
    responses=WRITE_ERRORS
    | {200: {"model": ResultOut, "description": "The same report again, with the same content: the stored result"}},
    summary="Record one sampling-inspection result",
)
async def create_result(body: ResultIn, principal: Writer, creation: IdempotentCreation) -> Any:
    """The agency is the token's. Re-sending the same report (same agency and report number, same
    content) answers the stored result with 200; other content under that report number is a 409."""
    uow = creation.uow

    async def create() -> tuple[int, Any]:
        ctx = _context(creation.request, creation.ctx)
        result_id, created = await service.record_result(uow.session, ctx, body)
        row = _out(await _owned_row(uow, result_id))
        return (201 if created else 200), ResultOut.model_validate(row).model_dump(mode="json")

    out = await creation.once(idempotency_keys, principal, "/v1/results", body, create)
    creation.response.headers["Location"] = f"/v1/results/{out['id']}"
    return out


@_results.post(
    "/results:batch",
    response_model=BatchOut,
    responses=_BULK_ERRORS,
    summary="Record up to 10,000 results (JSON array, NDJSON or CSV); every row's outcome is reported",
    description="CSV: UTF-8 with a header row in English or Chinese: "
    + ", ".join(f"`{en}`/`{zh}`" for en, zh in CSV_COLUMNS.items())
    + "; `nonconforming_items` holds a JSON array; Chinese values (合格/不合格, 国家级/省级/市级/区级, "
    "制造业/农产品/食品/工程, 是/否) are accepted. Without `atomic` the valid rows are stored and the others "
    "reported; with `atomic=true` one bad row stores nothing (answer 422 with every row's outcome).",
    openapi_extra=_bulk_body("ResultIn"),
)
async def create_results_batch(
    request: Request, _: Writer, ctx: RequestContext, uow: UoW, atomic: Atomic = False
) -> Any:
    rows = await _bulk_rows(request, parse_batch)
    outcomes = await service.record_batch(uow.session, _context(request, ctx), rows, atomic=atomic)
    counts = await _commit_outcomes(uow, outcomes, len(rows), atomic)
    out = {"received": len(rows), **tally(BatchOut, counts), "atomic": atomic, "rows": outcomes}
    # Encoded once with orjson (the shape is BatchOut, as documented): validating ten thousand row
    # outcomes through the response model would cost more than storing them.
    return Response(orjson.dumps(out), media_type="application/json")


@_results.post(
    "/results:import",
    response_model=ArchiveImportOut,
    responses=_BULK_ERRORS,
    summary="Import archived results with their re-inspection outcome and final state, on their own dates",
    description="The formats of `POST /v1/results:batch`, with further columns: "
    + ", ".join(f"`{en}`/`{zh}`" for en, zh in ARCHIVE_COLUMNS.items() if en not in CSV_COLUMNS)
    + ". Each result is recorded on its report date and re-inspected or finalised on the archive's dates "
    "(the objection window counted from its own report date), with the events live operation emits. "
    "`X-Source-File` names the archive file; the history and the audit record keep it. "
    "See docs/archive-import.md.",
    openapi_extra=_bulk_body(None),  # rows: ResultIn with the columns above
)
async def import_results(
    request: Request,
    source_file: ArchiveSource,
    ctx: RequestContext,
    uow: UoW,
    atomic: Atomic = False,
) -> Any:
    rows = await _bulk_rows(request, parse_archive)
    outcomes = await service.import_archive(uow.session, _context(request, ctx), rows, source_file)
    counts = await _commit_outcomes(uow, outcomes, len(rows), atomic)
    return ArchiveImportOut(
        source_file=source_file,
        received=len(rows),
        **tally(ArchiveImportOut, counts),
        atomic=atomic,
        rows=outcomes,  # type: ignore[arg-type]
    )


async def _change_result(
    use_case: Callable[..., Awaitable[dict[str, Any]]], change: Change, result_id: str, arg: Any
) -> Any:
    return _out(await change.commit(use_case, _context(change.request, change.ctx), result_id, arg))


#: The routes that change one result and answer it, If-Match and ETag.
_result_change: dict[str, Any] = {"response_model": ResultOut, "responses": WRITE_ERRORS}


@_results.patch(
    "/results/{result_id}", **_result_change, summary="Correct a result (owning agency; If-Match; a reason is required)"
)
async def correct_result(result_id: str, body: Correction, _: Writer, change: VersionedChange) -> Any:
    return await _change_result(service.correct, change, result_id, body)


@_results.post(
    "/results/{result_id}:retract",
    **_result_change,
    summary="Retract a result (owning agency; If-Match; a reason is required)",
)
async def retract_result(result_id: str, body: Retraction, _: Writer, change: VersionedChange) -> Any:
    return await _change_result(service.retract, change, result_id, body.reason)


@_results.post(
    "/results/{result_id}/reinspection",
    **_result_change,
    summary="Record a re-inspection (复检) that upholds or overturns a provisional fail (If-Match)",
    description=(
        "Any agency with `sampling:write` may record a re-inspection, not only the agency that owns the "
        "result: by design, since the enterprise's objection is usually re-inspected by another agency (复检 "
        "by a different 检验机构). The owning agency's result changes; the new version in "
        "`GET /v1/results/{result_id}/history` names the recording agency (`agency`, from its token) and "
        "subject (`actor`). Correcting and retracting remain the owning agency's alone."
    ),
)
async def reinspect_result(result_id: str, body: ReinspectionIn, _: Writer, change: VersionedChange) -> Any:
    return await _change_result(service.record_reinspection, change, result_id, body)


# ---------------------------------------------------------------- reading


class ResultFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uscc: USCC | None = None
    agency: str | None = Field(None, max_length=32)
    sector: Sector | None = None
    level: Level | None = None
    district: str | None = Field(None, pattern=r"^[0-9]{6}$")
    category: str | None = Field(None, max_length=64)
    conclusion: Conclusion | None = None
    state: State | None = None
    key_product: bool | None = None
    sampled_from: Day | None = None
    sampled_to: Day | None = None
    reported_from: Day | None = None
    reported_to: Day | None = None


class ListQuery(ResultFilter):
    cursor: str | None = Field(
        None, description="`next_cursor` of the previous page", json_schema_extra={"pattern": CURSOR_PATTERN}
    )
    limit: int = Field(100, ge=1, le=1000)


def _filters(q: ResultFilter) -> dict[str, Any]:
    f = q.model_dump(exclude={"cursor", "limit"})
    for k in ("sector", "level", "conclusion", "state"):
        if f.get(k) is not None:
            f[k] = str(f[k].value) if hasattr(f[k], "value") else f[k]
    return f


@_results.listing(
    "/results",
    ResultOut,
    summary="Results by enterprise, agency, sector, level, district, category, conclusion, state, dates",
)
async def list_results(q: Annotated[ListQuery, Query()], _: Reader, uow: UoW) -> Any:
    rows = await repository.list_results(uow.session, _filters(q), decode_cursor(q.cursor, str), q.limit + 1)
    return page(rows, q.limit, lambda r: (r["id"],), _out)


#: Every stored column but the recording user's id, in table order.
EXPORT_COLUMNS = [c.name for c in results.columns if c.name != "recorded_by"]


@_results.get(
    "/results:export",
    response_class=StreamingResponse,
    summary="Every result of a filter as CSV, streamed (same filters as GET /v1/results)",
)
async def export_results(q: Annotated[ResultFilter, Query()], _: Reader, runtime: Runtime) -> StreamingResponse:
    filters = _filters(q)

    async def rows() -> AsyncIterator[list[Any]]:
        async with runtime.unit_of_work() as uow:  # its own session: the response outlives the handler
            async for row in repository.stream_results(uow.session, filters):
                yield [row[c] for c in EXPORT_COLUMNS]

    return csv_download(EXPORT_COLUMNS, rows(), "results.csv")


@_results.get("/results/{result_id}", response_model=ResultOut, summary="One result (with its ETag)")
async def get_result(result_id: str, _: Reader, uow: UoW, response: Response) -> Any:
    row = await _owned_row(uow, result_id)
    response.headers["ETag"] = etag(row["version"])
    return _out(row)


@_results.get(
    "/results/{result_id}/history",
    response_model=list[VersionOut],
    summary="Every version of a result: who changed what, when and why",
)
async def result_history(result_id: str, _: Reader, uow: UoW) -> Any:
    row = await _owned_row(uow, result_id)
    versions = await repository.versions(uow.session, result_id)
    if not versions:
        return [
            {
                "version": 1,
                "change": "recorded",
                "reason": None,
                "actor": row["recorded_by"],
                "agency": row["agency_code"],
                "at": row["recorded_at"],
                "result": _out({k: v for k, v in row.items() if k != "recorded_by"}),
            }
        ]
    return [{**v, "result": orjson.loads(v["snapshot"])} for v in versions]


GroupName = Literal["sector", "level", "district", "year", "quarter", "category", "key_product", "agency"]


class PassRateQuery(ResultFilter):
    group_by: list[GroupName] = Field(default_factory=lambda: list[GroupName](["sector"]))
    include_provisional: bool = Field(True, description="Count fails whose objection window is still open")


@_statistics.get(
    "/stats/pass-rates",
    response_model=PassRates,
    summary="Pass rates grouped by any of sector, level, district, year, quarter, category",
)
async def pass_rates(q: Annotated[PassRateQuery, Query()], _: Reader, uow: UoW) -> Any:
    """Each result counts once in its latest state; retracted results never count. `n` is what the
    rate rests on, with its 95% Wilson score interval."""
    group_by: list[str] = list(dict.fromkeys(q.group_by))
    f = _filters(ResultFilter.model_validate(q.model_dump(exclude={"group_by", "include_provisional"})))
    groups = await repository.pass_rates(uow.session, group_by, f, q.include_provisional)
    return PassRates(
        group_by=group_by,
        include_provisional=q.include_provisional,
        n=sum(g["n"] for g in groups),
        groups=[
            PassRateGroup(
                key=g["key"],
                n=g["n"],
                passed=g["passed"],
                failed=g["n"] - g["passed"],
                rate=g["passed"] / g["n"],
                wilson_95=wilson_interval(g["passed"], g["n"]),
            )
            for g in groups
        ],
    )


@_statistics.get("/agencies/{code}/scorecard", response_model=Scorecard, summary="An agency's data-quality scorecard")
async def scorecard(code: str, principal: Reader, uow: UoW) -> Any:
    return await repository.scorecard(uow.session, code)


add_regions_route(router, "reference")


@router.get(
    "/rules",
    tags=["reference"],
    summary="The sampling rules in force and the periodic jobs' schedule",
)
async def rules(request: Request) -> dict[str, Any]:
    r: Rules = request.app.state.rules
    return {
        "version": r.version,
        "objection_window_days": r.objection_window_days,
        "batch_max_rows": r.batch_max_rows,
        "jobs": job_schedule(request.app.state.runtime.scheduler.jobs.values()),
    }
