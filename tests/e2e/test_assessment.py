"""District assessment (考核) end to end, embedded and distributed: a generated five-year city goes in
through the real APIs (results, honours, district reports), and every district's score, rank,
change and indicator lines equal an independent computation of docs/assessment.md's method
(tests/e2e/assessment_helpers.py); the XLSX export re-read with openpyxl holds the same numbers."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import openpyxl
import pypdf
import pytest

from tests.e2e.assessment_helpers import (
    COLLAPSE,
    FULL,
    GONE,
    REPORTED,
    SPARSE,
    YEARS,
    City,
    Score,
    generate,
    score_all,
    totals,
)
from tests.helpers import eventually

Auth = Callable[..., dict[str, str]]
#: Early 2016: the plan period lies in the past.
STARTED = datetime(2016, 3, 1, 4, tzinfo=UTC)
PLAN = "qingdao-2012"


async def _load(c: httpx.AsyncClient, city: City, auth: Auth) -> None:
    w = auth("sampling:write", "read", agency="QD-AGENCY-1")
    for start in range(0, len(city.results), 5000):
        r = await c.post("/v1/results:batch", json=city.results[start : start + 5000], headers=w)
        assert r.status_code < 300, r.text[:2000]
        body = r.json()
        assert body["created"] == len(city.results[start : start + 5000]), [
            x for x in body["rows"] if x["outcome"] != "created"
        ][:3]
    g = auth("awards:write")
    for grant in city.grants:
        r = await c.post("/v1/honours", json=grant, headers=g)
        assert r.status_code == 201, r.text
    rep = auth("indicators:write", subject="statistics-bureau")
    for report in city.reports:
        r = await c.post("/v1/indicator-reports", json=report, headers=rep)
        assert r.status_code == 201, r.text
    expected = totals(city)

    async def applied() -> tuple[int, dict[str, Any]]:
        n = sum(g["n"] for g in (await c.get("/v1/pass-rates")).json()["groups"])
        figs = (await c.get("/v1/attainment", params={"plan": PLAN, "as_of": "2015-12-31"})).json()
        return n, {f["code"]: f["value"] for f in figs["indicators"]}

    def complete(v: tuple[int, dict[str, Any]]) -> bool:
        n, values = v
        h = expected["honours"]
        return (
            n == expected["results"]
            and values["shandong_famous_brands"] == h.get("B5", 0)
            and values["standardization_good_behaviour_enterprises"] == h.get("S6", 0)
            and values["mayor_quality_awards"] == h.get("Q5", 0)
            and values["governor_quality_awards"] == h.get("Q4", 0)
        )

    await eventually(applied, complete, timeout=180, interval=0.5)


def _pdf_text(pdf: bytes) -> str:
    assert pdf.startswith(b"%PDF-")
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)


def _check_year(api: dict[str, Any], want: dict[str, Score], scheme: dict[str, Any]) -> None:
    got = {d["district_code"]: d for d in api["districts"]}
    assert set(got) == set(want), "every district of the year, and only those"
    order = [d["district_code"] for d in api["districts"]]
    ranked = [d for d in order if want[d].ranked]
    assert order[: len(ranked)] == sorted(ranked, key=lambda d: (want[d].rank, d)), "ranked first, by rank"
    for code, w in want.items():
        g = got[code]
        assert g["ranked"] is w.ranked, code
        assert g["rank"] == w.rank, code
        if w.score is None:
            assert g["score"] is None, code
        else:
            assert g["score"] == pytest.approx(w.score, abs=1e-6), code
        if w.change is None:
            assert g["change"] is None, code
        else:
            assert g["change"] == pytest.approx(w.change, abs=2e-6), code
        assert g["bonus"] == pytest.approx(w.bonus) and g["penalties"] == pytest.approx(w.penalties), code
        assert g["judged_weight"] == pytest.approx(w.judged_weight), code
        lines = {i["code"]: i for i in g["indicators"]}
        assert list(lines) == [i["code"] for i in scheme["indicators"]]
        for ind, line in w.lines.items():
            gl = lines[ind]
            assert gl["status"] == line.status, (code, ind, gl["why"])
            assert gl["n"] == line.n, (code, ind)
            assert gl["target"] == pytest.approx(line.target), (code, ind)
            if line.value is None:
                assert gl["value"] is None
            else:
                assert gl["value"] == pytest.approx(line.value, abs=1e-6), (code, ind)
            if line.points is None:
                assert gl["points"] is None and gl["contribution"] is None, (code, ind)
            else:
                assert gl["points"] == pytest.approx(line.points, abs=1e-6), (code, ind)
            assert gl["penalty"] == pytest.approx(line.penalty), (code, ind, gl["why"])
            assert gl["why"], "every line says why"
            if gl["n"]:
                lo, hi = gl["wilson_95"]
                assert lo - 1e-6 <= gl["value"] <= hi + 1e-6
        if w.ranked:
            total = sum(i["contribution"] for i in g["indicators"] if i["contribution"] is not None)
            assert total == pytest.approx(g["base_score"]), "contributions add up to the base score"


async def test_scores_and_ranks_equal_an_independent_computation(suite_2016: httpx.AsyncClient, auth: Auth) -> None:
    c, city = suite_2016, generate()
    await _load(c, city, auth)
    plan = (await c.get(f"/v1/plans/{PLAN}")).json()
    schemes = {s["id"]: s for s in plan["assessment_schemes"]}
    assert len(schemes) >= 2, "the plan ships a second scheme"
    for scheme_id, scheme in schemes.items():
        want = score_all(city, plan, scheme)
        for year in YEARS:
            r = await c.get("/v1/assessments", params={"plan": PLAN, "scheme": scheme_id, "year": year})
            assert r.status_code == 200, r.text
            api = r.json()
            assert (api["plan"], api["scheme"], api["year"]) == (PLAN, scheme_id, year)
            _check_year(api, want[year], scheme)

    main = schemes["districts"]
    want = score_all(city, plan, main)
    # The dataset has what the method must handle; each is checked against the API above, and here
    # it is made sure that the generated city really holds it.
    assert GONE in want[2012] and GONE not in want[2013], "四方区 is assessed while it exists"
    sparse = want[2014][SPARSE]
    assert not sparse.ranked and sparse.score is None
    assert {ln.status for c_, ln in sparse.lines.items() if c_ != REPORTED} >= {"too_few_results"}
    food, district, year = COLLAPSE
    assert want[year][district].lines[food].penalty > 0, "the collapse is a significant fall"
    assert any(want[y][d].bonus > 0 for y in YEARS for d in FULL)
    assert any(want[y][d].change is not None for y in YEARS for d in FULL)
    targeted = {d for i in main["indicators"] for d in i.get("district_targets", {})}
    assert targeted & set(FULL), "a district-specific target applies to a district with data"

    # A district with too few results says so: the line names the count, the district why it is unranked.
    api = (await c.get("/v1/assessments", params={"plan": PLAN, "year": 2014})).json()
    lacey = next(d for d in api["districts"] if d["district_code"] == SPARSE)
    line = next(i for i in lacey["indicators"] if i["code"] == "agri_pass_rate")
    assert line["status"] == "too_few_results" and line["points"] is None
    assert str(line["n"]) in line["why"] and lacey["why"]

    # One district over every year: the same figures as the year lists.
    one = (await c.get(f"/v1/assessments/{FULL[0]}", params={"plan": PLAN})).json()
    assert [y["year"] for y in one["years"]] == list(YEARS)
    for y in one["years"]:
        w = want[y["year"]][FULL[0]]
        assert y["rank"] == w.rank and y["score"] == pytest.approx(w.score, abs=1e-6)

    # District reports leave the city's figure as the city reported it.
    city_fig = (await c.get(f"/v1/attainment/{REPORTED}", params={"plan": PLAN, "as_of": "2015-12-31"})).json()
    assert city_fig["indicator"]["value"] == pytest.approx(city.city_reports[2015])
    assert [p["value"] for p in city_fig["indicator"]["series"]] == pytest.approx([city.city_reports[y] for y in YEARS])
    listed = (await c.get("/v1/indicator-reports", params={"plan": PLAN, "indicator": REPORTED, "limit": 1000})).json()
    scoped = [r for r in listed["items"] if r["district_code"] is not None]
    assert len(scoped) == len(FULL) * len(YEARS)

    # XLSX: one sheet per year and the method; the numbers are the API's.
    x = await c.get("/v1/assessments:export", params={"plan": PLAN, "format": "xlsx"})
    assert x.status_code == 200, x.text
    assert x.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml")
    book = openpyxl.load_workbook(io.BytesIO(x.content))
    assert book.sheetnames == [str(y) for y in YEARS] + ["method"]
    for year in YEARS:
        api = (await c.get("/v1/assessments", params={"plan": PLAN, "year": year})).json()
        rows = list(book[str(year)].iter_rows(values_only=True))
        header = list(rows[0])
        by_code = {r[header.index("district_code")]: dict(zip(header, r, strict=True)) for r in rows[1:]}
        assert set(by_code) == {d["district_code"] for d in api["districts"]}
        for d in api["districts"]:
            row = by_code[d["district_code"]]
            assert (row["score"], row["rank"], row["change"]) == (d["score"], d["rank"], d["change"])
            for i in d["indicators"]:
                assert row[f"{i['code']}.points"] == i["points"]
                assert row[f"{i['code']}.value"] == i["value"]
    method = [r[0] for r in book["method"].iter_rows(values_only=True) if r[0]]
    assert any("capped_attainment" in str(m) for m in method)

    # The annual printable report as PDF: the city's ranks every district with the API's score; a
    # district's report holds its own lines.
    api = (await c.get("/v1/assessments", params={"plan": PLAN, "year": 2015})).json()
    city_pdf = await c.get("/v1/assessments:report", params={"plan": PLAN, "year": 2015})
    assert city_pdf.status_code == 200 and city_pdf.headers["content-type"] == "application/pdf", city_pdf.text[:500]
    text = _pdf_text(city_pdf.content)
    for d in api["districts"]:
        score = "—" if d["score"] is None else f"{d['score']:.2f}"
        assert re.search(rf"{d['district_code']}\s+{re.escape(score)}\s", text), (d["district_code"], score)
    one_pdf = await c.get("/v1/assessments:report", params={"plan": PLAN, "year": 2015, "district": FULL[0]})
    assert one_pdf.status_code == 200, one_pdf.text[:500]
    mine = next(d for d in api["districts"] if d["district_code"] == FULL[0])
    one_text = _pdf_text(one_pdf.content)
    assert f"得分 {mine['score']:.2f}" in one_text
    joined = re.sub(r"\s+", "", one_text)  # a long name wraps in its cell
    assert all(re.sub(r"\s+", "", i["name_zh"]) in joined for i in mine["indicators"])
    assert not any(d["name_zh"] in one_text for d in api["districts"] if d["district_code"] != FULL[0])
    html = await c.get("/v1/assessments:report", params={"plan": PLAN, "year": 2015, "format": "html"})
    assert html.status_code == 200 and html.headers["content-type"] == "text/html; charset=utf-8"
    gone = await c.get("/v1/assessments:report", params={"plan": PLAN, "year": 2015, "district": "370299"})
    assert gone.status_code == 404

    # The dashboard's small multiples: each district's panel per indicator holds the API's values, year by year.
    page = await c.get("/dashboard/assessment", params={"plan": PLAN})
    assert page.status_code == 200
    panels = dict(
        ((m["code"], m["district"]), m["svg"])
        for m in re.finditer(
            r'<div class="multiple" data-code="(?P<code>[^"]+)" data-district="(?P<district>\d+)">(?P<svg>.*?)</div>',
            page.text,
        )
    )
    shown = 0
    for year in YEARS:
        api = (await c.get("/v1/assessments", params={"plan": PLAN, "year": year})).json()
        for d in api["districts"]:
            for i in d["indicators"]:
                svg = panels[(i["code"], d["district_code"])]
                found = re.search(rf'data-year="{year}" data-value="([^"]+)"', svg)
                if i["value"] is None:
                    assert found is None, (year, d["district_code"], i["code"])
                else:
                    assert found and float(found.group(1)) == i["value"], (year, d["district_code"], i["code"])
                    shown += 1
    assert shown > len(FULL) * len(YEARS), "the panels hold the series"

    # CSV: the same rows, one per (year, district).
    csv_r = await c.get("/v1/assessments:export", params={"plan": PLAN, "format": "csv"})
    assert csv_r.status_code == 200 and csv_r.headers["content-type"] == "text/csv; charset=utf-8"
    rows_csv = list(csv.DictReader(io.StringIO(csv_r.content.decode("utf-8-sig"))))
    assert len(rows_csv) == sum(len(want[y]) for y in YEARS)
    first = next(r for r in rows_csv if r["year"] == "2015" and r["district_code"] == FULL[0])
    assert float(first["score"]) == pytest.approx(want[2015][FULL[0]].score, abs=1e-6)


async def test_district_reports_are_checked_and_unknown_schemes_refused(
    suite_2016: httpx.AsyncClient, auth: Auth
) -> None:
    c = suite_2016
    rep = auth("indicators:write")
    body = {
        "plan": PLAN,
        "indicator": REPORTED,
        "period_start": "2014-01-01",
        "period_end": "2014-12-31",
        "value": 0.5,
        "reporting_system": "统计局",
        "evidence_ref": "青统〔2015〕1号",
    }
    bad = await c.post("/v1/indicator-reports", json=body | {"district_code": "370299"}, headers=rep)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "district_code", bad.text
    gone = await c.post(
        "/v1/indicator-reports",
        json=body | {"district_code": GONE, "period_start": "2014-01-01"},
        headers=rep,
    )
    assert gone.status_code == 422, "四方区 was no district in 2014"
    city_wide = await c.post("/v1/indicator-reports", json=body | {"district_code": "370200"}, headers=rep)
    assert city_wide.status_code == 422, "the city is not a district"
    ok = await c.post("/v1/indicator-reports", json=body | {"district_code": FULL[0]}, headers=rep)
    assert ok.status_code == 201 and ok.json()["district_code"] == FULL[0]
    assert (await c.get("/v1/assessments", params={"plan": PLAN, "scheme": "nope"})).status_code == 404
    assert (await c.get("/v1/assessments", params={"plan": PLAN, "year": 1999})).status_code == 404
    assert (await c.get("/v1/assessments/370299", params={"plan": PLAN})).status_code == 404
    # Each route reads its query as one model: a bad value is still a 422 naming the query parameter.
    for path, bad_param in [
        ("/v1/assessments", {"year": "1800"}),
        ("/v1/assessments:export", {"format": "pdf"}),
        ("/v1/assessments:report", {"district": "3702"}),
    ]:
        r = await c.get(path, params={"plan": PLAN} | bad_param)
        errors = r.json().get("errors", [])
        assert r.status_code == 422 and errors[0]["field"] == next(iter(bad_param)), r.text
        assert errors[0]["in"] == "query", r.text
