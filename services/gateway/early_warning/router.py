"""Thin routes of the early warnings: the rules (public) and the warnings raised (`read`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request

from services.gateway.early_warning import repository
from services.gateway.early_warning.rules import RuleSet
from services.gateway.early_warning.schemas import WarningOut, WarningRulesOut
from shared.contracts.gateway import WarningKind
from shared.errors import NotFound
from shared.pagination import Page, decode_cursor, page
from shared.routing import ERRORS, Cursor, Limit, Reader, Section
from shared.runtime import UoW

router = APIRouter(prefix="/v1")
_warnings = Section(router, "early warning", ERRORS)


class WarningNotFound(NotFound, slug="warning-not-found", title="No such warning"):
    """No warning was raised with this id."""


def _out(row: dict[str, Any]) -> dict[str, Any]:
    return {**{k: v for k, v in row.items() if k != "dedup_key"}, "evidence": orjson.loads(row["evidence"])}


@_warnings.get(
    "/warning-rules",
    response_model=WarningRulesOut,
    responses={},  # public, and nothing to refuse
    summary="The early-warning rules in force, with their version and parameters (no token)",
)
async def list_warning_rules(request: Request) -> Any:
    rules: RuleSet = request.app.state.warning_rules
    return rules


@_warnings.get(
    "/warnings",
    response_model=Page[WarningOut],
    summary="Warnings raised, newest first, by kind, state, district, category or enterprise",
)
async def list_warnings(
    _: Reader,
    uow: UoW,
    kind: WarningKind | None = None,
    state: Annotated[str | None, Query(pattern=r"^(open)$")] = None,
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


@_warnings.get("/warnings/{warning_id}", response_model=WarningOut, summary="One warning with its evidence")
async def get_warning(warning_id: str, _: Reader, uow: UoW) -> Any:
    row = await repository.warning(uow.session, warning_id)
    if row is None:
        raise WarningNotFound(f"No warning {warning_id!r}")
    return _out(row)
