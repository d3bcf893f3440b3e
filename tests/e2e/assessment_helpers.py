"""A generated five-year city for the district assessment, and an independent computation of its
scores (docs/assessment.md, written again here from the generated rows, not from the gateway's code).

The dataset has districts with full data, a district that ceased to exist after 2012 (四方区), a
district with too few results to judge (莱西市), districts with nothing at all, district-specific
targets, district reports of a reported indicator, bonus honours and a significant fall of a pass rate.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from shared.regions import load_regions
from tests.e2e.awards_helpers import grant_body, make_uscc

YEARS = tuple(range(2011, 2016))
PLAN_START, PLAN_END = 2011, 2015
#: The results a rate indicator of the scheme counts (all municipal-level results).
RATE_FILTERS: dict[str, dict[str, Any]] = {
    "mfg_key_pass_rate_municipal": {"sector": "manufacturing", "level": "municipal", "key_product": True},
    "agri_pass_rate": {"sector": "agricultural", "level": "municipal", "key_product": False},
    "key_food_stable": {"sector": "food", "level": "municipal", "key_product": False},
    "construction_pass_rate": {"sector": "engineering", "level": "municipal", "key_product": False},
}
FULL = ("370202", "370203", "370211", "370212", "370213", "370283")
GONE = "370205"  # 四方区: a district until 2012-12-31
SPARSE = "370285"  # 莱西市: a handful of results a year, no reports
#: (indicator, district, year) whose pass rate collapses: a significant fall from the year before.
COLLAPSE = ("key_food_stable", "370213", 2015)
REPORTED = "management_system_certification_rate"
COUNT_TYPES = {"shandong_famous_brands": "B5", "standardization_good_behaviour_enterprises": "S6"}
BONUS_TYPES = {"mayor_quality_awards": "Q5", "governor_quality_awards": "Q4"}
Z = 1.959963984540054


@dataclass
class City:
    results: list[dict[str, Any]] = field(default_factory=list)
    # (indicator, district, year) -> (n, passed)
    rates: dict[tuple[str, str, int], tuple[int, int]] = field(default_factory=dict)
    grants: list[dict[str, Any]] = field(default_factory=list)
    # (type code, district, granted_on)
    honours: list[tuple[str, str, date]] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)
    # (district, year) -> value of the reported indicator
    reported: dict[tuple[str, int], float] = field(default_factory=dict)
    city_reports: dict[int, float] = field(default_factory=dict)


def generate(seed: int = 16) -> City:
    rng = random.Random(seed)
    city = City()
    serial = 0
    for district in (*FULL, GONE, SPARSE):
        base = {code: rng.uniform(0.84, 0.99) for code in RATE_FILTERS}
        for year in YEARS:
            if district == GONE and year > 2012:
                continue
            for code, flt in RATE_FILTERS.items():
                n = rng.randint(6, 9) if district == SPARSE else rng.randint(30, 70)
                p = min(1.0, max(0.5, base[code] + rng.uniform(-0.05, 0.05)))
                if (code, district, year) == COLLAPSE:
                    n, p = 70, 0.55
                elif (code, district) == COLLAPSE[:2] and year == COLLAPSE[2] - 1:
                    n, p = 70, 0.99
                passed = round(n * p)
                city.rates[code, district, year] = (n, passed)
                for i in range(n):
                    serial += 1
                    month = 1 + i % 11
                    city.results.append(
                        _result(serial, district, year, month, flt, "pass" if i < passed else "fail", code)
                    )
        if district in FULL:
            for year in YEARS:
                value = round(rng.uniform(0.35, 0.8), 4)
                city.reported[district, year] = value
                city.reports.append(_report(year, value, district))
    for year in YEARS:
        value = round(rng.uniform(0.5, 0.7), 4)
        city.city_reports[year] = value
        city.reports.append(_report(year, value, None))
    # Honours from 2013 on: Shandong brands and good-behaviour enterprises are valid three years, so
    # every one granted is still active at each later year's end up to 2015.
    g = 0
    for district in (*FULL, SPARSE):
        for type_code in (*COUNT_TYPES.values(), *BONUS_TYPES.values()):
            top = {"B5": 12, "S6": 4, "Q5": 2, "Q4": 1}[type_code]
            for _ in range(rng.randint(0, top)):
                g += 1
                granted = date(rng.choice((2013, 2014, 2015)), rng.randint(1, 11), rng.randint(1, 28))
                uscc = make_uscc(90000 + g, region=district)
                city.grants.append(
                    grant_body(type_code, uscc, cert=f"AS-{type_code}-{g}", granted_on=granted.isoformat())
                )
                city.honours.append((type_code, district, granted))
    return city


def _result(
    serial: int, district: str, year: int, month: int, flt: dict[str, Any], conclusion: str, code: str
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "report_no": f"AS-{serial:06d}",
        **flt,
        "product_category": {"manufacturing": "电器", "agricultural": "蔬菜", "food": "饮料", "engineering": "建材"}[
            flt["sector"]
        ],
        "product_name": f"{code} 样品",
        "brand": "测试",
        "model_spec": "1kg",
        "batch_no": f"B{serial}",
        "production_date": f"{year}-{month:02d}-01",
        "uscc": make_uscc(10000 + serial % 500, region=district),
        "enterprise_name": f"青岛测试企业{serial % 500}有限公司",
        "district_code": district,
        "sampled_unit": "某市场",
        "sampling_date": f"{year}-{month:02d}-10",
        "report_date": f"{year}-{month:02d}-25",
        "conclusion": conclusion,
        "nonconforming_items": [],
    }
    if conclusion == "fail":
        body["nonconforming_items"] = [
            {"item": "铅", "requirement": "≤0.2 mg/kg", "measured": "0.5", "unit": "mg/kg", "standard": "GB 2762"}
        ]
    return body


def _report(year: int, value: float, district: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "plan": "qingdao-2012",
        "indicator": REPORTED,
        "period_start": f"{year}-01-01",
        "period_end": f"{year}-12-31",
        "value": value,
        "reporting_system": "青岛市统计局规上企业管理体系认证统计",
        "evidence_ref": f"青统〔{year + 1}〕{7 if district is None else int(district) % 100}号",
    }
    if district is not None:
        body["district_code"] = district
    return body


# ------------------------------------------------------------------------------------------ the method


def wilson(passed: int, n: int) -> tuple[float, float]:
    p = passed / n
    denom = 1 + Z * Z / n
    centre = (p + Z * Z / (2 * n)) / denom
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def districts_of(year: int) -> list[str]:
    first, last = date(year, 1, 1), date(year, 12, 31)
    return sorted(
        r.code
        for r in load_regions().regions
        if r.is_district
        and (r.valid_from is None or r.valid_from <= last)
        and (r.valid_to is None or r.valid_to >= first)
    )


@dataclass
class Line:
    status: str
    value: float | None = None
    target: float | None = None
    points: float | None = None
    penalty: float = 0.0
    n: int | None = None


@dataclass
class Score:
    ranked: bool
    score: float | None
    lines: dict[str, Line]
    bonus: float
    penalties: float
    judged_weight: float
    rank: int | None = None
    change: float | None = None


def _value(city: City, code: str, district: str, year: int) -> tuple[str, float | None, int | None]:
    """(status before the coverage rule, value, n) of one indicator in one district and year."""
    if code in RATE_FILTERS:
        n, passed = city.rates.get((code, district, year), (0, 0))
        return ("rate", passed / n if n else None, n)
    if code in COUNT_TYPES:
        t = COUNT_TYPES[code]
        # active at the year's end: granted by then (all valid three years, none revoked)
        return ("count", float(sum(1 for c, d, g in city.honours if c == t and d == district and g.year <= year)), None)
    v = city.reported.get((district, year))
    return ("reported", v, None)


def _granted_in(city: City, type_code: str, district: str, year: int) -> int:
    return sum(1 for c, d, g in city.honours if c == type_code and d == district and g.year == year)


def score_year(city: City, plan: Mapping[str, Any], scheme: Mapping[str, Any], year: int) -> dict[str, Score]:
    targets = {i["code"]: i["target"] for i in plan["indicators"]}
    total = sum(i["weight"] for i in scheme["indicators"])
    out: dict[str, Score] = {}
    for d in districts_of(year):
        lines: dict[str, Line] = {}
        judged = points = penalties = 0.0
        for ind in scheme["indicators"]:
            code, w = ind["code"], ind["weight"]
            kind, v, n = _value(city, code, d, year)
            target = ind.get("district_targets", {}).get(d, ind.get("target"))
            if target is None:
                target = targets[code]
            if kind == "count":
                target = target * (year - PLAN_START + 1) / (PLAN_END - PLAN_START + 1)
            if v is None or (kind == "rate" and n is not None and n < scheme["min_results"]):
                status = "no_data" if v is None else "too_few_results"
                lines[code] = Line(status, v, target, None, 0.0, n)
                continue
            floor = ind.get("floor", 0.0)
            a = min(max((v - floor) / (target - floor), 0.0), scheme["cap"])
            judged += w
            points += w * a
            line = Line("scored", v, target, w * a, 0.0, n)
            # deterioration against the year before, when judged then too
            if year > PLAN_START:
                kind0, v0, n0 = _value(city, code, d, year - 1)
                if v0 is not None and not (kind0 == "rate" and (n0 or 0) < scheme["min_results"]):
                    if kind == "rate":
                        n1, p1 = city.rates[code, d, year]
                        nb, pb = city.rates[code, d, year - 1]
                        fell = wilson(p1, n1)[1] < wilson(pb, nb)[0]
                    else:
                        fell = v < v0
                    if fell:
                        line.penalty = scheme["deterioration_penalty"]
                        penalties += line.penalty
            lines[code] = line
        bonus = 0.0
        for b in scheme.get("bonuses", []):
            granted = _granted_in(city, BONUS_TYPES[b["code"]], d, year)
            bonus += min(granted * b["points_each"], b["max_points"])
        ranked = judged > 0 and judged >= scheme["min_judged_share"] * total
        score = scheme["full_marks"] * points / judged - penalties + bonus if ranked else None
        out[d] = Score(ranked, score, lines, bonus, penalties, judged)
    scores = [round(s.score, 6) for s in out.values() if s.score is not None]
    for s in out.values():
        if s.score is not None:
            s.rank = 1 + sum(1 for v in scores if v > round(s.score, 6))
    return out


def score_all(city: City, plan: Mapping[str, Any], scheme: Mapping[str, Any]) -> dict[int, dict[str, Score]]:
    years = {y: score_year(city, plan, scheme, y) for y in YEARS}
    for y in YEARS[1:]:
        for d, s in years[y].items():
            before = years[y - 1].get(d)
            if s.score is not None and before is not None and before.score is not None:
                s.change = s.score - before.score
    return years


def totals(city: City) -> dict[str, Any]:
    """What the gateway must have applied before the assessment can be compared."""
    by_type: dict[str, int] = defaultdict(int)
    for t, _, _ in city.honours:
        by_type[t] += 1
    return {"results": len(city.results), "honours": dict(by_type)}
