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
import json
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import orjson
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from frictionless import Package, Resource

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
class Table:
    """One file of the bundle: its Data Package resource, with the Table Schema of its rows."""

    resource: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.resource["name"])

    @property
    def path(self) -> str:
        return str(self.resource["path"])

    @property
    def fields(self) -> list[tuple[str, str]]:
        """Each column's name and Table Schema type (string, integer, number, boolean, date, array, object)."""
        return [(f["name"], f["type"]) for f in self.resource["schema"]["fields"]]


def _tables() -> tuple[Table, ...]:
    raw = json.loads((Path(__file__).parent / "data" / "open_data.json").read_text(encoding="utf-8"))
    return tuple(Table(r) for r in raw["resources"])


#: The bundle's files (data/open_data.json): the blacklist, the honours, the non-conforming products, the attainment.
TABLES = _tables()


def descriptor(today: date, plan: str) -> dict[str, Any]:
    """The bundle's `datapackage.json`."""
    package = Package(
        name="qualitycity-open-data",
        title="QualityCity open data · 质量强市公开数据",
        description=f"The public lists and the attainment of plan {plan} on {today.isoformat()}; "
        "made anew on each download (docs/open-data.md).",
        created=f"{today.isoformat()}T00:00:00Z",
        licenses=[{"name": "CC-BY-4.0", "path": "https://creativecommons.org/licenses/by/4.0/", "title": "CC BY 4.0"}],
        # frictionless checks each resource and its Table Schema as it is built
        resources=[Resource.from_descriptor(t.resource) for t in TABLES],
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
    w.writerow([name for name, _ in table.fields])
    for row in rows:
        w.writerow([_cell(row.get(name), kind) for name, kind in table.fields])
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
    """Each file's rows, by its name in data/open_data.json."""
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
        "blacklist": await _all(upstreams.clients["credit"], "/v1/blacklist", "blacklist"),
        "honours": honours,
        "nonconforming-products": await _all(
            upstreams.clients["sampling"], "/v1/public/nonconforming-products", "non-conforming products"
        ),
        "attainment": figures,
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
