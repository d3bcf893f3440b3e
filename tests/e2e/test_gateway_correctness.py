"""The gateway's figures against an independent count of a generated multi-year dataset, and a rebuild.

The dataset: thousands of results across five years, nine districts, every sector and level, with
corrections (conclusion, district, sector), retractions, provisional fails finalised or overturned on
re-inspection, late older versions and duplicate deliveries; honours of every type the plan counts,
with revocations and blacklist suspensions (some reinstated). Events are built as the producers'
contracts describe them (type strings and payload dicts) and handed to the gateway's idempotent
consumer, the code the in-process bus calls. The expected figures are computed here from the
generated ground truth, never from the gateway's tables.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.gateway.plans import HonourCountSource, PassRateSource, load_plans
from services.gateway.rebuild import rebuild_from_feed
from shared.events import Envelope
from shared.stats import wilson_interval
from tests.e2e.awards_helpers import make_uscc

Suite = tuple[FastAPI, httpx.AsyncClient]
DISTRICTS = ("370202", "370203", "370211", "370212", "370213", "370214", "370281", "370283", "370285")
SECTORS = ("manufacturing", "agricultural", "food", "engineering")
LEVELS = ("national", "provincial", "municipal", "district")
PLAN = load_plans()["qingdao-2012"]
T0 = datetime(2011, 1, 1, tzinfo=UTC)


@dataclass
class Truth:
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # result_id -> final snapshot
    honours: dict[str, dict[str, Any]] = field(default_factory=dict)  # honour_id -> facts
    events: list[Envelope] = field(default_factory=list)


def _result(rid: str, rnd: random.Random, uscc: str) -> dict[str, Any]:
    day = date(2011, 1, 1) + timedelta(days=rnd.randrange(5 * 365))
    conclusion = "pass" if rnd.random() < 0.9 else "fail"
    return {
        "result_id": rid,
        "version": 1,
        "agency_code": "QD-AGENCY-1",
        "report_no": f"R-{rid[:8]}",
        "level": rnd.choice(LEVELS),
        "sector": rnd.choice(SECTORS),
        "key_product": rnd.random() < 0.5,
        "product_category": "c",
        "product_name": "p",
        "brand": None,
        "uscc": uscc,
        "enterprise_name": f"企业{uscc[-6:]}",
        "district_code": rnd.choice(DISTRICTS),
        "sampling_date": day.isoformat(),
        "report_date": (day + timedelta(days=10)).isoformat(),
        "conclusion": conclusion,
        "original_conclusion": conclusion,
        "state": "provisional" if conclusion == "fail" else "final",
        "objection_deadline": None,
        "reinspection": None,
        "nonconforming_count": int(conclusion == "fail"),
        "recorded_at": "2015-01-01T00:00:00Z",
    }


def _ev(type_: str, subject: str, at: datetime, **data: Any) -> Envelope:
    return Envelope(type=type_, source="/test", subject=subject, data=data, time=at)


def generate(n_results: int, n_honours: int, seed: int = 20120704) -> Truth:
    rnd = random.Random(seed)
    truth = Truth()
    usccs = [make_uscc(i, rnd.choice(DISTRICTS)) for i in range(1, 400)]
    per_result: list[list[Envelope]] = []
    for i in range(n_results):
        rid = str(uuid.UUID(int=rnd.getrandbits(128)))
        snap = _result(rid, rnd, rnd.choice(usccs))
        at = T0 + timedelta(minutes=i)
        evs = [_ev("sampling.result.recorded.v1", snap["uscc"], at, result=dict(snap))]
        if snap["conclusion"] == "fail":
            snap = dict(snap, version=snap["version"] + 1, state="final")
            if rnd.random() < 0.3:  # overturned on re-inspection: the standing conclusion reads pass
                snap |= {"conclusion": "pass", "reinspection": "overturned"}
                evs.append(
                    _ev(
                        "sampling.result.reinspected.v1",
                        snap["uscc"],
                        at,
                        result=dict(snap),
                        outcome="overturned",
                        decided_on=snap["report_date"],
                        reinspection_report_no="RE",
                    )
                )
            else:
                evs.append(_ev("sampling.result.finalised.v1", snap["uscc"], at, result=dict(snap)))
        roll = rnd.random()
        if roll < 0.12:  # corrected: conclusion, district or sector changes which counters it feeds
            what = rnd.choice(("conclusion", "district_code", "sector"))
            change = {
                "conclusion": "pass" if snap["conclusion"] == "fail" else "fail",
                "district_code": rnd.choice(DISTRICTS),
                "sector": rnd.choice(SECTORS),
            }[what]
            snap = dict(snap, version=snap["version"] + 1, **{what: change})
            evs.append(
                _ev(
                    "sampling.result.corrected.v1",
                    snap["uscc"],
                    at,
                    result=dict(snap),
                    reason="typo",
                    changed_fields=[what],
                )
            )
        elif roll < 0.18:
            snap = dict(snap, version=snap["version"] + 1, state="retracted")
            evs.append(_ev("sampling.result.retracted.v1", snap["uscc"], at, result=dict(snap), reason="wrong sample"))
        truth.results[rid] = snap
        per_result.append(evs)
    types = sorted({t for i in PLAN.indicators if isinstance(i.source, HonourCountSource) for t in i.source.type_codes})
    three_year = {"B4", "B5", "B6", "B7", "S6"}
    per_honour: list[list[Envelope]] = []
    for k in range(n_honours):
        hid = str(uuid.UUID(int=rnd.getrandbits(128)))
        t = rnd.choice(types)
        granted = date(2010, 6, 1) + timedelta(days=rnd.randrange(6 * 365))
        valid_until = date(granted.year + 3, granted.month, 1) - timedelta(days=1) if t in three_year else None
        holder = rnd.choice(usccs)
        snap: dict[str, Any] = {
            "honour_id": hid,
            "version": 1,
            "type_code": t,
            "type_name_zh": t,
            "holder_kind": "enterprise",
            "holder_id": holder,
            "holder_name": f"企业{holder[-6:]}",
            "district_code": rnd.choice(DISTRICTS),
            "subject": None,
            "granted_on": granted.isoformat(),
            "valid_until": valid_until.isoformat() if valid_until else None,
            "state": "active",
            "certificate_no": f"C-{k}",
            "granting_authority": "a",
            "indicator_codes": [],
        }
        at = T0 + timedelta(days=1, minutes=k)
        evs = [_ev("awards.honour.granted.v1", holder, at, honour=dict(snap), source="api")]
        facts: dict[str, Any] = {
            "type_code": t,
            "district": snap["district_code"],
            "granted_on": granted,
            "valid_until": valid_until,
            "revoked_on": None,
            "suspensions": [],
        }
        if rnd.random() < 0.15:  # suspended by a listing, reinstated at its removal two times in three
            s_on = granted + timedelta(days=rnd.randrange(1, 500))
            snap = dict(snap, version=snap["version"] + 1, state="suspended")
            evs.append(
                _ev(
                    "awards.honour.suspended.v1",
                    holder,
                    at,
                    honour=dict(snap),
                    reason="blacklisted",
                    entry_id="E-" + hid[:8],
                    decision_no=None,
                    suspended_on=s_on.isoformat(),
                )
            )
            r_on = None
            if rnd.random() < 0.66:
                r_on = s_on + timedelta(days=rnd.randrange(30, 400))
                snap = dict(snap, version=snap["version"] + 1, state="active")
                evs.append(
                    _ev(
                        "awards.honour.reinstated.v1",
                        holder,
                        at,
                        honour=dict(snap),
                        reason="blacklist_removed",
                        entry_id="E-" + hid[:8],
                        reinstated_on=r_on.isoformat(),
                    )
                )
            facts["suspensions"].append((s_on, r_on))
        if rnd.random() < 0.1:
            rev = granted + timedelta(days=rnd.randrange(0, 900))
            snap = dict(snap, version=snap["version"] + 1, state="revoked")
            evs.append(
                _ev(
                    "awards.honour.revoked.v1",
                    holder,
                    at,
                    honour=dict(snap),
                    reason="fraud",
                    revoked_on=rev.isoformat(),
                )
            )
            facts["revoked_on"] = rev
        truth.honours[hid] = facts
        per_honour.append(evs)
    # Interleave aggregates; each one's events stay in order (one partition key), plus late and twice.
    queues = per_result + per_honour
    rnd.shuffle(queues)
    out: list[Envelope] = []
    while queues:
        q = queues[rnd.randrange(len(queues))]
        out.append(q.pop(0))
        if not q:
            queues.remove(q)
    for e in rnd.sample(out, len(out) // 50):
        out.insert(rnd.randrange(len(out)), e)  # delivered twice
    for e in rnd.sample(out, len(out) // 50):
        if e.type.startswith("sampling") and e.data["result"]["version"] == 1:  # an old version arriving late
            out.append(Envelope(type=e.type, source=e.source, subject=e.subject, data=e.data, time=e.time))
    truth.events = out
    return truth


# ------------------------------------------------------------------------------------------ expectations


def _counted_results(truth: Truth, ind: Any, as_of: date) -> Iterator[tuple[dict[str, Any], date]]:
    """The final snapshots a pass rate counts up to as_of, with their sampling dates."""
    f = ind.source.filter
    for r in truth.results.values():
        d = date.fromisoformat(r["sampling_date"])
        if r["state"] == "retracted" or d > as_of or d.year < PLAN.base_year:
            continue
        if (f.sector and r["sector"] != f.sector) or (f.level and r["level"] != f.level):
            continue
        if f.key_product is None or r["key_product"] == f.key_product:
            yield r, d


def expected_rate(truth: Truth, ind: Any, as_of: date, district: str | None) -> tuple[int, int, int] | None:
    """(year, n, passed) of the latest year with results, counted from the final snapshots."""
    per_year: dict[int, list[int]] = {}
    for r, d in _counted_results(truth, ind, as_of):
        if district and r["district_code"] != district:
            continue
        n_p = per_year.setdefault(d.year, [0, 0])
        n_p[0] += 1
        n_p[1] += r["conclusion"] == "pass"
    if not per_year:
        return None
    y = max(per_year)
    return y, per_year[y][0], per_year[y][1]


def _active(h: dict[str, Any], day: date) -> bool:
    if h["granted_on"] > day or (h["valid_until"] and day > h["valid_until"]):
        return False
    if h["revoked_on"] and h["revoked_on"] <= day:
        return False
    return not any(s <= day and (r is None or day < r) for s, r in h["suspensions"])


def expected_count(truth: Truth, ind: Any, as_of: date, district: str | None) -> int:
    n = 0
    for h in truth.honours.values():
        if h["type_code"] not in ind.source.type_codes or (district and h["district"] != district):
            continue
        if ind.counting == "granted_during":
            n += PLAN.period_start <= h["granted_on"] <= as_of and (h["revoked_on"] is None or h["revoked_on"] > as_of)
        else:
            n += _active(h, as_of)
    return n


async def load(app: FastAPI, truth: Truth, batch: int = 700) -> None:
    consumer = app.state.runtime.consumer
    for i in range(0, len(truth.events), batch):
        await consumer.handle_batch(truth.events[i : i + batch])


def check_figures(truth: Truth, body: dict[str, Any], as_of: date, district: str | None) -> int:
    checked = 0
    figures = {f["code"]: f for f in body["indicators"]}
    for ind in PLAN.indicators:
        got = figures[ind.code]
        if isinstance(ind.source, PassRateSource):
            exp = expected_rate(truth, ind, as_of, district)
            assert exp is not None, ind.code
            year, n, p = exp
            assert (got["value_year"], got["n"], got["passed"]) == (year, n, p), ind.code
            assert got["value"] == p / n
            assert tuple(got["wilson_95"]) == wilson_interval(p, n)
            assert got["gap"] == (None if ind.target is None else ind.target - p / n)
            checked += 1
        elif isinstance(ind.source, HonourCountSource):
            assert got["value"] == expected_count(truth, ind, as_of, district), ind.code
            checked += 1
    return checked


@pytest.mark.parametrize("as_of", [date(2015, 12, 31), date(2014, 6, 30)], ids=["plan-end", "mid-year"])
async def test_every_computed_indicator_equals_an_independent_count(
    embedded: Suite, auth: Callable[..., dict[str, str]], as_of: date
) -> None:
    app, client = embedded
    truth = generate(n_results=4000, n_honours=1500)
    await load(app, truth)
    assert app.state.runtime.consumer.duplicates_total > 0  # the duplicates were delivered, and skipped
    for district in (None, "370212"):
        params = {"as_of": as_of.isoformat()} | ({"district": district} if district else {})
        r = await client.get("/v1/attainment", params=params)
        assert r.status_code == 200, r.text
        computed = [i for i in PLAN.indicators if not i.reported]
        assert check_figures(truth, r.json(), as_of, district) == len(computed)
    # The drill-down lists exactly the rows behind a figure.
    h = auth("read")
    for code in ("agri_pass_rate", "shandong_famous_brands", "national_industry_local_standards"):
        detail = (await client.get(f"/v1/attainment/{code}", params={"as_of": as_of.isoformat()})).json()["indicator"]
        rows: list[dict[str, Any]] = []
        url: str | None = detail["links"]["rows"]
        while url:
            page = await client.get(url, headers=h)
            assert page.status_code == 200, page.text
            rows += page.json()["items"]
            cursor = page.json()["next_cursor"]
            url = f"{detail['links']['rows']}&cursor={cursor}" if cursor else None
        if detail["n"] is not None:
            assert len(rows) == detail["n"] and sum(x["conclusion"] == "pass" for x in rows) == detail["passed"]
            assert {x["result_id"] for x in rows} <= set(truth.results)
            assert len({x["result_id"] for x in rows}) == len(rows)
        else:
            assert len(rows) == detail["value"] > 0
        # The series' last point is the headline figure, and every year's value is an independent count too.
        assert detail["series"][-1]["value"] == detail["value"]
        ind = PLAN.indicator(code)
        assert ind is not None
        for point in detail["series"]:
            day = as_of if point["year"] == as_of.year else date(point["year"], 12, 31)
            if isinstance(ind.source, HonourCountSource):
                assert point["value"] == expected_count(truth, ind, day, None)
            else:
                exp = expected_rate(truth, ind, day, None)
                assert exp is not None and (point["n"], point["passed"]) == exp[1:]
        assert sum(d["value"] for d in detail["districts"]) == detail["value"] or detail["n"] is not None


def expected_district_years(truth: Truth, ind: Any, as_of: date) -> dict[tuple[str, int], tuple[Any, ...]]:
    """(district, year) -> the cell, counted from the final snapshots: (value, n, passed, wilson_95) for
    a rate, (count,) for honours; every district with a value in any year, every year to as_of's."""
    years = range(PLAN.base_year, as_of.year + 1)
    if isinstance(ind.source, HonourCountSource):
        counts = {
            (d, y): expected_count(truth, ind, as_of if y == as_of.year else date(y, 12, 31), d)
            for d in DISTRICTS
            for y in years
        }
        shown = {d for (d, _), v in counts.items() if v}
        return {(d, y): (float(v),) for (d, y), v in counts.items() if d in shown}
    n_p: dict[tuple[str, int], list[int]] = {}
    for r, day in _counted_results(truth, ind, as_of):
        cell = n_p.setdefault((r["district_code"], day.year), [0, 0])
        cell[0] += 1
        cell[1] += r["conclusion"] == "pass"
    out: dict[tuple[str, int], tuple[Any, ...]] = {}
    for d in sorted({d for d, _ in n_p}):
        for y in years:
            n, p = n_p.get((d, y), [0, 0])
            out[d, y] = (p / n if n else None, n, p, wilson_interval(p, n))
    return out


