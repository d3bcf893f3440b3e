"""Thin routes of the sampling service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response, status

from services.sampling import repository, service
from services.sampling.ingest import parse_batch
from services.sampling.schemas import BatchOut, ResultIn, ResultOut
from services.sampling.settings import SamplingSettings
from shared.auth import Principal, require
from shared.problems import PROBLEM_SCHEMA, Problem
from shared.runtime import Runtime, UoW

router = APIRouter(prefix="/v1", tags=["results"])
Writer = Annotated[Principal, require("sampling:write")]
Reader = Annotated[Principal, require("read")]
_errors: dict[int | str, dict[str, Any]] = {s: PROBLEM_SCHEMA for s in (401, 403, 409, 422)}


@router.post(
    "/results",
    status_code=status.HTTP_201_CREATED,
    response_model=ResultOut,
    responses=_errors,
    summary="Record one sampling-inspection result",
)
async def create_result(body: ResultIn, principal: Writer, uow: UoW, response: Response) -> Any:
    row, created = await service.record_result(uow.session, principal, body)
    await uow.commit()
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/v1/results/{row['id']}"
    return row


@router.post(
    "/results:batch",
    response_model=BatchOut,
    responses=_errors | {413: PROBLEM_SCHEMA, 415: PROBLEM_SCHEMA},
    summary="Record many results (JSON array or NDJSON); every row's outcome is reported",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "array", "items": ResultIn.model_json_schema()}},
            },
        }
    },
)
async def create_results_batch(request: Request, principal: Writer, uow: UoW, runtime: Runtime) -> Any:
    settings: SamplingSettings = runtime.settings  # type: ignore[assignment]
    rows = parse_batch(await request.body(), request.headers.get("content-type", ""), settings.batch_max_rows)
    outcomes = await service.record_batch(uow.session, principal, rows)
    await uow.commit()
    counts = {k: sum(1 for o in outcomes if o.outcome == k) for k in ("created", "duplicate", "rejected", "conflict")}
    return BatchOut(
        received=len(rows),
        created=counts["created"],
        duplicates=counts["duplicate"],
        rejected=counts["rejected"] + counts["conflict"],
        rows=outcomes,
    )


@router.get(
    "/results/{result_id}", response_model=ResultOut, responses=_errors | {404: PROBLEM_SCHEMA}, summary="One result"
)
async def get_result(result_id: str, _: Reader, uow: UoW) -> Any:
    row = await repository.get(uow.session, result_id)
    if row is None:
        raise Problem(404, "result-not-found", "Result not found", f"No result has id {result_id}")
    return row
