"""The public list of non-conforming products (抽检不合格公示; 青政发〔2012〕32号 四(四): public
scrutiny of enterprises whose products fail).

Only **final** fails are published: a provisional fail may still be overturned on re-inspection,
a retracted result never happened, and a fail overturned reads `pass`. The sampling service serves
it because it alone holds what regulators' notices print (the sampled unit, batch, each
non-conforming item with its measured and required value); the gateway forwards it without a token,
like the blacklist (credit) and the honours (awards). Rate-limited per client (shared/ratelimit.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from services.sampling import repository
from shared.pagination import Page, decode_cursor, page
from shared.problems import PROBLEM_SCHEMA
from shared.ratelimit import public_rate_limit
from shared.regions import load_regions
from shared.routing import Cursor, PublicLimit, Section
from shared.runtime import Runtime, UoW
from shared.strict import Day
from shared.tabular import csv_download

router = APIRouter(prefix="/v1")
#: No token: a public list answers only bad input and the rate limit.
_public_list = Section(router, "public", {422: PROBLEM_SCHEMA, 429: PROBLEM_SCHEMA})


class PublicItem(BaseModel):
    item: str = Field(description="检验项目")
    requirement: str = Field(description="标准要求")
    measured: str = Field(description="检验结果")
    unit: str | None = None
    standard: str = Field(description="判定依据")


class PublicNonconforming(BaseModel):
    """One final fail as notices print it (publishable fields only)."""

    result_id: str
    agency_code: str = Field(description="The inspection agency (承检机构)")
    report_no: str
    level: str
    sector: str
    product_category: str
    product_name: str
    brand: str | None
    model_spec: str | None
    batch_no: str | None
    production_date: date | None
    enterprise_name: str = Field(description="标称生产企业")
    uscc: str
    district_code: str
    district_name_zh: str | None
    sampled_unit: str | None = Field(description="被抽样单位")
    sampling_date: date
    report_date: date
    reinspection: str | None = Field(description="'upheld' when a re-inspection (复检) confirmed the fail")
    nonconforming_items: list[PublicItem]


class PublicFilter(BaseModel):
    category: str | None = Field(None, max_length=64, description="The product category, exactly")
    district: str | None = Field(None, pattern=r"^\d{6}$", description="A district's division code")
    from_: Day | None = Field(None, alias="from", description="Reported on or after")
    to: Day | None = Field(None, description="Reported on or before")
    enterprise: str | None = Field(None, min_length=1, max_length=100, description="A fragment of the producer's name")
    product: str | None = Field(None, min_length=1, max_length=100, description="A fragment of the product's name")


_COLUMNS = tuple(k for k in PublicNonconforming.model_fields if k not in ("nonconforming_items", "district_name_zh"))
_NAMES = {r.code: r.name_zh for r in load_regions().regions}


def _filters(q: PublicFilter) -> dict[str, Any]:
    return {
        "state": "final",
        "conclusion": "fail",
        "category": q.category,
        "district": q.district,
        "reported_from": q.from_,
        "reported_to": q.to,
        "name_like": q.enterprise,
        "product_like": q.product,
    }


def _public(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row[k] for k in _COLUMNS if k != "result_id"}
    out["result_id"] = row["id"]
    out["district_name_zh"] = _NAMES.get(row["district_code"])
    out["nonconforming_items"] = orjson.loads(row["nonconforming_items"])
    return out


@_public_list.get(
    "/public/nonconforming-products",
    response_model=Page[PublicNonconforming],
    dependencies=[Depends(public_rate_limit)],
    summary="Published non-conforming products (抽检不合格公示): final fails only, newest report first; "
    "no token, rate-limited",
)
async def list_nonconforming_products(
    q: Annotated[PublicFilter, Query()], uow: UoW, cursor: Cursor = None, limit: PublicLimit = 50
) -> Any:
    after = decode_cursor(cursor, date, str)
    rows = await repository.public_fails(uow.session, _filters(q), after, limit + 1)
    return page(rows, limit, lambda r: (r["report_date"], r["id"]), _public)


@_public_list.get(
    "/public/nonconforming-products:export",
    responses={
        422: PROBLEM_SCHEMA,
        429: PROBLEM_SCHEMA,
        200: {"description": "The list of the filter as CSV", "content": {"text/csv": {}}},
    },
    response_class=StreamingResponse,
    dependencies=[Depends(public_rate_limit)],
    summary="The published non-conforming products of a filter as CSV (no token, rate-limited)",
)
async def export_nonconforming_products(q: Annotated[PublicFilter, Query()], runtime: Runtime) -> StreamingResponse:
    filters = _filters(q)
    header = [*_COLUMNS, "district_name_zh", "nonconforming_items"]

    async def rows() -> AsyncIterator[list[Any]]:
        async with runtime.unit_of_work() as uow:  # its own session: the response outlives the handler
            after: tuple[date, str] | None = None
            while True:
                found = await repository.public_fails(uow.session, filters, after, 1000)
                for row in found:
                    p = _public(row)
                    items = "; ".join(
                        f"{i['item']}: {i['measured']}{i.get('unit') or ''} ({i['requirement']}, {i['standard']})"
                        for i in p["nonconforming_items"]
                    )
                    yield [p[c] for c in header[:-1]] + [items]
                if len(found) < 1000:
                    return
                after = (found[-1]["report_date"], found[-1]["id"])

    return csv_download(header, rows(), "nonconforming-products.csv")
