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


NOTICES = "/v1/notices"


async def test_notices_publish_final_fails_and_keep_their_history(suite_2016: httpx.AsyncClient, auth: Auth) -> None:
    """A notice (公告) groups final fails under a number and date; the public list cites it; bad input is
    refused precisely and changes nothing; a correction makes a new version and keeps the old one."""
    c, g = suite_2016, generate()
    stored = await _load(c, g, auth)
    ids = {no: r["id"] for no, r in stored.items()}
    finals = sorted(no for no, fate in g.fate.items() if fate in ("final", "upheld", "corrected-final"))
    first, rest = finals[:5], finals[5:]
    agency = auth("sampling:publish", "read", agency=AGENCY)
    body = {
        "notice_no": "青质监公告〔2015〕12号",
        "notice_date": "2015-12-31",
        "title": "2015年产品质量监督抽查不合格产品公告",
        "result_ids": [ids[no] for no in first],
    }

    # Bad input: each refused result named by its index and why; nothing stored.
    pick = {fate: next(no for no, f in g.fate.items() if f == fate) for fate in ("provisional", "retracted-final")}
    pick |= {fate: next(no for no, f in g.fate.items() if f == fate) for fate in ("overturned", "pass")}
    bad_ids = [ids[first[0]], "0190b1c2-0000-7000-8000-000000000000", *(ids[no] for no in pick.values())]
    bad = await c.post(NOTICES, json=body | {"result_ids": bad_ids}, headers=agency)
    assert bad.status_code == 422, bad.text
    problem = bad.json()
    assert problem["type"].endswith(":results-not-publishable"), problem
    reasons = {e["field"]: e["reason"] for e in problem["errors"]}
    assert set(reasons) == {f"result_ids[{i}]" for i in range(1, 6)}, reasons
    assert reasons["result_ids[1]"] == "no result has this id"
    assert reasons["result_ids[2]"].startswith("provisional")
    assert reasons["result_ids[3]"].startswith("retracted")
    assert reasons["result_ids[4]"].startswith("overturned")
    assert reasons["result_ids[5]"].startswith("a pass")
    late = await c.post(NOTICES, json=body | {"notice_date": "2015-01-01"}, headers=agency)
    assert late.status_code == 422 and "after the notice's date" in late.text, late.text
    other = await c.post(NOTICES, json=body, headers=auth("sampling:publish", agency="QD-AGENCY-2"))
    assert other.status_code == 422 and "publishes its own results" in other.text, other.text
    assert (await _ok(c.get(NOTICES, headers=agency)))["items"] == [], "nothing was stored"

    created = await c.post(NOTICES, json=body, headers=agency | {"Idempotency-Key": "n-1"})
    assert created.status_code == 201, created.text
    notice = created.json()
    assert created.headers["Location"] == f"{NOTICES}/{notice['id']}" and created.headers["ETag"] == '"1"'
    assert notice["publisher"] == AGENCY and notice["version"] == 1
    assert sorted(r["report_no"] for r in notice["results"]) == first
    again = await c.post(NOTICES, json=body, headers=agency | {"Idempotency-Key": "n-1"})
    assert again.status_code == 201 and again.json()["id"] == notice["id"], "a retry answers the first notice"

    taken = await c.post(NOTICES, json=body | {"result_ids": [ids[rest[0]]]}, headers=agency)
    assert taken.status_code == 409 and taken.json()["type"].endswith(":notice-number-taken"), taken.text
    twice = await c.post(NOTICES, json=body | {"notice_no": "青质监公告〔2015〕13号"}, headers=agency)
    assert twice.status_code == 422 and "already published in notice 青质监公告〔2015〕12号" in twice.text

    # The public list cites the notice for exactly its results.
    items = {i["report_no"]: i for i in await _all(c, limit=50)}
    for no, item in items.items():
        cited = (item["notice_no"], item["notice_date"], item["notice_id"])
        want = (body["notice_no"], body["notice_date"], notice["id"]) if no in first else (None, None, None)
        assert cited == want, no
    assert {i["report_no"] for i in await _all(c, {"notice": body["notice_no"]})} == set(first)

    # A correction: the publisher only, If-Match, a reason; a result moves out, another in.
    url = f"{NOTICES}/{notice['id']}"
    fix = {
        "reason": "漏列一批次",
        "title": "更正：2015年不合格产品公告",
        "result_ids": [ids[no] for no in first[1:] + rest[:1]],
    }
    assert (await c.patch(url, json=fix, headers=agency)).status_code == 428
    stranger = await c.patch(
        url, json=fix, headers=auth("sampling:publish", agency="QD-AGENCY-2") | {"If-Match": '"1"'}
    )
    assert stranger.status_code == 403 and stranger.json()["type"].endswith(":not-notice-publisher")
    same = await c.patch(url, json={"reason": "无变化", "title": body["title"]}, headers=agency | {"If-Match": '"1"'})
    assert same.status_code == 422 and same.json()["type"].endswith(":nothing-to-correct")
    fixed = await c.patch(url, json=fix, headers=agency | {"If-Match": '"1"'})
    assert fixed.status_code == 200 and fixed.headers["ETag"] == '"2"', fixed.text
    assert sorted(r["report_no"] for r in fixed.json()["results"]) == sorted(first[1:] + rest[:1])
    stale = await c.patch(url, json=fix | {"title": "再更正"}, headers=agency | {"If-Match": '"1"'})
    assert stale.status_code == 412

    one = await _ok(c.get(url, headers=agency))
    assert one["version"] == 2 and one["title"] == fix["title"]
    history = one["history"]
    assert [(v["version"], v["change"], v["reason"]) for v in history] == [
        (1, "published", None),
        (2, "corrected", "漏列一批次"),
    ]
    assert history[0]["notice"]["result_ids"] == sorted(ids[no] for no in first)
    assert history[0]["notice"]["title"] == body["title"] and history[1]["notice"]["title"] == fix["title"]
    assert all(v["actor"] == "tester" and v["agency"] == AGENCY for v in history)
    cited_now = {i["report_no"] for i in await _all(c, {"notice": body["notice_no"]})}
    assert cited_now == set(first[1:] + rest[:1]), "the list cites the notice as corrected"

    # The bureau (a token without an agency) publishes any agency's final fails.
    bureau = auth("sampling:publish", "read", agency=None, subject="bureau-officer")
    b = await c.post(
        NOTICES,
        json={
            "notice_no": "青质监公告〔2016〕1号",
            "notice_date": "2016-02-29",
            "title": "公告",
            "result_ids": [ids[first[0]]],
        },
        headers=bureau,
    )
    assert b.status_code == 201 and b.json()["publisher"] is None, b.text
    listed = await _ok(c.get(NOTICES, headers=agency, params={"limit": 1}))
    assert [n["notice_no"] for n in listed["items"]] == ["青质监公告〔2016〕1号"] and listed["next_cursor"]
    rest_page = await _ok(c.get(NOTICES, headers=agency, params={"limit": 1, "cursor": listed["next_cursor"]}))
    assert [n["notice_no"] for n in rest_page["items"]] == [body["notice_no"]]
    assert (await c.get(f"{NOTICES}/nope", headers=agency)).status_code == 404
