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
from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from services.sampling import notices, repository
from services.sampling.domain import NoticeNotFound
from services.sampling.models import idempotency_keys
from services.sampling.schemas import NoticeCorrection, NoticeIn, NoticeOut
from shared.auth import Principal, require
from shared.context import IdempotentCreation, VersionedChange
from shared.pagination import decode_cursor, page
from shared.preconditions import etag
from shared.problems import PROBLEM_SCHEMA
from shared.ratelimit import public_rate_limit
from shared.regions import load_regions
from shared.routing import ERRORS, WRITE_ERRORS, Cursor, Limit, PublicLimit, Reader, Section
from shared.runtime import Runtime, UoW
from shared.strict import Day
from shared.tabular import csv_download

router = APIRouter(prefix="/v1")
#: No token: a public list answers only bad input and the rate limit.
_public_list = Section(router, "public", {422: PROBLEM_SCHEMA, 429: PROBLEM_SCHEMA})
_notices = Section(router, "notices", ERRORS)
Publisher = Annotated[Principal, require("sampling:publish")]


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
    report_no: str = Field(description="检验报告编号")
    level: str = Field(description="抽查层级 (national, provincial, municipal)")
    sector: str
    # The labels a notice (公告) prints over each column: the public schema reads as the notice does.
    product_category: str = Field(description="产品类别")
    product_name: str = Field(description="产品名称")
    brand: str | None = Field(description="商标")
    model_spec: str | None = Field(description="规格型号")
    batch_no: str | None = Field(description="批号")
    production_date: date | None = Field(description="生产日期")
    enterprise_name: str = Field(description="标称生产企业")
    uscc: str
    district_code: str
    district_name_zh: str | None
    sampled_unit: str | None = Field(description="被抽样单位")
    sampling_date: date
    report_date: date
    reinspection: str | None = Field(description="'upheld' when a re-inspection (复检) confirmed the fail")
    nonconforming_items: list[PublicItem]
    notice_no: str | None = Field(description="The notice (公告) that published it; null: not yet in a notice")
    notice_date: date | None
    notice_id: str | None


class PublicFilter(BaseModel):
    category: str | None = Field(None, max_length=64, description="The product category, exactly")
    district: str | None = Field(None, pattern=r"^\d{6}$", description="A district's division code")
    from_: Day | None = Field(None, alias="from", description="Reported on or after")
    to: Day | None = Field(None, description="Reported on or before")
    enterprise: str | None = Field(None, min_length=1, max_length=100, description="A fragment of the producer's name")
    product: str | None = Field(None, min_length=1, max_length=100, description="A fragment of the product's name")
    notice: str | None = Field(None, min_length=1, max_length=64, description="A notice's number, exactly")


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
        "notice_no": q.notice,
    }


def _public(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row[k] for k in _COLUMNS if k != "result_id"}
    out["result_id"] = row["id"]
    out["district_name_zh"] = _NAMES.get(row["district_code"])
    out["nonconforming_items"] = orjson.loads(row["nonconforming_items"])
    return out


@_public_list.listing(
    "/public/nonconforming-products",
    PublicNonconforming,
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


# ---------------------------------------------------------------- notices (公告)


_CITED = ("agency_code", "report_no", "enterprise_name", "product_name", "state", "conclusion")


async def _notices_out(uow: UoW, found: list[dict[str, Any]], with_history: bool = False) -> list[dict[str, Any]]:
    """Notices as answered: each with its cited results as they stand now (two queries for a page)."""
    cited = await repository.notice_result_ids(uow.session, [n["id"] for n in found])
    rows = await repository.results_by_ids(uow.session, [r for ids in cited.values() for r in ids])
    out = []
    for notice in found:
        one = {k: notice[k] for k in NoticeOut.model_fields if k in notice}
        one["results"] = [{"result_id": rid, **{k: rows[rid][k] for k in _CITED}} for rid in cited[notice["id"]]]
        if with_history:
            history = await repository.notice_history(uow.session, notice["id"])
            one["history"] = [{**v, "notice": orjson.loads(v["snapshot"])} for v in history]
        out.append(one)
    return out


async def _notice(uow: UoW, notice_id: str) -> dict[str, Any]:
    row = await repository.get_notice(uow.session, notice_id)
    if row is None:
        raise NoticeNotFound(notice_id)
    return row


@_notices.create(
    "/notices",
    NoticeOut,
    responses=WRITE_ERRORS,
    summary="Publish a notice (公告) of final fails: the token's agency, or the bureau (a token without one)",
    description="Each cited result must be a final fail (never provisional, retracted or overturned), the "
    "publishing agency's own (the bureau may cite any agency's), reported by the notice's date and cited by no "
    "other notice; otherwise 422 `results-not-publishable` names each refused one, and nothing is stored. "
    "A notice number is unique (409 `notice-number-taken`). The public list of non-conforming products cites it.",
)
async def publish_notice(body: NoticeIn, principal: Publisher, creation: IdempotentCreation) -> Any:
    uow = creation.uow

    async def create() -> tuple[int, Any]:
        notice_id = await notices.publish(uow.session, creation.ctx, body)
        (out,) = await _notices_out(uow, [await _notice(uow, notice_id)])
        return 201, NoticeOut.model_validate(out).model_dump(mode="json")

    out = await creation.once(idempotency_keys, principal, "/v1/notices", body, create)
    creation.response.headers["Location"] = f"/v1/notices/{out['id']}"
    return out


@_notices.listing("/notices", NoticeOut, summary="Published notices, newest first")
async def list_notices(_: Reader, uow: UoW, cursor: Cursor = None, limit: Limit = 50) -> Any:
    rows = await repository.list_notices(uow.session, decode_cursor(cursor, str), limit + 1)
    return page(await _notices_out(uow, rows[:limit]) + rows[limit:], limit, lambda r: (r["id"],))


@_notices.get("/notices/{notice_id}", response_model=NoticeOut, summary="One notice with every version (its ETag)")
async def get_notice(notice_id: str, _: Reader, uow: UoW, response: Response) -> Any:
    row = await _notice(uow, notice_id)
    response.headers["ETag"] = etag(row["version"])
    return (await _notices_out(uow, [row], with_history=True))[0]


@_notices.patch(
    "/notices/{notice_id}",
    response_model=NoticeOut,
    responses=WRITE_ERRORS,
    summary="Correct a published notice (its publisher; If-Match; a reason): a new version, the old ones kept",
)
async def correct_notice(notice_id: str, body: NoticeCorrection, _: Publisher, change: VersionedChange) -> Any:
    row = await change.commit(notices.correct, change.ctx, notice_id, body)
    return (await _notices_out(change.uow, [row], with_history=True))[0]
