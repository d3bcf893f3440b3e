"""Open data (政府信息公开): the public lists and the city's attainment as one zip, described by a
Frictionless Data Package (`datapackage.json`: every file's field schema), made from the same public
routes a visitor would page through (docs/open-data.md).

The lists are read from the public routes of the services that own them, as the gateway (about thirty
pages: each honour type has its own list), and the attainment from the gateway's own route. A bundle
is made at most once a minute (`BUNDLE_TTL_S`) and served to every download in that minute: the
services' per-client limits then see one client building one bundle a minute, however many people
download it, and the bundle route has its own per-client limit here (shared/ratelimit.py).
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import orjson
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from frictionless import Package, Resource, Schema

from services.gateway.dashboard.router import Api
from services.gateway.router import DEFAULT_PLAN
from services.gateway.upstream import Upstreams
from shared.errors import ServiceUnavailable
from shared.problems import PROBLEM_SCHEMA
from shared.ratelimit import public_rate_limit
from shared.routing import Section

router = APIRouter(prefix="/v1")
_open_data = Section(router, "public", {429: PROBLEM_SCHEMA, 503: PROBLEM_SCHEMA})
ZIP = "application/zip"
#: The largest page of the public lists (shared/routing.py PublicLimit).
_PAGE = 500
#: How long a bundle is served before a download makes it anew.
BUNDLE_TTL_S = 60.0


class OpenDataSourceUnavailable(
    ServiceUnavailable, slug="open-data-source-unavailable", title="A list of the bundle could not be read"
): ...


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # a Table Schema type: string, integer, number, boolean, date, array, object
    description: str
    required: bool = False


@dataclass(frozen=True)
class Table:
    """One file of the bundle: where its rows come from, and its schema."""

    name: str
    title: str
    description: str
    fields: tuple[Field, ...]
    primary_key: tuple[str, ...]

    @property
    def path(self) -> str:
        return f"data/{self.name}.csv"


def _s(name: str, description: str, required: bool = False) -> Field:
    return Field(name, "string", description, required)


BLACKLIST = Table(
    "blacklist",
    "质量失信黑名单 · Quality blacklist",
    "The published blacklist (公示) on the bundle's day: current entries, publishable fields only.",
    (
        _s("entry_id", "The listing's id", True),
        _s("uscc", "统一社会信用代码 of the enterprise", True),
        _s("enterprise_name", "The enterprise's name", True),
        _s("reason_category", "Why it is listed (code)", True),
        _s("reason_category_zh", "Why it is listed (Chinese)"),
        _s("legal_basis", "The rule it was listed under", True),
        _s("deciding_authority", "The authority that decided", True),
        _s("decision_no", "The decision's number"),
        Field("listed_on", "date", "Listed on", True),
        Field("publish_until", "date", "Published until", True),
    ),
    ("entry_id",),
)
HONOURS = Table(
    "honours",
    "质量荣誉 · Quality honours",
    "Every honour type's public list (公示): the active honours on the bundle's day.",
    (
        _s("honour_id", "The honour's id", True),
        _s("type_code", "The honour type (GET /v1/honour-types)", True),
        _s("type_name_zh", "The honour type's name", True),
        _s("holder_kind", "enterprise or person", True),
        _s("holder_id", "The holder's id (an enterprise's USCC)", True),
        _s("holder_name", "The holder's name", True),
        _s("district_code", "The holder's district (GB/T 2260)"),
        Field("subject", "object", "What the honour is for (a product or brand), when the type names one"),
        Field("granted_on", "date", "Granted on", True),
        Field("valid_until", "date", "Valid until (none: no expiry)"),
        _s("state", "active", True),
        _s("certificate_no", "The certificate's number", True),
        _s("granting_authority", "Who granted it", True),
    ),
    ("honour_id",),
)
NONCONFORMING = Table(
    "nonconforming-products",
    "抽检不合格产品 · Non-conforming products",
    "Every final fail of sampling inspection (抽检不合格公示), as GET /v1/public/nonconforming-products lists it.",
    (
        _s("result_id", "The result's id", True),
        _s("agency_code", "The inspection agency (承检机构)", True),
        _s("report_no", "The agency's report number", True),
        _s("level", "national, provincial, municipal or district sampling", True),
        _s("sector", "manufacturing, agricultural, food or engineering", True),
        _s("product_category", "The product category", True),
        _s("product_name", "The product", True),
        _s("brand", "The brand"),
        _s("model_spec", "The specification (规格型号)"),
        _s("batch_no", "The batch (生产日期/批号)"),
        Field("production_date", "date", "Production date"),
        _s("enterprise_name", "标称生产企业", True),
        _s("uscc", "The producer's USCC", True),
        _s("district_code", "The producer's district", True),
        _s("district_name_zh", "The district's name"),
        _s("sampled_unit", "被抽样单位"),
        Field("sampling_date", "date", "Sampled on", True),
        Field("report_date", "date", "Reported on", True),
        _s("reinspection", "upheld: a re-inspection (复检) confirmed the fail"),
        Field("nonconforming_items", "array", "Each item: item, requirement, measured, unit, standard", True),
        _s("notice_no", "The notice (公告) that published it"),
        Field("notice_date", "date", "The notice's date"),
    ),
    ("result_id",),
)
ATTAINMENT = Table(
    "attainment",
    "质量强市指标完成情况 · The city's attainment",
    "Every indicator of the plan, city-wide, as GET /v1/attainment answers on the bundle's day.",
    (
        _s("plan", "The plan (GET /v1/plans)", True),
        Field("as_of", "date", "The figures' date", True),
        _s("code", "The indicator", True),
        _s("name_zh", "Its name", True),
        _s("name_en", "Its name in English", True),
        _s("kind", "min_rate, exact_rate, min_score, cumulative_count or qualitative", True),
        _s("unit", "The unit (rates as ratios 0..1)", True),
        Field("target", "number", "The plan's target"),
        _s("target_text", "A qualitative target"),
        Field("due", "date", "When the target is due", True),
        _s("source", "computed or reported", True),
        Field("value", "number", "The value"),
        Field("value_year", "integer", "The year the value describes"),
        Field("gap", "number", "target − value"),
        Field("n", "integer", "Results behind a rate"),
        Field("passed", "integer", "Passed results behind a rate"),
        Field("wilson_low", "number", "95 % Wilson interval, low"),
        Field("wilson_high", "number", "95 % Wilson interval, high"),
        _s("status", "The Open SDG status (docs/attainment-method.md)", True),
    ),
    ("plan", "code"),
)
TABLES = (BLACKLIST, HONOURS, NONCONFORMING, ATTAINMENT)


def _schema(table: Table) -> Schema:
    """The file's Table Schema (frictionless checks the descriptor as it is built)."""
    return Schema.from_descriptor(
        {
            "fields": [
                {
                    "name": f.name,
                    "type": f.type,
                    "description": f.description,
                    **({"constraints": {"required": True}} if f.required else {}),
                }
                for f in table.fields
            ],
            "primaryKey": list(table.primary_key),
            "missingValues": [""],
        }
    )


