"""The sampling service end to end in embedded mode: bulk ingest, bad input, lifecycle, reading."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from services.sampling.models import outbox, results
from shared.clock import FixedClock
from shared.contracts.sampling import RESULT_BATCH_RECORDED
from tests.factories import ITEM, USCC_A, USCC_B, result_body
from tests.helpers import eventually

Suite = tuple[FastAPI, httpx.AsyncClient]
Auth = Callable[..., dict[str, str]]
SAMPLING = "/services/sampling"


def ndjson(rows: list[dict[str, Any]]) -> bytes:
    return b"\n".join(orjson.dumps(r) for r in rows)


async def stored(app: FastAPI) -> tuple[int, int]:
    """(results stored, results the outbox's events carry): a batch event carries several."""
    runtime = app.state.embedded_services["sampling"].state.runtime
    async with runtime.unit_of_work() as uow:
        n_results = await uow.session.scalar(select(func.count()).select_from(results))
        events = (await uow.session.execute(select(outbox.c.type, outbox.c.data))).all()
    carried = sum(len(orjson.loads(d)["results"]) if t == RESULT_BATCH_RECORDED else 1 for t, d in events)
    return int(n_results or 0), carried


async def event_types(app: FastAPI) -> list[str]:
    runtime = app.state.embedded_services["sampling"].state.runtime
    async with runtime.unit_of_work() as uow:
        return list(await uow.session.scalars(select(outbox.c.type).order_by(outbox.c.id)))


async def post_batch(
    client: httpx.AsyncClient, h: dict[str, str], body: bytes, ctype: str, **params: Any
) -> httpx.Response:
    return await client.post("/v1/results:batch", content=body, headers=h | {"content-type": ctype}, params=params)


# ---------------------------------------------------------------- bulk


async def test_ndjson_batch_reports_each_row_created_duplicate_conflict_or_rejected(suite: Suite, auth: Auth) -> None:
    app, client = suite
    h = auth("sampling:write")
    rows = [
        result_body("B-1"),
        result_body("B-2", uscc="91370200163562681X"),
        result_body("B-1"),  # the same report again in the batch: a duplicate of row 1
        result_body("B-3", uscc=USCC_B, sector="agricultural", conclusion="fail"),
    ]
    body = ndjson(rows[:2]) + b"\n{not json\n" + ndjson(rows[2:])
    r = await post_batch(client, h, body, "application/x-ndjson")
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["received"], out["created"], out["duplicates"], out["rejected"]) == (5, 2, 1, 2)
    assert [x["outcome"] for x in out["rows"]] == ["created", "rejected", "rejected", "duplicate", "created"]
    assert out["rows"][1]["problems"] == [{"field": "uscc", "reason": "the USCC check digit is wrong"}]
    assert out["rows"][2] == {
        "row": 3,
        "outcome": "rejected",
        "id": None,
        "problems": [{"field": "", "reason": "malformed JSON"}],
    }
    assert out["rows"][3]["id"] == out["rows"][0]["id"]
    assert await stored(app) == (2, 2)

    again = await post_batch(
        client,
        h,
        ndjson([result_body("B-1"), result_body("B-3", uscc=USCC_B, conclusion="pass")]),
        "application/x-ndjson",
    )
    assert [x["outcome"] for x in again.json()["rows"]] == ["duplicate", "conflict"]
    assert again.json()["rows"][1]["problems"][0]["field"] == "report_no"
    assert await stored(app) == (2, 2)