@pytest.mark.parametrize("as_of", [date(2015, 12, 31), date(2014, 6, 30)], ids=["plan-end", "mid-year"])
async def test_the_district_by_year_table_equals_an_independent_count(
    embedded: Suite, auth: Callable[..., dict[str, str]], as_of: date
) -> None:
    app, client = embedded
    truth = generate(n_results=3000, n_honours=1200, seed=5)
    await load(app, truth)
    codes = ("agri_pass_rate", "key_food_stable", "mfg_key_pass_rate_municipal", "shandong_famous_brands")
    for code in (*codes, "national_industry_local_standards"):
        ind = PLAN.indicator(code)
        assert ind is not None
        expected = expected_district_years(truth, ind, as_of)
        for district in (None, "370212"):  # the table is every district's, whichever district is asked
            params = {"as_of": as_of.isoformat()} | ({"district": district} if district else {})
            r = await client.get(f"/v1/attainment/{code}", params=params)
            assert r.status_code == 200, r.text
            table = r.json()["indicator"]["district_years"]
            got = {
                (c["district_code"], c["year"]): (
                    (c["value"], c["n"], c["passed"], None if c["wilson_95"] is None else tuple(c["wilson_95"]))
                    if isinstance(ind.source, PassRateSource)
                    else (c["value"],)
                )
                for c in table
            }
            assert len(got) == len(table) and got == expected, code
            assert [(c["district_code"], c["year"]) for c in table] == sorted(got)  # district, then year
        assert {d for d, _ in expected} >= {"370212", "370281"} and len({y for _, y in expected}) == as_of.year - 2010
    # A cell's rows link lists exactly the results behind it.
    detail = (await client.get("/v1/attainment/agri_pass_rate", params={"as_of": as_of.isoformat()})).json()
    cell = next(c for c in detail["indicator"]["district_years"] if c["n"])
    page = await client.get(cell["rows"] + "&limit=500", headers=auth("read"))
    assert page.status_code == 200, page.text
    rows = page.json()["items"]
    assert page.json()["next_cursor"] is None and len(rows) == cell["n"]
    assert sum(x["conclusion"] == "pass" for x in rows) == cell["passed"]
    assert {(x["district_code"], date.fromisoformat(x["sampling_date"]).year) for x in rows} == {
        (cell["district_code"], cell["year"])
    }


