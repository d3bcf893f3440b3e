"""Thin routes of the early warnings: the rules (public), the warnings raised (`read`), and their
workflow (`warnings:write`: acknowledge, close)."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from services.gateway.early_warning import repository, service
from services.gateway.early_warning.domain import WarningNotFound
from services.gateway.early_warning.rules import RuleSet
from services.gateway.early_warning.schemas import WarningClose, WarningNote, WarningOut, WarningRulesOut
from services.gateway.early_warning.service import snapshot
from shared.auth import Principal, require
from shared.context import VersionedChange
from shared.contracts.gateway import WarningKind, WarningState
from shared.pagination import decode_cursor, page
from shared.preconditions import etag
from shared.routing import ERRORS, WRITE_ERRORS, Cursor, Limit, Reader, Section
from shared.runtime import UoW

router = APIRouter(prefix="/v1")
_warnings = Section(router, "early warning", ERRORS)


#: Who acknowledges and closes warnings (docs/security.md).
Handler = Annotated[Principal, require("warnings:write")]


def _out(row: dict[str, Any]) -> dict[str, Any]:
    return snapshot(row).model_dump()


@_warnings.get(
    "/warning-rules",
    response_model=WarningRulesOut,
    responses={},  # public, and nothing to refuse
    summary="The early-warning rules in force, with their version and parameters (no token)",
)
async def list_warning_rules(request: Request) -> Any:
    rules: RuleSet = request.app.state.warning_rules
    return rules


@_warnings.listing(
    "/warnings", WarningOut, summary="Warnings raised, newest first, by kind, state, district, category or enterprise"
)
async def list_warnings(
    _: Reader,
    uow: UoW,
    kind: WarningKind | None = None,
    state: WarningState | None = None,
    district: Annotated[str | None, Query(pattern=r"^\d{6}$", description="A district's division code")] = None,
    category: Annotated[str | None, Query(max_length=64, description="A product category")] = None,
    uscc: Annotated[str | None, Query(pattern=r"^[0-9A-Za-z]{18}$")] = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> Any:
    filters = {
        "kind": kind,
        "state": state,
        "district_code": district,
        "product_category": category,
        "uscc": uscc.upper() if uscc else None,
    }
    rows = await repository.list_warnings(uow.session, filters, decode_cursor(cursor, datetime, str), limit + 1)
    return page(rows, limit, lambda r: (r["raised_at"], r["warning_id"]), _out)


@_warnings.get(
    "/warnings/{warning_id}",
    response_model=WarningOut,
    summary="One warning with its evidence and workflow, with its ETag for the next transition",
)
async def get_warning(warning_id: str, _: Reader, uow: UoW, response: Response) -> Any:
    row = await repository.warning(uow.session, warning_id)
    if row is None:
        raise WarningNotFound(f"No warning {warning_id!r}")
    response.headers["ETag"] = etag(row["version"])
    return _out(row)


#: The routes that move one warning along its workflow, If-Match and ETag.
_transition = partial(_warnings.post, response_model=WarningOut, responses=WRITE_ERRORS)


@_transition(
    "/warnings/{warning_id}:acknowledge",
    summary="Acknowledge an open warning: someone handles it (who, when, a note; If-Match)",
)
async def acknowledge_warning(warning_id: str, body: WarningNote, _: Handler, change: VersionedChange) -> Any:
    return _out(await change.commit(service.acknowledge, change.ctx, warning_id, body.note))


@_transition(
    "/warnings/{warning_id}:close",
    summary="Close an open or acknowledged warning with a note (If-Match): its condition may raise again",
)
async def close_warning(warning_id: str, body: WarningClose, _: Handler, change: VersionedChange) -> Any:
    return _out(await change.commit(service.close, change.ctx, warning_id, body.note))