async def test_json_array_and_csv_with_english_or_chinese_headers(suite: Suite, auth: Auth) -> None:
    app, client = suite
    h = auth("sampling:write", "read")
    r = await post_batch(client, h, orjson.dumps([result_body("J-1"), result_body("J-2")]), "application/json")
    assert r.json()["created"] == 2

    def to_csv(header: list[str], rows: list[list[str]]) -> bytes:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(header)
        w.writerows(rows)
        return buf.getvalue().encode()

    en = [
        "report_no",
        "level",
        "sector",
        "product_category",
        "product_name",
        "uscc",
        "enterprise_name",
        "district_code",
        "sampling_date",
        "report_date",
        "conclusion",
        "nonconforming_items",
    ]
    r = await post_batch(
        client,
        h,
        to_csv(
            en,
            [
                [
                    "C-1",
                    "national",
                    "manufacturing",
                    "电线电缆",
                    "电缆",
                    USCC_A,
                    "某电缆厂",
                    "370281",
                    "2014-03-01",
                    "2014-03-20",
                    "pass",
                    "",
                ],
                [
                    "C-2",
                    "national",
                    "manufacturing",
                    "电线电缆",
                    "电缆",
                    USCC_A,
                    "某电缆厂",
                    "370281",
                    "2014-03-01",
                    "2014-03-20",
                    "fail",
                    orjson.dumps([ITEM]).decode(),
                ],
                [
                    "C-3",
                    "national",
                    "manufacturing",
                    "电线电缆",
                    "电缆",
                    USCC_A,
                    "某电缆厂",
                    "999999",
                    "2014-03-01",
                    "2014-03-20",
                    "pass",
                    "",
                ],
            ],
        ),
        "text/csv",
    )
    out = r.json()
    assert [x["outcome"] for x in out["rows"]] == ["created", "created", "rejected"]
    assert out["rows"][2]["problems"][0]["field"] == "district_code"

    zh = [
        "报告编号",
        "抽检级别",
        "行业",
        "重要产品",
        "产品类别",
        "产品名称",
        "统一社会信用代码",
        "企业名称",
        "区市代码",
        "抽样日期",
        "报告日期",
        "检验结论",
        "不合格项目",
    ]
    r = await post_batch(
        client,
        h,
        to_csv(
            zh,
            [
                [
                    "Z-1",
                    "省级",
                    "农产品",
                    "否",
                    "蔬菜",
                    "大白菜",
                    USCC_B,
                    "某合作社",
                    "370283",
                    "2014-04-01",
                    "2014-04-10",
                    "不合格",
                    orjson.dumps([ITEM | {"standard": "GB 2763-2014"}]).decode(),
                ],
            ],
        ),
        "text/csv; charset=utf-8",
    )
    assert r.json()["created"] == 1, r.text
    z1 = (await client.get("/v1/results", params={"uscc": USCC_B}, headers=h)).json()["items"][0]
    assert (z1["level"], z1["sector"], z1["conclusion"], z1["state"]) == (
        "provincial",
        "agricultural",
        "fail",
        "provisional",
    )
    assert await stored(app) == (5, 5)


async def test_atomic_batch_stores_nothing_when_one_row_is_bad(suite: Suite, auth: Auth) -> None:
    app, client = suite
    body = ndjson([result_body("A-1"), result_body("A-2", conclusion="fail", nonconforming_items=[])])
    r = await post_batch(client, auth("sampling:write"), body, "application/x-ndjson", atomic="true")
    assert r.status_code == 422
    problem = r.json()
    assert problem["type"] == "urn:qualitycity:problem:batch-rejected"
    assert problem["rows"] == [
        {
            "row": 2,
            "outcome": "rejected",
            "id": None,
            "problems": [{"field": "nonconforming_items", "reason": "a fail needs at least one non-conforming item"}],
        }
    ]
    assert await stored(app) == (0, 0)


@pytest.mark.parametrize(
    ("body", "ctype", "status", "slug"),
    [
        (
            b"\n".join([orjson.dumps(result_body(f"L-{i}")) for i in range(10_001)]),
            "application/x-ndjson",
            413,
            "batch-too-large",
        ),
        (b"[{", "application/json", 400, "malformed-json"),
        (b'{"a": 1}', "application/json", 422, "validation-error"),
        (b"report_no,colour\nX,red\n", "text/csv", 422, "csv-columns"),
        (b'report_no,uscc,conclusion\n"unterminated', "text/csv", 400, "malformed-csv"),
        (b"a,b", "text/plain", 415, "unsupported-media-type"),
    ],
    ids=["over-limit", "malformed-json", "not-an-array", "unknown-csv-column", "broken-csv", "wrong-content-type"],
)
async def test_malformed_batches_are_refused_whole(
    suite: Suite, auth: Auth, body: bytes, ctype: str, status: int, slug: str
) -> None:
    app, client = suite
    r = await post_batch(client, auth("sampling:write"), body, ctype)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == f"urn:qualitycity:problem:{slug}"
    assert await stored(app) == (0, 0)