def descriptor(today: date, plan: str) -> dict[str, Any]:
    """The bundle's `datapackage.json`."""
    package = Package(
        name="qualitycity-open-data",
        title="QualityCity open data · 质量强市公开数据",
        description=f"The public lists and the attainment of plan {plan} on {today.isoformat()}; "
        "made anew on each download (docs/open-data.md).",
        created=f"{today.isoformat()}T00:00:00Z",
        licenses=[{"name": "CC-BY-4.0", "path": "https://creativecommons.org/licenses/by/4.0/", "title": "CC BY 4.0"}],
        resources=[
            Resource(
                name=t.name,
                path=t.path,
                title=t.title,
                description=t.description,
                format="csv",
                mediatype="text/csv",
                encoding="utf-8",
                schema=_schema(t),
            )
            for t in TABLES
        ],
    )
    out: dict[str, Any] = package.to_descriptor()
    return out


def _cell(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if kind in ("array", "object"):
        return orjson.dumps(value).decode()
    if kind == "boolean":
        return "true" if value else "false"
    return str(value)


def _csv(table: Table, rows: Sequence[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([f.name for f in table.fields])
    for row in rows:
        w.writerow([_cell(row.get(f.name), f.type) for f in table.fields])
    return buf.getvalue().encode("utf-8")


async def _get(client: httpx.AsyncClient, path: str, params: dict[str, Any], what: str) -> Any:
    try:
        r = await client.get(path, params={k: v for k, v in params.items() if v is not None})
    except httpx.HTTPError as exc:
        raise OpenDataSourceUnavailable(f"The {what} could not be read: {type(exc).__name__}; retry later") from None
    body = r.json() if r.headers.get("content-type", "").split(";")[0].endswith("json") else None
    if r.status_code != 200:
        why = (body.get("detail") or body.get("title")) if isinstance(body, dict) else r.reason_phrase
        raise OpenDataSourceUnavailable(f"The {what} answered {r.status_code}: {why}; retry later", source=what)
    return body


async def _all(client: httpx.AsyncClient, path: str, what: str) -> list[dict[str, Any]]:
    """Every page of a public list."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        body = await _get(client, path, {"limit": _PAGE, "cursor": cursor}, what)
        items += body["items"]
        cursor = body.get("next_cursor")
        if not cursor:
            return items


async def _rows(request: Request, plan: str) -> dict[str, list[dict[str, Any]]]:
    upstreams: Upstreams = request.app.state.upstreams
    awards = upstreams.clients["awards"]
    catalog = await _get(awards, "/v1/honour-types", {}, "honour catalogue")
    honours: list[dict[str, Any]] = []
    for t in catalog["types"]:
        honours += await _all(awards, f"/v1/public/honour-types/{t['code']}/honours", f"public list of {t['code']}")
    async with Api(request) as api:  # the gateway's own attainment, in-process
        status, attainment = await api.get("/v1/attainment", {"plan": plan})
    if status != 200:
        raise OpenDataSourceUnavailable(f"The attainment answered {status}; retry later", source="attainment")
    figures = [
        {
            **f,
            "plan": attainment["plan"],
            "as_of": attainment["as_of"],
            "wilson_low": f["wilson_95"][0] if f.get("wilson_95") else None,
            "wilson_high": f["wilson_95"][1] if f.get("wilson_95") else None,
        }
        for f in attainment["indicators"]
    ]
    return {
        BLACKLIST.name: await _all(upstreams.clients["credit"], "/v1/blacklist", "blacklist"),
        HONOURS.name: honours,
        NONCONFORMING.name: await _all(
            upstreams.clients["sampling"], "/v1/public/nonconforming-products", "non-conforming products"
        ),
        ATTAINMENT.name: figures,
    }


async def _build(request: Request) -> bytes:
    today = request.app.state.runtime.clock.today()
    rows = await _rows(request, DEFAULT_PLAN)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("datapackage.json", orjson.dumps(descriptor(today, DEFAULT_PLAN), option=orjson.OPT_INDENT_2))
        for t in TABLES:
            z.writestr(t.path, _csv(t, rows[t.name]))
    return buf.getvalue()


@dataclass
class _Cached:
    lock: asyncio.Lock
    made_at: float = 0.0
    zip: bytes = b""


def _cache(app: FastAPI) -> _Cached:
    cached: _Cached | None = getattr(app.state, "open_data", None)
    if cached is None:
        cached = app.state.open_data = _Cached(asyncio.Lock())
    return cached


@_open_data.get(
    "/open-data/datapackage.zip",
    response_class=Response,
    responses={
        429: PROBLEM_SCHEMA,
        503: PROBLEM_SCHEMA,
        200: {"description": "A zip: datapackage.json and one CSV per list", "content": {ZIP: {}}},
    },
    dependencies=[Depends(public_rate_limit)],
    summary="The public lists and the city's attainment as a Frictionless Data Package (zip; no token, rate-limited)",
)
async def open_data_bundle(request: Request) -> Response:
    cached = _cache(request.app)
    async with cached.lock:  # one build at a time; the downloads waiting for it then share it
        if not cached.zip or time.monotonic() - cached.made_at > BUNDLE_TTL_S:
            cached.zip, cached.made_at = await _build(request), time.monotonic()
    name = f"qualitycity-open-data-{request.app.state.runtime.clock.today().isoformat()}.zip"
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": f"max-age={int(BUNDLE_TTL_S)}"}
    return Response(cached.zip, media_type=ZIP, headers=headers)
