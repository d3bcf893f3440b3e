"""The public list of non-conforming products (抽检不合格公示), embedded and distributed: a generated
set of results in every state goes in through the gateway, and the list shows exactly the final
fails — never a pass, a provisional fail, a retracted result or a fail overturned on re-inspection —
without a token, page by page, with the fields regulators publish; filters and the CSV agree."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from qcity.embedded import create_embedded_app
from shared.clock import FixedClock
from shared.settings import PlatformSettings
from tests.e2e.awards_helpers import make_uscc
from tests.helpers import running

Auth = Callable[..., dict[str, str]]
STARTED = datetime(2016, 3, 1, 4, tzinfo=UTC)
PATH = "/v1/public/nonconforming-products"
AGENCY = "QD-AGENCY-1"
DISTRICTS = ("370202", "370211", "370283")
CATEGORIES = ("电器", "饮料", "蔬菜")


@dataclass
class Generated:
    rows: list[dict[str, Any]] = field(default_factory=list)
    fate: dict[str, str] = field(default_factory=dict)  # report_no -> what happens to it


def generate() -> Generated:
    """Results of every fate, spread over districts and categories; reported in 2015 (their objection
    windows closed by the suite's date) or late February 2016 (still open)."""
    g = Generated()
    fates = (
        ["pass"] * 8
        + ["final"] * 12
        + ["provisional"] * 4
        + ["retracted-provisional"] * 2
        + ["retracted-final"] * 2
        + ["overturned"] * 3
        + ["upheld"] * 2
        + ["corrected-final"] * 1
    )
    for i, fate in enumerate(fates):
        recent = fate in ("provisional", "overturned", "upheld", "retracted-provisional")
        day = f"2016-02-{15 + i % 10:02d}" if recent else f"2015-{1 + i % 11:02d}-{10 + i % 15:02d}"
        sampled = day[:8] + "05" if recent else day[:8] + "03"
        district = DISTRICTS[i % 3]
        report_no = f"GS-{i:04d}"
        row: dict[str, Any] = {
            "report_no": report_no,
            "level": "municipal",
            "sector": "manufacturing",
            "key_product": True,
            "product_category": CATEGORIES[i % 3],
            "product_name": f"产品{i}",
            "brand": f"品牌{i}",
            "model_spec": f"型号-{i}",
            "batch_no": f"批次{i}",
            "production_date": sampled[:8] + "01",
            "uscc": make_uscc(7000 + i, region=district),
            "enterprise_name": f"青岛{['海', '山', '河'][i % 3]}源{i}号制造有限公司",
            "district_code": district,
            "sampled_unit": f"某商场{i}",
            "sampling_date": sampled,
            "report_date": day,
            "conclusion": "pass" if fate == "pass" else "fail",
            "nonconforming_items": []
            if fate == "pass"
            else [
                {"item": "铅", "requirement": "≤0.2", "measured": f"0.{i + 3}", "unit": "mg/kg", "standard": "GB 2762"},
                {
                    "item": "标签",
                    "requirement": "符合GB 7718",
                    "measured": "不符合",
                    "unit": None,
                    "standard": "GB 7718",
                },
            ],
        }
        g.rows.append(row)
        g.fate[report_no] = fate
    return g


async def _ok(resp: Any, status: int = 200) -> Any:
    r = await resp
    assert r.status_code == status, r.text
    return r.json()


async def _load(c: httpx.AsyncClient, g: Generated, auth: Auth) -> dict[str, dict[str, Any]]:
    """Record, then retract, re-inspect, correct and finalise as each row's fate says; the stored
    results (by report number) after all that."""
    w = auth("sampling:write", "read", agency=AGENCY)
    out = await _ok(c.post("/v1/results:batch", json=g.rows, headers=w))
    ids = {g.rows[o["row"] - 1]["report_no"]: o["id"] for o in out["rows"]}
    assert len(ids) == len(g.rows), out

    async def change(no: str, path: str, body: dict[str, Any], method: str = "POST") -> None:
        rid = ids[no]
        current = await _ok(c.get(f"/v1/results/{rid}", headers=w))
        headers = w | {"If-Match": f'"{current["version"]}"'}
        await _ok(c.request(method, f"/v1/results/{rid}{path}", json=body, headers=headers))

    for no, fate in g.fate.items():
        if fate == "retracted-provisional":
            await change(no, ":retract", {"reason": "样品信息录入错误"})
        elif fate in ("overturned", "upheld"):
            body = {
                "outcome": fate,
                "requested_on": "2016-02-26",
                "decided_on": "2016-02-28",
                "reinspection_report_no": "FJ-" + no,
            }
            await change(no, "/reinspection", body)
    admin = auth("admin")
    await _ok(c.post("/v1/sampling/jobs/finalise-results:run", headers=admin))
    for no, fate in g.fate.items():
        if fate == "retracted-final":
            await change(no, ":retract", {"reason": "报告编号重复，撤回"})
        elif fate == "corrected-final":
            await change(
                no, "", {"reason": "产品名称更正", "changes": {"product_name": "更正后的产品"}}, method="PATCH"
            )
    return {no: await _ok(c.get(f"/v1/results/{rid}", headers=w)) for no, rid in ids.items()}


async def _all(c: httpx.AsyncClient, params: dict[str, Any] | None = None, limit: int = 5) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        body = await _ok(c.get(PATH, params={**(params or {}), "limit": limit, "cursor": cursor}))
        items += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            return items


async def test_the_public_list_shows_exactly_the_final_fails(suite_2016: httpx.AsyncClient, auth: Auth) -> None:
    c, g = suite_2016, generate()
    stored = await _load(c, g, auth)
    expected = {no for no, fate in g.fate.items() if fate in ("final", "upheld", "corrected-final")}
    # What the sampling service holds, as a regulator would select it: final, standing fail, not retracted.
    held = {no for no, r in stored.items() if r["state"] == "final" and r["conclusion"] == "fail"}
    assert held == expected

    items = await _all(c)  # no token, five per page
    assert [i["report_no"] for i in items] == sorted(
        expected, key=lambda no: (stored[no]["report_date"], stored[no]["id"]), reverse=True
    ), "exactly the final fails, newest report first"
    for item in items:
        r = stored[item["report_no"]]
        for k in (
            "enterprise_name",
            "uscc",
            "district_code",
            "sampled_unit",
            "product_category",
            "product_name",
            "brand",
            "model_spec",
            "batch_no",
            "production_date",
            "sampling_date",
            "report_date",
            "level",
            "agency_code",
        ):
            assert item[k] == r[k], (item["report_no"], k)
        assert item["nonconforming_items"] == r["nonconforming_items"]
        assert item["nonconforming_items"][0]["measured"] and item["nonconforming_items"][0]["standard"]
        assert item["district_name_zh"], "the district by name, as notices print it"
        assert item["reinspection"] == ("upheld" if g.fate[item["report_no"]] == "upheld" else None)
        assert "recorded_by" not in item and "version" not in item, "publishable fields only"
    corrected = next(i for i in items if g.fate[i["report_no"]] == "corrected-final")
    assert corrected["product_name"] == "更正后的产品", "the list shows the corrected record"

    # Filters: each narrows to the same subset computed from the stored results.
    for params, keep in (
        ({"district": "370211"}, lambda r: r["district_code"] == "370211"),
        ({"category": "饮料"}, lambda r: r["product_category"] == "饮料"),
        ({"from": "2015-06-01", "to": "2015-12-31"}, lambda r: "2015-06-01" <= r["report_date"] <= "2015-12-31"),
        ({"enterprise": "山源"}, lambda r: "山源" in r["enterprise_name"]),
        ({"product": "产品1"}, lambda r: "产品1" in r["product_name"]),
    ):
        got = {i["report_no"] for i in await _all(c, params, limit=50)}
        assert got == {no for no in expected if keep(stored[no])}, params
        assert got, f"{params} selects something"

    # The CSV of a filter: the same rows, with the items flattened.
    resp = await c.get(PATH + ":export", params={"district": "370202"})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv"), resp.text
    rows = list(csv.DictReader(io.StringIO(resp.content.decode("utf-8-sig"))))
    want = {no for no in expected if stored[no]["district_code"] == "370202"}
    assert {r["report_no"] for r in rows} == want
    assert all("铅" in r["nonconforming_items"] for r in rows)

    # Bad input: a precise problem, never a 500.
    bad = await c.get(PATH, params={"from": "2015-13-01"})
    assert bad.status_code == 422
    assert (await c.get(PATH, params={"district": "12"})).status_code == 422


async def test_the_public_list_is_rate_limited_per_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QC_SAMPLING_PUBLIC_BURST", "3")
    monkeypatch.setenv("QC_SAMPLING_PUBLIC_RATE_PER_S", "0.01")
    app = create_embedded_app(tmp_path / "data", PlatformSettings(log_json=False), clock=FixedClock(STARTED))
    async with running(app):
        # Time stands still for the limiter: no refill during the burst, however loaded the machine.
        limiter = app.state.embedded_services["sampling"].state.public_limiter
        now = time.time()
        limiter.clock = lambda: now
        codes: dict[str, list[int]] = {}
        for address in ("203.0.113.7", "203.0.113.8"):
            transport = httpx.ASGITransport(app=app, client=(address, 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://suite") as c:
                codes[address] = [(await c.get(PATH)).status_code for _ in range(4)]
        assert codes == {"203.0.113.7": [200, 200, 200, 429], "203.0.113.8": [200, 200, 200, 429]}