# ---------------------------------------------------------------- bad input, one result


@pytest.mark.parametrize(
    ("over", "field", "reason"),
    [
        (
            {"conclusion": "fail", "nonconforming_items": []},
            "nonconforming_items",
            "a fail needs at least one non-conforming item",
        ),
        ({"nonconforming_items": [ITEM]}, "nonconforming_items", "a pass cannot have non-conforming items"),
        ({"sampling_date": "2014-06-01"}, "sampling_date", "sampling_date is after report_date"),
        ({"production_date": "2014-05-11"}, "production_date", "production_date is after sampling_date"),
        ({"report_date": "2015-06-02", "sampling_date": "2015-05-30"}, "report_date", "in the future"),
        ({"uscc": "91370200163562681X"}, "uscc", "check digit"),
        ({"district_code": "370299"}, "district_code", "unknown district code"),
        ({"district_code": "370205"}, "district_code", "was not a district on 2014-05-10"),
        ({"level": "county"}, "level", "'national', 'provincial', 'municipal' or 'district'"),
        ({"product_name": "x" * 201}, "product_name", "at most 200 characters"),
        ({"colour": "red"}, "colour", "unknown field"),
    ],
    ids=[
        "fail-without-items",
        "pass-with-items",
        "sampled-after-report",
        "produced-after-sampled",
        "future",
        "bad-uscc",
        "unknown-district",
        "district-not-valid-then",
        "unknown-enum",
        "too-long",
        "unknown-field",
    ],
)
async def test_bad_result_gets_a_precise_problem_and_stores_nothing(
    suite: Suite, auth: Auth, over: dict[str, Any], field: str, reason: str
) -> None:
    app, client = suite
    r = await client.post("/v1/results", json=result_body(**over), headers=auth("sampling:write"))
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["type"] == "urn:qualitycity:problem:validation-error"
    assert [e["field"] for e in problem["errors"]] == [field]
    assert reason in problem["errors"][0]["reason"]
    assert await stored(app) == (0, 0)


async def test_a_2012_district_is_valid_for_2012_results_only(suite: Suite, auth: Auth) -> None:
    app, client = suite
    h = auth("sampling:write")
    old = result_body(
        "S-2012",
        district_code="370205",
        production_date="2012-05-01",
        sampling_date="2012-05-10",
        report_date="2012-05-20",
    )
    assert (await client.post("/v1/results", json=old, headers=h)).status_code == 201
    jimo_2016 = result_body(
        "J-2016", district_code="370282", production_date=None, sampling_date="2015-01-10", report_date="2015-01-20"
    )
    assert (await client.post("/v1/results", json=jimo_2016, headers=h)).status_code == 201
    jimo_district_2015 = result_body(
        "J-2015", district_code="370215", production_date=None, sampling_date="2015-01-10", report_date="2015-01-20"
    )
    assert (await client.post("/v1/results", json=jimo_district_2015, headers=h)).status_code == 422
    regions = (await client.get(f"{SAMPLING}/v1/regions")).json()
    assert {
        "code": "370205",
        "name_zh": "四方区",
        "name_en": "Sifang District",
        "level": "district",
        "valid_from": None,
        "valid_to": "2012-12-31",
    } in regions


# ---------------------------------------------------------------- idempotency


async def test_idempotency_key_replays_the_first_answer_and_refuses_another_body(suite: Suite, auth: Auth) -> None:
    app, client = suite
    h = auth("sampling:write") | {"Idempotency-Key": "k-123"}
    first = await client.post("/v1/results", json=result_body("I-1"), headers=h)
    second = await client.post("/v1/results", json=result_body("I-1"), headers=h)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    other = await client.post("/v1/results", json=result_body("I-2"), headers=h)
    assert other.status_code == 422
    assert other.json()["type"] == "urn:qualitycity:problem:idempotency-key-reused"
    assert await stored(app) == (1, 1)


