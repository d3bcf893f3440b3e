"""The open-data bundle, embedded and distributed: the public lists and the city's attainment as a zip
whose Frictionless `datapackage.json` describes every file, made at most once a minute; frictionless
validates the package against its own schemas, and every file holds exactly what the public routes
answer. No token; rate-limited per client."""

from __future__ import annotations

import csv
import io
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from frictionless import validate

from qcity.embedded import create_embedded_app
from shared.clock import FixedClock
from shared.settings import PlatformSettings
from tests.e2e.awards_helpers import grant_body, make_uscc, usccable_types
from tests.e2e.credit_helpers import proposal
from tests.e2e.test_disclosure import STARTED, _all, _load, generate
from tests.helpers import eventually, running

Auth = Callable[..., dict[str, str]]
BUNDLE = "/v1/open-data/datapackage.zip"


@pytest.fixture(autouse=True)
def roomy_service_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bundle reads every public list of the services, and so does the test after it, as the same
    client: two passes over some thirty honour lists outrun a service's per-client burst unless the
    bucket refills in between, which a fast machine does not wait for. The bundle's own limit (the
    gateway's) is what the rate-limit test checks, so only the services' budgets are widened."""
    for service in ("SAMPLING", "CREDIT", "AWARDS"):
        monkeypatch.setenv(f"QC_{service}_PUBLIC_BURST", "10000")


async def _pages(c: httpx.AsyncClient, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        r = await c.get(path, params={"limit": 500, "cursor": cursor})
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if not cursor:
            return items


def _csv(z: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(z.read(f"data/{name}.csv").decode("utf-8"))))


async def test_the_bundle_holds_the_public_lists_and_validates(
    suite_2016: httpx.AsyncClient, auth: Auth, tmp_path: Path
) -> None:
    c, g = suite_2016, generate()
    await _load(c, g, auth)
    # Two honours and one approved listing, so no file of the bundle is empty.
    for i, t in enumerate(usccable_types()[:2]):
        body = grant_body(t, make_uscc(9100 + i), granted_on="2015-06-01")
        r = await c.post("/v1/honours", json=body, headers=auth("awards:write"))
        assert r.status_code == 201, r.text
    proposed = await c.post("/v1/blacklist-entries", json=proposal(make_uscc(9200)), headers=auth("credit:write"))
    assert proposed.status_code == 201, proposed.text
    url = f"/v1/blacklist-entries/{proposed.json()['entry_id']}"
    review = auth("credit:review", subject="bob") | {"If-Match": proposed.headers["ETag"]}
    approved = await c.post(f"{url}:approve", json={}, headers=review)
    assert approved.status_code == 200, approved.text
    blacklist = await eventually(lambda: _pages(c, "/v1/blacklist"), lambda items: len(items) == 1, timeout=60)

    r = await c.get(BUNDLE)  # no token
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(r.content))
    package = orjson.loads(z.read("datapackage.json"))
    names = {res["name"]: res for res in package["resources"]}
    assert set(names) == {"blacklist", "honours", "nonconforming-products", "attainment"}
    assert set(z.namelist()) == {"datapackage.json", *(res["path"] for res in package["resources"])}
    for res in package["resources"]:
        header = next(csv.reader(io.StringIO(z.read(res["path"]).decode("utf-8"))))
        assert header == [f["name"] for f in res["schema"]["fields"]], res["name"]

    # frictionless reads the package back and checks every row against its schema.
    z.extractall(tmp_path / "bundle")
    report = validate(str(tmp_path / "bundle" / "datapackage.json"))
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])

    # Each file holds what the public routes answer, no more, no less.
    public = await _all(c, limit=50)
    rows = _csv(z, "nonconforming-products")
    assert sorted(r["report_no"] for r in rows) == sorted(i["report_no"] for i in public)
    assert len(rows) == sum(1 for f in g.fate.values() if f in ("final", "upheld", "corrected-final"))
    by_id = {i["result_id"]: i for i in public}
    for row in rows:
        assert orjson.loads(row["nonconforming_items"]) == by_id[row["result_id"]]["nonconforming_items"]
    assert [r["entry_id"] for r in _csv(z, "blacklist")] == [b["entry_id"] for b in blacklist]
    types = (await c.get("/v1/honour-types")).json()["types"]
    honours = [h for t in types for h in await _pages(c, f"/v1/public/honour-types/{t['code']}/honours")]
    assert len(honours) == 2
    assert sorted(r["honour_id"] for r in _csv(z, "honours")) == sorted(h["honour_id"] for h in honours)
    attainment = (await c.get("/v1/attainment", params={"plan": "qingdao-2012"})).json()
    figures = {r["code"]: r for r in _csv(z, "attainment")}
    assert list(figures) == [f["code"] for f in attainment["indicators"]]
    for f in attainment["indicators"]:
        got = figures[f["code"]]
        assert got["status"] == f["status"]
        assert (float(got["value"]) if got["value"] else None) == f["value"], f["code"]


async def test_the_bundle_is_rate_limited_per_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QC_GATEWAY_PUBLIC_BURST", "2")
    monkeypatch.setenv("QC_GATEWAY_PUBLIC_RATE_PER_S", "0.01")
    app = create_embedded_app(tmp_path / "data", PlatformSettings(log_json=False), clock=FixedClock(STARTED))
    async with running(app):
        now = time.time()
        app.state.public_limiter.clock = lambda: now  # no refill during the test, however slow the machine
        codes: dict[str, list[int]] = {}
        for address in ("203.0.113.7", "203.0.113.8"):
            transport = httpx.ASGITransport(app=app, client=(address, 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://suite") as c:
                codes[address] = [(await c.get(BUNDLE)).status_code for _ in range(3)]
        assert codes == {"203.0.113.7": [200, 200, 429], "203.0.113.8": [200, 200, 429]}
