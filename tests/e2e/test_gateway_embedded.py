"""The gateway in embedded mode: forwarding of every route with scopes, the suite's OpenAPI, plans,
indicator reports, the credit profile and procurement priority from real service writes, the feed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.gateway.forwarding import FORWARDS
from services.gateway.main import create_app as create_gateway
from services.gateway.plans import PLANS_DIR, PlanFileError
from services.gateway.settings import GatewaySettings
from tests.e2e.awards_helpers import grant_body
from tests.e2e.credit_helpers import proposal
from tests.factories import result_body
from tests.helpers import eventually

Suite = tuple[FastAPI, httpx.AsyncClient]
ENTERPRISE = "91370200163562681G"


async def test_credit_and_awards_routes_are_forwarded_with_scopes_checked_at_the_gateway(
    embedded: Suite, auth: Callable[..., dict[str, str]]
) -> None:
    app, client = embedded
    # Public routes stay public.
    for path in ("/v1/honour-types", "/v1/honour-types/B5", "/v1/rating-rules", "/v1/blacklist", "/v1/awards/regions"):
        r = await client.get(path)
        assert r.status_code == 200, (path, r.text)
    direct = await client.get("/services/awards/v1/regions")
    assert (await client.get("/v1/awards/regions")).json() == direct.json()  # mapped to the awards service's path
    # The gateway refuses before forwarding: a route needing awards:write, and the officers-only list.
    body = grant_body("B5", ENTERPRISE)
    assert (await client.post("/v1/honours", json=body)).status_code == 401
    weak = await client.post("/v1/honours", json=body, headers=auth("read"))
    assert weak.status_code == 403 and weak.json()["required_scope"] == "awards:write"
    listing = await client.get("/v1/blacklist-entries", headers=auth("read"))
    assert listing.status_code == 403 and "credit:write" in listing.json()["detail"]
    assert (await client.get("/v1/blacklist-entries", headers=auth("credit:review"))).status_code == 200
    ok = await client.post("/v1/honours", json=body, headers=auth("awards:write", "read") | {"x-request-id": "rq-7"})
    assert ok.status_code == 201, ok.text
    assert ok.headers["x-request-id"] == "rq-7" and ok.headers["etag"]
    got = await client.get(f"/v1/honours/{ok.json()['honour_id']}", headers=auth("read"))
    assert got.status_code == 200 and got.json()["type_code"] == "B5"
    admin = await client.post("/v1/awards/jobs/expire-honours:run", headers=auth("admin"))
    assert admin.status_code == 200 and admin.json()["job"] == "expire-honours"


async def test_openapi_at_the_gateway_covers_every_route_of_the_suite(embedded: Suite) -> None:
    app, client = embedded
    doc = (await client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    mapped = {(f.service, f.method.lower(), f.target): f.path for f in FORWARDS}
    for service in ("sampling", "credit", "awards"):
        own = (await client.get(f"/services/{service}/openapi.json")).json()
        for path, ops in own["paths"].items():
            if path in ("/healthz", "/readyz"):
                continue
            for method, op in ops.items():
                gateway_path = mapped.get((service, method, path))
                assert gateway_path is not None, f"{service} {method} {path} is not forwarded"
                merged = doc["paths"][gateway_path][method]
                assert merged.get("requestBody", {}).keys() == op.get("requestBody", {}).keys()
                names = [p["name"] for p in op.get("parameters", [])]
                assert [p["name"] for p in merged.get("parameters", [])] == names
    grant = doc["paths"]["/v1/honours"]["post"]
    ref = grant["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/GrantIn" and doc["components"]["schemas"]["GrantIn"]["title"] == "GrantIn"
    for own_path in (
        "/v1/attainment",
        "/v1/attainment/{code}",
        "/v1/credit/{uscc}",
        "/v1/changes",
        "/v1/plans",
        "/v1/indicator-reports",
        "/v1/procurement/priority-list",
        "/v1/enterprises",
    ):
        assert own_path in doc["paths"]
    assert (await client.get("/docs")).status_code == 200


async def test_plans_listed_and_one_plan_with_every_indicator(embedded: Suite) -> None:
    _, client = embedded
    plans = (await client.get("/v1/plans")).json()["items"]
    assert [p["id"] for p in plans] == ["qingdao-2012"] and plans[0]["period_end"] == "2015-12-31"
    plan = (await client.get("/v1/plans/qingdao-2012")).json()
    codes = {i["code"]: i for i in plan["indicators"]}
    assert len(codes) == 32
    assert codes["agri_pass_rate"]["target"] == 0.96 and codes["agri_pass_rate"]["source"]["filter"] == {
        "sector": "agricultural",
        "level": None,
        "key_product": None,
    }
    assert codes["shandong_famous_brands"]["counting"] == "active_at_end"
    assert codes["expressway_good_road_rate"]["source"] == {"kind": "reported"}
    missing = await client.get("/v1/plans/nope")
    assert missing.status_code == 404 and missing.json()["type"].endswith(":plan-not-found")


def test_a_second_plan_file_loads_and_a_malformed_one_is_refused_naming_the_line(tmp_path: Path) -> None:
    (tmp_path / "qingdao-2012.json").write_text((PLANS_DIR / "qingdao-2012.json").read_text("utf-8"), "utf-8")
    (tmp_path / "tiny-2020.json").write_text(
        '{"id": "tiny-2020", "name_zh": "小", "name_en": "tiny", "period_start": "2016-01-01",\n'
        ' "period_end": "2020-12-31", "base_year": 2016, "indicators": [\n'
        '  {"code": "food_rate", "name_zh": "食品", "name_en": "food", "section": "一", "kind": "min_rate",'
        ' "target": 0.97, "unit": "ratio", "source": {"kind": "computed", "metric": "pass_rate",'
        ' "filter": {"sector": "food"}}}\n]}\n',
        "utf-8",
    )
    app = create_gateway(GatewaySettings(plans_dir=str(tmp_path)))
    assert sorted(app.state.plans) == ["qingdao-2012", "tiny-2020"]
    bad = (tmp_path / "tiny-2020.json").read_text("utf-8").replace('"target": 0.97', '"target": 97')
    (tmp_path / "tiny-2020.json").write_text(bad, "utf-8")
    with pytest.raises(PlanFileError) as err:
        create_gateway(GatewaySettings(plans_dir=str(tmp_path)))
    assert err.value.path.name == "tiny-2020.json" and err.value.line == 3
    assert "tiny-2020.json:3:" in str(err.value) and "ratio between 0 and 1" in str(err.value)


async def test_indicator_reports_refused_for_unknown_and_computed_and_the_latest_counts(
    embedded: Suite, auth: Callable[..., dict[str, str]]
) -> None:
    _, client = embedded
    h = auth("indicators:write", subject="road-system")
    body: dict[str, Any] = {
        "indicator": "expressway_good_road_rate",
        "period_start": "2014-01-01",
        "period_end": "2014-12-31",
        "value": 0.97,
        "reporting_system": "公路养护管理系统",
        "evidence_ref": "鲁交公路〔2015〕3号",
    }
    assert (await client.post("/v1/indicator-reports", json=body, headers=auth("read"))).status_code == 403
    unknown = await client.post("/v1/indicator-reports", json=body | {"indicator": "nope"}, headers=h)
    assert unknown.status_code == 422 and unknown.json()["type"].endswith(":unknown-indicator")
    computed = await client.post("/v1/indicator-reports", json=body | {"indicator": "agri_pass_rate"}, headers=h)
    assert computed.status_code == 422 and computed.json()["type"].endswith(":indicator-not-reported")
    extra = await client.post("/v1/indicator-reports", json=body | {"colour": 1}, headers=h)
    assert extra.status_code == 422 and extra.json()["errors"][0]["field"] == "colour"
    first = await client.post("/v1/indicator-reports", json=body, headers=h)
    assert first.status_code == 201, first.text
    assert first.json()["reported_by"] == "road-system"
    second = await client.post("/v1/indicator-reports", json=body | {"value": 0.975}, headers=h)
    assert second.status_code == 201
    earlier = await client.post(
        "/v1/indicator-reports",
        json=body | {"period_start": "2012-01-01", "period_end": "2012-12-31", "value": 0.95},
        headers=h,
    )
    assert earlier.status_code == 201
    fig = (await client.get("/v1/attainment/expressway_good_road_rate")).json()["indicator"]
    assert fig["value"] == 0.975 and fig["value_year"] == 2014  # the latest report of the latest period
    assert fig["report"]["report_id"] == second.json()["report_id"]
    assert [(p["year"], p["value"]) for p in fig["series"]] == [(2012, 0.95), (2014, 0.975)]
    # 0.95 -> 0.975 is 1.31 % a year; reaching 0.98 by 2015 needs 1.04 % a year: ratio 1.26 >= 0.95
    assert fig["status"] == "on_track" and fig["progress"]["progress_value"] == pytest.approx(1.26, abs=0.01)
    assert fig["gap"] == pytest.approx(0.98 - 0.975)
    history = (await client.get(fig["links"]["rows"])).json()["items"]
    assert [r["value"] for r in history] == [0.97, 0.975, 0.95]  # every report kept


async def test_credit_profile_and_procurement_priority_from_the_services_writes(
    embedded: Suite, auth: Callable[..., dict[str, str]]
) -> None:
    app, client = embedded
    clock = app.state.runtime.clock
    writer = auth("sampling:write", "awards:write", "read")
    alice = auth("credit:write", "read", subject="alice")
    bob = auth("credit:review", "read", subject="bob")
    for i, conclusion in enumerate(("pass", "pass", "fail")):
        r = await client.post(
            "/v1/results",
            json=result_body(f"QD-CR-{i}", conclusion=conclusion, uscc=ENTERPRISE, sector="manufacturing"),
            headers=writer,
        )
        assert r.status_code == 201, r.text
    g = await client.post("/v1/honours", json=grant_body("B5", ENTERPRISE, granted_on="2014-06-01"), headers=writer)
    assert g.status_code == 201, g.text

    async def profile(as_of: str | None = None) -> dict[str, Any]:
        r = await client.get(f"/v1/credit/{ENTERPRISE}", params={"as_of": as_of} if as_of else {}, headers=bob)
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def known() -> int:
        return (await client.get(f"/v1/credit/{ENTERPRISE}", headers=bob)).status_code

    await eventually(known, lambda s: s == 200)
    p = await eventually(profile, lambda p: p["sampling"]["n"] == 3 and len(p["honours"]["active"]) == 1)
    assert p["identity"]["uscc"] == ENTERPRISE and p["identity"]["district_code"] == "370212"  # from the results
    assert (p["sampling"]["passed"], len(p["sampling"]["recent_fails"])) == (2, 1)
    assert p["procurement_priority"]["eligible"] is True
    assert "holds an active brand honour: B5" in p["procurement_priority"]["reasons"][0]
    plist = (await client.get("/v1/procurement/priority-list", headers=bob)).json()
    assert [i["uscc"] for i in plist["items"]] == [ENTERPRISE]

    # Listed through the credit service (four eyes): the honour is suspended, eligibility goes.
    created = await client.post("/v1/blacklist-entries", json=proposal(ENTERPRISE), headers=alice)
    assert created.status_code == 201, created.text
    entry = created.json()
    approved = await client.post(
        f"/v1/blacklist-entries/{entry['entry_id']}:approve",
        json={},
        headers=bob | {"If-Match": created.headers["etag"]},
    )
    assert approved.status_code == 200, approved.text
    listed_on = approved.json()["listed_on"]
    p = await eventually(profile, lambda p: p["blacklist"]["listed"] and p["honours"]["suspended"])
    assert p["procurement_priority"]["eligible"] is False
    assert any("is on the quality blacklist" in r for r in p["procurement_priority"]["reasons"])
    assert [e["entry_id"] for e in p["blacklist"]["history"]] == [entry["entry_id"]]
    assert p["honours"]["active"] == []
    before = await profile((date.fromisoformat(listed_on) - timedelta(days=1)).isoformat())
    assert before["blacklist"]["listed"] is False and before["procurement_priority"]["eligible"] is True
    assert (await client.get("/v1/procurement/priority-list", headers=bob)).json()["items"] == []
    assert clock.today().isoformat() == listed_on

    found = (await client.get("/v1/enterprises", params={"q": "测试电器"}, headers=bob)).json()["items"]
    assert [e["uscc"] for e in found] == [ENTERPRISE]
    by_code = (await client.get("/v1/enterprises", params={"q": ENTERPRISE.lower()}, headers=bob)).json()["items"]
    assert [e["uscc"] for e in by_code] == [ENTERPRISE]
    assert (await client.get("/v1/enterprises", params={"q": "x"})).status_code == 401
    bad = await client.get("/v1/credit/91370200163562681X", headers=bob)
    assert bad.status_code == 422 and bad.json()["type"].endswith(":invalid-uscc")


async def test_change_feed_lists_every_applied_event_in_order_by_cursor_and_subject(
    embedded: Suite, auth: Callable[..., dict[str, str]]
) -> None:
    _, client = embedded
    h = auth("sampling:write", "read")
    other = "91370200MA3C00001N"
    for i, uscc in enumerate((ENTERPRISE, other, ENTERPRISE)):
        r = await client.post("/v1/results", json=result_body(f"QD-F-{i}", uscc=uscc), headers=h)
        assert r.status_code == 201

    async def feed(**params: Any) -> dict[str, Any]:
        return dict((await client.get("/v1/changes", params=params, headers=h)).json())

    all_ = await eventually(lambda: feed(), lambda f: len(f["items"]) == 3)
    assert [e["event"]["type"] for e in all_["items"]] == ["sampling.result.recorded.v1"] * 3
    assert [e["event"]["data"]["result"]["report_no"] for e in all_["items"]] == ["QD-F-0", "QD-F-1", "QD-F-2"]
    first = await feed(limit=1)
    rest = await feed(after=first["next_cursor"])
    assert [e["event"]["id"] for e in first["items"] + rest["items"]] == [e["event"]["id"] for e in all_["items"]]
    mine = await feed(subject=ENTERPRISE)
    assert [e["event"]["subject"] for e in mine["items"]] == [ENTERPRISE, ENTERPRISE]
    assert (await feed(after=all_["next_cursor"]))["items"] == []
    assert (await client.get("/v1/changes")).status_code == 401
    fresh = (await client.get("/v1/attainment")).json()["freshness"]
    assert fresh["events_applied"] == 3 and fresh["last_event_time"] is not None and fresh["lag_s"] >= 0