# ---------------------------------------------------------------- lifecycle


async def _create(client: httpx.AsyncClient, h: dict[str, str], **over: Any) -> dict[str, Any]:
    r = await client.post("/v1/results", json=result_body(**over), headers=h)
    assert r.status_code == 201, r.text
    return {**r.json(), "etag": r.headers["etag"]}


async def test_correction_by_owner_with_if_match_keeps_history(suite: Suite, auth: Auth) -> None:
    app, client = suite
    owner = auth("sampling:write", "read")
    res = await _create(client, owner, report_no="H-1")
    path = f"{SAMPLING}/v1/results/{res['id']}"
    body = {"reason": "名称录入错误", "changes": {"product_name": "矿泉水（含气）"}}

    assert (await client.patch(path, json=body, headers=owner)).status_code == 428
    other = auth("sampling:write", agency="QD-AGENCY-2")
    assert (await client.patch(path, json=body, headers=other | {"If-Match": res["etag"]})).status_code == 403
    ok = await client.patch(path, json=body, headers=owner | {"If-Match": res["etag"]})
    assert ok.status_code == 200, ok.text
    assert ok.json()["product_name"] == "矿泉水（含气）" and ok.json()["version"] == 2
    stale = await client.patch(
        path, json={"reason": "again", "changes": {"brand": "X"}}, headers=owner | {"If-Match": res["etag"]}
    )
    assert stale.status_code == 412
    bad = await client.patch(
        path,
        json={"reason": "r", "changes": {"report_date": "2014-05-01"}},
        headers=owner | {"If-Match": ok.headers["etag"]},
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["reason"] == "sampling_date is after report_date"

    history = (await client.get(f"{path}/history", headers=owner)).json()
    assert [(v["version"], v["change"], v["reason"]) for v in history] == [
        (1, "recorded", None),
        (2, "corrected", "名称录入错误"),
    ]
    assert history[0]["result"]["product_name"] == "矿泉水" and history[1]["result"]["product_name"] == "矿泉水（含气）"
    assert await event_types(app) == ["sampling.result.recorded.v1", "sampling.result.corrected.v1"]


async def test_retraction_takes_a_result_out_of_every_count(suite: Suite, auth: Auth) -> None:
    app, client = suite
    h = auth("sampling:write", "read")
    keep = await _create(client, h, report_no="R-1")
    gone = await _create(client, h, report_no="R-2", conclusion="fail")
    r = await client.post(
        f"/v1/results/{gone['id']}:retract", json={"reason": "样品信息错误"}, headers=h | {"If-Match": gone["etag"]}
    )
    assert r.status_code == 200 and r.json()["state"] == "retracted"
    again = await client.post(
        f"/v1/results/{gone['id']}:retract", json={"reason": "again"}, headers=h | {"If-Match": r.headers["etag"]}
    )
    assert again.status_code == 409
    rates = (await client.get(f"{SAMPLING}/v1/stats/pass-rates", headers=h)).json()
    assert rates["n"] == 1 and rates["groups"][0]["passed"] == 1
    listed = (await client.get("/v1/results", headers=h)).json()["items"]
    assert [x["id"] for x in listed] == [keep["id"]]
    assert (await client.get("/v1/results", params={"state": "retracted"}, headers=h)).json()["items"][0]["id"] == gone[
        "id"
    ]
    await eventually(lambda: _gateway_rates(client), lambda v: v == {"food": (1, 1)})


async def _gateway_rates(client: httpx.AsyncClient) -> dict[str, tuple[int, int]]:
    return {g["sector"]: (g["n"], g["passed"]) for g in (await client.get("/v1/pass-rates")).json()["groups"]}


async def test_reinspection_in_window_and_finalisation_after_it(suite: Suite, auth: Auth, clock: FixedClock) -> None:
    app, client = suite
    h = auth("sampling:write", "read")
    admin = auth("admin")
    # report 2015-05-25: the objection window (15 days) runs to 2015-06-09; the clock says 2015-06-01
    dates = {"production_date": "2015-05-01", "sampling_date": "2015-05-10", "report_date": "2015-05-25"}
    overturned = await _create(client, h, report_no="F-1", conclusion="fail", **dates)
    upheld = await _create(client, h, report_no="F-2", conclusion="fail", **dates)
    lapsed = await _create(client, h, report_no="F-3", conclusion="fail", **dates)
    assert overturned["state"] == "provisional" and overturned["objection_deadline"] == "2015-06-09"

    reinspector = auth("sampling:write", agency="QD-AGENCY-9")  # another agency re-inspects
    body = {
        "outcome": "overturned",
        "reinspection_report_no": "FJ-1",
        "requested_on": "2015-05-30",
        "decided_on": "2015-06-01",
    }
    r = await client.post(
        f"/v1/results/{overturned['id']}/reinspection",
        json=body,
        headers=reinspector | {"If-Match": overturned["etag"]},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["conclusion"], r.json()["original_conclusion"], r.json()["state"]) == ("pass", "fail", "final")
    r = await client.post(
        f"/v1/results/{upheld['id']}/reinspection",
        json=body | {"outcome": "upheld"},
        headers=reinspector | {"If-Match": upheld["etag"]},
    )
    assert (r.json()["conclusion"], r.json()["state"], r.json()["reinspection"]) == ("fail", "final", "upheld")

    provisional = await client.get(
        f"{SAMPLING}/v1/stats/pass-rates", params={"include_provisional": "false"}, headers=h
    )
    assert provisional.json()["n"] == 2  # the lapsed fail is still provisional

    clock.set(clock.now().replace(month=6, day=10))
    late = await client.post(
        f"/v1/results/{lapsed['id']}/reinspection",
        json=body | {"requested_on": "2015-06-10", "decided_on": "2015-06-10"},
        headers=reinspector | {"If-Match": lapsed["etag"]},
    )
    assert late.status_code == 409 and "window closed on 2015-06-09" in late.json()["detail"]
    ran = await client.post(f"{SAMPLING}/v1/jobs/finalise-results:run", headers=admin)
    assert ran.json() == {"job": "finalise-results", "changed": 1}
    assert (await client.post(f"{SAMPLING}/v1/jobs/finalise-results:run", headers=admin)).json()["changed"] == 0
    final = (await client.get(f"/v1/results/{lapsed['id']}", headers=h)).json()
    assert (final["state"], final["version"]) == ("final", 2)
    assert await event_types(app) == ["sampling.result.recorded.v1"] * 3 + ["sampling.result.reinspected.v1"] * 2 + [
        "sampling.result.finalised.v1"
    ]
    card = (await client.get(f"{SAMPLING}/v1/agencies/QD-AGENCY-1/scorecard", headers=h)).json()
    assert (card["results"], card["fails"], card["overturned_fails"], card["median_days_sampling_to_report"]) == (
        3,
        3,
        1,
        15.0,
    )
    await eventually(lambda: _gateway_rates(client), lambda v: v == {"food": (3, 1)})


# ---------------------------------------------------------------- reading


async def test_pass_rates_group_filter_and_carry_wilson_intervals(suite: Suite, auth: Auth) -> None:
    app, client = suite
    h = auth("sampling:write", "read")
    rows = []
    for i in range(10):
        year = 2013 + i % 2
        rows.append(
            result_body(
                f"P-{i}",
                sector="agricultural" if i < 6 else "food",
                production_date=None,
                sampling_date=f"{year}-0{1 + i % 9}-01",
                report_date=f"{year}-0{1 + i % 9}-10",
                **({"conclusion": "fail"} if i in (0, 7) else {}),
            )
        )
    assert (await post_batch(client, h, ndjson(rows), "application/x-ndjson")).json()["created"] == 10
    r = (await client.get(f"{SAMPLING}/v1/stats/pass-rates", params={"group_by": ["sector", "year"]}, headers=h)).json()
    got = {(g["key"]["sector"], g["key"]["year"]): (g["n"], g["passed"]) for g in r["groups"]}
    assert got == {
        ("agricultural", 2013): (3, 2),
        ("agricultural", 2014): (3, 3),
        ("food", 2013): (2, 2),
        ("food", 2014): (2, 1),
    }
    agri = (
        await client.get(
            f"{SAMPLING}/v1/stats/pass-rates", params={"sector": "agricultural", "group_by": ["quarter"]}, headers=h
        )
    ).json()
    assert {g["key"]["quarter"]: g["n"] for g in agri["groups"]} == {1: 3, 2: 3}
    one = r["groups"][0]
    assert one["rate"] == pytest.approx(2 / 3) and one["wilson_95"][0] < 2 / 3 < one["wilson_95"][1]
    bad = await client.get(f"{SAMPLING}/v1/stats/pass-rates", params={"group_by": "colour"}, headers=h)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"].startswith("group_by")


async def test_list_filters_paginate_with_a_cursor_and_export_csv(suite: Suite, auth: Auth) -> None:
    app, client = suite
    h = auth("sampling:write", "read")
    rows = [result_body(f"L-{i:02}", uscc=USCC_A if i % 2 else USCC_B) for i in range(25)]
    await post_batch(client, h, ndjson(rows), "application/x-ndjson")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"uscc": USCC_B, "limit": 5} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/results", params=params, headers=h)).json()
        seen += [x["report_no"] for x in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"L-{i:02}" for i in range(0, 25, 2)]
    assert (await client.get("/v1/results", params={"cursor": "nonsense!"}, headers=h)).status_code == 422
    assert (await client.get("/v1/results", params={"colour": "red"}, headers=h)).status_code == 422
    export = await client.get(f"{SAMPLING}/v1/results:export", params={"uscc": USCC_A}, headers=h)
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(export.text.lstrip("\ufeff"))))
    assert lines[0][:4] == ["id", "version", "agency_code", "report_no"]
    assert sorted(line[3] for line in lines[1:]) == [f"L-{i:02}" for i in range(1, 25, 2)]