async def test_rebuild_from_the_log_gives_the_same_answers(
    embedded: Suite, auth: Callable[..., dict[str, str]]
) -> None:
    app, client = embedded
    truth = generate(n_results=1500, n_honours=600, seed=7)
    await load(app, truth)
    h = auth("read")
    some = sorted({r["uscc"] for r in truth.results.values()})[:5]

    async def answers() -> list[Any]:
        out = []
        for params in ({}, {"as_of": "2014-06-30"}, {"district": "370202"}):
            body = (await client.get("/v1/attainment", params=params)).json()
            out.append(body["indicators"])
        out.append((await client.get("/v1/attainment/agri_pass_rate")).json()["indicator"])
        for u in some:
            profile = (await client.get(f"/v1/credit/{u}", headers=h, params={"as_of": "2015-06-01"})).json()
            profile.pop("freshness")
            out.append(profile)
        out.append(
            (await client.get("/v1/procurement/priority-list", params={"as_of": "2014-01-01"}, headers=h)).json()
        )
        out.append((await client.get("/v1/pass-rates")).json())
        return out

    before = await answers()
    assert before[0][3]["n"] > 0  # the dataset reached the read models
    replayed = await rebuild_from_feed(app.state.runtime.db)
    assert replayed == len({e.id for e in truth.events})
    assert await answers() == before