async def test_scorecard_counts_submissions_rejections_and_corrections(suite: Suite, auth: Auth) -> None:
    app, client = suite
    h = auth("sampling:write", "read")
    body = ndjson([result_body("S-1"), result_body("S-2", uscc="x"), result_body("S-1")])
    await post_batch(client, h, body, "application/x-ndjson")
    res = (await client.get("/v1/results", headers=h)).json()["items"][0]
    got = await client.get(f"/v1/results/{res['id']}", headers=h)
    await client.patch(
        f"{SAMPLING}/v1/results/{res['id']}",
        json={"reason": "r", "changes": {"brand": "青啤"}},
        headers=h | {"If-Match": got.headers["etag"]},
    )
    card = (await client.get(f"{SAMPLING}/v1/agencies/QD-AGENCY-1/scorecard", headers=h)).json()
    assert card == {
        "agency_code": "QD-AGENCY-1",
        "submissions": 3,
        "results": 1,
        "rejected_rows": 1,
        "conflict_rows": 0,
        "duplicates": 1,
        "corrections": 1,
        "retractions": 0,
        "fails": 0,
        "overturned_fails": 0,
        "median_days_sampling_to_report": 15.0,
    }


async def test_the_same_idempotency_key_twice_at_once_stores_one_result(suite: Suite, auth: Auth) -> None:
    import asyncio

    app, client = suite
    h = auth("sampling:write") | {"Idempotency-Key": "race-1"}
    answers = await asyncio.gather(
        *(client.post("/v1/results", json=result_body("RACE-1"), headers=h) for _ in range(4))
    )
    codes = sorted(a.status_code for a in answers)
    assert set(codes) <= {201, 409} and codes.count(201) >= 1, [a.text for a in answers]
    assert all(a.headers["content-type"] == "application/problem+json" for a in answers if a.status_code == 409)
    assert await stored(app) == (1, 1)
