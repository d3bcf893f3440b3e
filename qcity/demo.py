"""`qcity demo`: a realistic multi-year dataset for the seed's plan, loaded through the real HTTP APIs.

Two halves, kept apart on purpose:
- `generate()` is pure: a seed in, plain request bodies out (no clock, no I/O), so the same seed
  always gives the same city and a unit test can check its shape without a server.
- `Loader` sends those bodies to a running suite through its public API (the gateway, falling back
  to the embedded `/services/<name>` mounts for routes the gateway does not forward), exactly as
  agencies, credit officers, brand offices and other government systems would. It never stops on
  an API problem: it counts it, keeps the first few to print, and goes on.

Agencies and districts are not created through an API: an agency is the `agency` claim of its
token, and districts are the services' region data; the generator uses both as they are.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import hashlib
import io
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import TypeAdapter
from stdnum.cn import uscc as _uscc

# ----------------------------------------------------------------------------------------- the city


@dataclass(frozen=True)
class District:
    code: str  # the division code (GB/T 2260)
    name: str
    #: Added to the pass probability: a district's firms are a little better or worse.
    pass_offset: float


@dataclass(frozen=True)
class Product:
    category: str
    name: str
    #: The test item a non-conforming sample fails, and the standard that sets its limit.
    item: str
    standard: str


@dataclass(frozen=True)
class PassRate:
    """The pass probability in the base year, and its yearly change."""

    base: float
    yearly: float


@dataclass(frozen=True)
class Sector:
    weight: int  # how often a sample is of this sector
    pass_rate: PassRate
    trade_words: tuple[str, ...]  # what an enterprise's name says it does
    products: tuple[Product, ...]
    #: Key products (重点产品, manufacturing only) pass at their own rate.
    key_product_pass_rate: PassRate | None = None


@dataclass(frozen=True)
class Level:
    weight: int  # how often a sample is taken at this level
    pass_offset: float


@dataclass(frozen=True)
class Agency:
    code: str  # the token's agency claim
    name: str


@dataclass(frozen=True)
class HonourType:
    per_year: int  # granted per year (before `honour_scale`), tuned near the seed's targets
    holder_kind: str  # the first the catalog allows that the generator can name
    subject_kind: str | None


@dataclass(frozen=True)
class ReportedIndicator:
    """One value a year from the system that measures it (ratios for rates)."""

    system: str
    evidence: str  # the evidence reference, `{y}` the year
    values: tuple[int | float, ...]


@dataclass(frozen=True)
class City:
    """The city's tables (data/demo.json). The generator draws from them in their order."""

    districts: tuple[District, ...]
    sectors: dict[str, Sector]
    levels: dict[str, Level]
    agencies: tuple[Agency, ...]
    name_words: tuple[str, ...]  # enterprise names: 青岛 + a word + a trade word + a suffix
    suffixes: tuple[str, ...]
    model_specs: tuple[str, ...]
    honour_types: dict[str, HonourType]
    gi_products: tuple[str, ...]  # geographical-indication products (B2, B4)
    industries: tuple[str, ...]
    services: tuple[str, ...]
    blacklist_reasons: tuple[str, ...]
    blacklist_fates: tuple[str, ...]  # cycled through: most listings stay
    reported: dict[str, ReportedIndicator]


CITY = TypeAdapter(City).validate_json((Path(__file__).parent / "data" / "demo.json").read_bytes())
DISTRICTS, AGENCIES, REPORTED = CITY.districts, CITY.agencies, CITY.reported
DISTRICT_BY_CODE = {d.code: d for d in DISTRICTS}
SECTORS, SECTOR_WEIGHTS = tuple(CITY.sectors), tuple(s.weight for s in CITY.sectors.values())
LEVELS, LEVEL_WEIGHTS = tuple(CITY.levels), tuple(v.weight for v in CITY.levels.values())


def agency_for(level: str, sector: str) -> str:
    """Which agency inspects what: the code of the agency that samples `sector` at `level`."""
    if level == "national":
        return "CN-NQS"
    if level == "provincial":
        return "SD-ZJY"
    if level == "district":
        return "QD-QXJ"
    return {"food": "QD-SPJ", "agricultural": "QD-NCP", "engineering": "QD-JGZ"}.get(sector, "QD-ZJY")


def _org_code(body8: str) -> str:
    """GB 11714 organisation code: 8 characters and a check character (the USCC's characters 9–17)."""
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    c = 11 - sum(alphabet.index(ch) * w for ch, w in zip(body8, weights, strict=True)) % 11
    return body8 + ("X" if c == 10 else "0" if c == 11 else str(c))


def make_uscc(authority: str, district: str, serial: int) -> str:
    """A valid USCC: registration authority and type, the district, an organisation code, the check digit."""
    body = authority + district + _org_code(f"{serial:08d}")
    return body + str(_uscc.calc_check_digit(body))


@dataclass(frozen=True)
class Enterprise:
    uscc: str
    name: str
    district: str
    sector: str


@dataclass(frozen=True)
class ResultChange:
    """A change to one generated result, addressed as its agency knows it: a correction (PATCH), a
    retraction (`:retract`) or a re-inspection (`/reinspection`) — the request's body."""

    agency: str
    report_no: str
    body: dict[str, Any]


@dataclass(frozen=True)
class BlacklistCase:
    """A proposal and what becomes of it: listed (stays), rejected, removed as wrongful, or repaired."""

    proposal: dict[str, Any]
    fate: str
    decision_no: str
    #: The case as the archive recorded it (POST /v1/blacklist:import), with its own dates; None for a
    #: rejected proposal (the archive keeps decisions to list, which is what the import records).
    archive: dict[str, Any] | None = None


@dataclass(frozen=True)
class Outbreak:
    """A quarter in which one product category's fail rate rose in one district, found by a special
    sampling campaign (专项抽检): what the early-warning rules should raise (docs/warnings.md)."""

    category: str
    district: str
    quarter_start: date
    report_nos: tuple[str, ...]
    fails: int


@dataclass
class Lifecycle:
    """What the agencies change in their results after sending them, each change at most once a result."""

    corrections: list[ResultChange] = field(default_factory=list)  # PATCH /v1/results/{id} bodies
    retractions: list[ResultChange] = field(default_factory=list)  # POST /v1/results/{id}:retract bodies
    reinspections: list[ResultChange] = field(default_factory=list)  # POST /v1/results/{id}/reinspection bodies


@dataclass
class Honours:
    """The honours granted, and the few revoked afterwards."""

    grants: list[dict[str, Any]] = field(default_factory=list)  # POST /v1/honours bodies
    revocations: list[tuple[str, str, str]] = field(default_factory=list)  # (type_code, certificate_no, reason)


@dataclass
class DemoData:
    seed: int
    years: tuple[int, ...]
    enterprises: list[Enterprise]
    results: dict[str, list[dict[str, Any]]]  # agency code -> result bodies (POST /v1/results:batch)
    lifecycle: Lifecycle
    honours: Honours
    blacklist: list[BlacklistCase]
    reports: list[dict[str, Any]]  # POST /v1/indicator-reports bodies
    outbreak: Outbreak | None = None  # its results are among `results`

    @property
    def result_count(self) -> int:
        return sum(len(v) for v in self.results.values())


# --------------------------------------------------------------------------------------- generation


def _enterprises(rng: random.Random, count: int) -> list[Enterprise]:
    out: list[Enterprise] = []
    names: set[str] = set()
    for i in range(count):
        sector = rng.choices(SECTORS, SECTOR_WEIGHTS)[0]
        district = rng.choice(DISTRICTS)
        trades = CITY.sectors[sector].trade_words
        while True:
            name = f"青岛{rng.choice(CITY.name_words)}{rng.choice(trades)}{rng.choice(CITY.suffixes)}"
            if name in names:
                name = f"青岛{district.name}{rng.choice(CITY.name_words)}{rng.choice(trades)}有限公司"
            if name not in names:
                break
        names.add(name)
        uscc = make_uscc("91", district.code, 10_000_000 + 7919 * i)
        out.append(Enterprise(uscc, name, district.code, sector))
    return out


def _pass_probability(sector: str, key: bool, level: str, district: str, year_index: int) -> float:
    table = CITY.sectors[sector]
    rate = table.key_product_pass_rate if key and table.key_product_pass_rate else table.pass_rate
    level_offset, district_offset = CITY.levels[level].pass_offset, DISTRICT_BY_CODE[district].pass_offset
    return min(0.998, rate.base + rate.yearly * year_index + level_offset + district_offset)


def _results(
    rng: random.Random, firms: list[Enterprise], years: Sequence[int], per_year: int
) -> dict[str, list[dict[str, Any]]]:
    by_sector: dict[str, list[Enterprise]] = {s: [f for f in firms if f.sector == s] for s in SECTORS}
    out: dict[str, list[dict[str, Any]]] = {a.code: [] for a in AGENCIES}
    serial: Counter[tuple[str, int]] = Counter()
    for yi, year in enumerate(years):
        for _ in range(per_year):
            sector = rng.choices(SECTORS, SECTOR_WEIGHTS)[0]
            firm = rng.choice(by_sector[sector] or firms)
            level = rng.choices(LEVELS, LEVEL_WEIGHTS)[0]
            if sector == "engineering":
                level = rng.choice(("municipal", "district"))  # works are supervised locally
            key = sector == "manufacturing" and rng.random() < 0.55
            product = rng.choice(CITY.sectors[sector].products)
            sampled = date(year, 1, 1) + timedelta(days=rng.randrange(0, 334))
            produced = sampled - timedelta(days=rng.randrange(3, 90))
            reported = sampled + timedelta(days=rng.randrange(7, 30))
            passed = rng.random() < _pass_probability(sector, key, level, firm.district, yi)
            agency = agency_for(level, sector)
            serial[(agency, year)] += 1
            body: dict[str, Any] = {
                "report_no": f"{agency}-{year}-{serial[(agency, year)]:06d}",
                "level": level,
                "sector": sector,
                "key_product": key,
                "product_category": product.category,
                "product_name": product.name,
                "brand": firm.name[2:4],
                "model_spec": rng.choice(CITY.model_specs),
                "batch_no": f"{produced:%Y%m%d}{rng.choice('ABC')}",
                "production_date": produced.isoformat(),
                "uscc": firm.uscc,
                "enterprise_name": firm.name,
                "district_code": firm.district,
                "sampled_unit": f"{firm.name[:-4]}成品库" if sector != "agricultural" else "城阳蔬菜批发市场",
                "sampling_date": sampled.isoformat(),
                "report_date": reported.isoformat(),
                "conclusion": "pass" if passed else "fail",
                "nonconforming_items": []
                if passed
                else [
                    {
                        "item": product.item,
                        "requirement": "符合标准要求",
                        "measured": "不符合",
                        "unit": None,
                        "standard": product.standard,
                    }
                ],
            }
            out[agency].append(body)
    return {k: v for k, v in out.items() if v}


#: The outbreak's campaign: results sampled in its quarter, and how many of them fail.
OUTBREAK_RESULTS, OUTBREAK_FAILS = 100, 45
#: The outbreak's product and item: procymidone (腐霉利) residue on spring onions, a recurring finding of
#: vegetable sampling.
OUTBREAK_PRODUCT = next(p for p in CITY.sectors["agricultural"].products if p.name == "大葱")


def _outbreak(
    rng: random.Random, firms: list[Enterprise], results: dict[str, list[dict[str, Any]]], years: Sequence[int]
) -> Outbreak | None:
    """A third quarter (of the last year but one, after at least a year of baseline) in which the
    district with most growers had 45 of 100 spring-onion samples of a campaign (专项抽检, after
    complaints) fail, against a few per cent usually: appended to the municipal agricultural agency's
    results, moved to the end of the load so that every baseline result is in before the campaign's."""
    if len(years) < 3:
        return None
    growers: dict[str, list[Enterprise]] = {}
    for f in firms:
        if f.sector == "agricultural":
            growers.setdefault(f.district, []).append(f)
    if not growers:
        return None
    district = max(growers, key=lambda d: (len(growers[d]), d))
    dname = DISTRICT_BY_CODE[district].name
    year = years[-2]
    start = date(year, 7, 1)
    product = OUTBREAK_PRODUCT
    agency = agency_for("municipal", "agricultural")
    failing = set(rng.sample(range(OUTBREAK_RESULTS), OUTBREAK_FAILS))
    rows: list[dict[str, Any]] = []
    for i in range(OUTBREAK_RESULTS):
        firm = growers[district][i % len(growers[district])]
        sampled = start + timedelta(days=rng.randrange(0, 80))
        failed = i in failing
        rows.append(
            {
                "report_no": f"{agency}-{year}-ZX{i + 1:04d}",  # 专项 (campaign) numbers
                "level": "municipal",
                "sector": "agricultural",
                "key_product": False,
                "product_category": product.category,
                "product_name": product.name,
                "brand": firm.name[2:4],
                "model_spec": "散装",
                "batch_no": f"{sampled - timedelta(days=2):%Y%m%d}A",
                "production_date": (sampled - timedelta(days=2)).isoformat(),
                "uscc": firm.uscc,
                "enterprise_name": firm.name,
                "district_code": district,
                "sampled_unit": f"{dname}蔬菜批发市场",
                "sampling_date": sampled.isoformat(),
                "report_date": (sampled + timedelta(days=rng.randrange(7, 20))).isoformat(),
                "conclusion": "fail" if failed else "pass",
                "nonconforming_items": [
                    {
                        "item": product.item,
                        "requirement": "≤0.2 mg/kg",
                        "measured": f"{rng.uniform(0.3, 1.8):.2f}",
                        "unit": "mg/kg",
                        "standard": product.standard,
                    }
                ]
                if failed
                else [],
            }
        )
    results[agency] = results.pop(agency, []) + rows
    return Outbreak(product.category, district, start, tuple(r["report_no"] for r in rows), OUTBREAK_FAILS)


def _lifecycle(rng: random.Random, results: dict[str, list[dict[str, Any]]]) -> Lifecycle:
    out = Lifecycle()
    for agency, rows in results.items():
        for r in rows:
            change = functools.partial(ResultChange, agency, r["report_no"])
            roll = rng.random()
            if roll < 0.01:
                out.retractions.append(change({"reason": "样品信息重复录入，撤回本报告"}))
            elif roll < 0.03:
                fix = {"product_name": r["product_name"] + "(更正)"}
                out.corrections.append(change({"reason": "产品名称录入有误，按原始记录更正", "changes": fix}))
            elif r["conclusion"] == "fail" and roll < 0.06:
                fix = {"conclusion": "pass", "nonconforming_items": []}
                out.corrections.append(change({"reason": "复核原始记录，检验结论判定有误", "changes": fix}))
            elif r["conclusion"] == "fail" and roll < 0.30:
                reported = date.fromisoformat(r["report_date"])
                requested = reported + timedelta(days=rng.randrange(2, 14))
                out.reinspections.append(
                    change(
                        {
                            "outcome": "overturned" if rng.random() < 0.4 else "upheld",
                            "reinspection_report_no": "FJ-" + r["report_no"],
                            "requested_on": requested.isoformat(),
                            "decided_on": (requested + timedelta(days=rng.randrange(5, 20))).isoformat(),
                        }
                    )
                )
    return out


def _subject(rng: random.Random, code: str, i: int, year: int, firm: Enterprise | None) -> dict[str, Any] | None:
    kind = CITY.honour_types[code].subject_kind
    brand = firm.name[2:4] if firm else "琴岛"
    if kind is None:
        return None
    if kind == "product":
        if code in ("B2", "B4"):
            return {"kind": "product", "name": CITY.gi_products[i % len(CITY.gi_products)]}
        sector = firm.sector if firm else "agricultural"
        return {"kind": "product", "name": f"{brand}牌{rng.choice(CITY.sectors[sector].products).name}"}
    if kind == "trademark":
        return {"kind": "trademark", "name": brand, "number": f"{rng.randrange(1_000_000, 9_999_999)}"}
    if kind == "service":
        return {"kind": "service", "name": rng.choice(CITY.services)}
    if kind == "industry":
        return {"kind": "industry", "name": CITY.industries[i % len(CITY.industries)]}
    if kind == "project":
        site = rng.choice(("国际会展中心", "地铁", "海湾大桥", "新机场", "体育中心"))
        return {"kind": "project", "name": f"青岛{site}{rng.choice(('一期', '二期', '三期', 'A区', 'B区'))}工程"}
    if kind == "committee":
        return {
            "kind": "committee",
            "number": f"SAC/TC {400 + i}/SC {1 + i % 9}",
            "title": "全国家用电器标准化技术委员会分委会",
        }
    number = {
        "S1": f"ISO {20000 + 37 * i}:{year}",
        "S2": f"GB/T {30000 + 13 * i}-{year}",
        "S3": f"{rng.choice(('QB/T', 'HG/T', 'JB/T', 'SN/T'))} {4000 + 11 * i}-{year}",
        "S4": f"DB37/T {2000 + 7 * i}-{year}",
    }[code]
    return {
        "kind": "standard",
        "number": number,
        "title": f"{brand}相关产品技术规范({i})",
        "role": "lead" if rng.random() < 0.3 else "participant",
    }


def _honours(rng: random.Random, firms: list[Enterprise], years: Sequence[int], scale: float) -> Honours:
    out = Honours()
    orgs = [
        Enterprise(make_uscc("51", d.code, 20_000_000 + 131 * i), f"青岛市{d.name}质量协会", d.code, "manufacturing")
        for i, d in enumerate(DISTRICTS)
    ]
    for code, honour_type in CITY.honour_types.items():
        n = 0
        for year in years:
            count = max(1 if code != "B1" or year % 2 else 0, round(honour_type.per_year * scale))
            for _ in range(count):
                n += 1
                kind = honour_type.holder_kind
                firm: Enterprise | None = None
                if kind == "region":
                    district = DISTRICTS[(n - 1) % len(DISTRICTS)]
                    holder_id, holder_name = district.code, f"青岛市{district.name}区(市)"
                elif kind == "person":
                    holder_id, holder_name = f"QD-EXP-{year}-{n:04d}", f"评审专家{n:04d}号"
                elif kind == "organisation":
                    firm = orgs[n % len(orgs)]
                    holder_id, holder_name = firm.uscc, firm.name
                else:
                    pool = [f for f in firms if f.sector == "engineering"] if code.startswith("E") else firms
                    firm = rng.choice(pool or firms)
                    holder_id, holder_name = firm.uscc, firm.name
                granted = date(year, 1, 1) + timedelta(days=rng.randrange(30, 350))
                body: dict[str, Any] = {
                    "type_code": code,
                    "holder_kind": kind,
                    "holder_id": holder_id,
                    "holder_name": holder_name,
                    "granted_on": granted.isoformat(),
                    "certificate_no": f"{code}-{year}-{n:04d}",
                }
                subject = _subject(rng, code, n, year, firm)
                if subject is not None:
                    body["subject"] = subject
                out.grants.append(body)
                if rng.random() < 0.01:
                    out.revocations.append((code, body["certificate_no"], "复查发现申报材料不实，撤销称号"))
    return out


def _blacklist(
    rng: random.Random, results: dict[str, list[dict[str, Any]]], count: int, years: Sequence[int]
) -> list[BlacklistCase]:
    failing = sorted(
        {
            (r["uscc"], r["enterprise_name"], r["sector"])
            for rows in results.values()
            for r in rows
            if r["conclusion"] == "fail"
        }
    )
    rng.shuffle(failing)
    # One case per enterprise: an archive's listings of one enterprise do not overlap.
    failing = list({code: (code, name, sector) for code, name, sector in reversed(failing)}.values())[::-1]
    cases: list[BlacklistCase] = []
    for i, (code, name, sector) in enumerate(failing[:count]):
        # Spread over the archive's later years, the last ones most (the listings still published then).
        year = years[-1 - (i % min(3, len(years)))]
        reason = "food_safety_violation" if sector == "food" else rng.choice(CITY.blacklist_reasons)
        fate = CITY.blacklist_fates[i % len(CITY.blacklist_fates)]
        decided = date(year, 1 + rng.randrange(11), 1 + rng.randrange(28))
        cases.append(
            BlacklistCase(
                proposal={
                    "uscc": code,
                    "enterprise_name": name,
                    "reason_category": reason,
                    "facts": f"{year}年监督抽查发现该企业产品质量不合格，经责令整改后复查仍不合格。",
                    "legal_basis": "《产品质量法》第四十九条、第五十条；青政发〔2012〕32号 三(二)3",
                    "deciding_authority": "青岛市质量技术监督局",
                    "decision_no": f"青质监罚〔{year}〕{100 + i}号",
                    "appeal_route": "自收到决定书之日起六十日内向青岛市人民政府申请行政复议",
                    "appeal_deadline": date(year, 12, 31).isoformat(),
                },
                fate=fate,
                decision_no=f"青质监信〔{year}〕{200 + i}号",
            )
        )
        case = cases[-1]
        if fate != "rejected":
            listed = decided + timedelta(days=7)
            archived = {
                **case.proposal,
                "appeal_deadline": (decided + timedelta(days=60)).isoformat(),
                "proposed_by": "王科员",
                "proposed_on": (decided - timedelta(days=14)).isoformat(),
                "reviewed_by": "刘处长",
                "decided_on": decided.isoformat(),
                "listed_from": listed.isoformat(),
            }
            if fate in ("wrongful", "repaired"):
                # Wrongful: set aside on appeal within months; repaired: after the longest waiting period.
                removed = listed + timedelta(days=90 + rng.randrange(60) if fate == "wrongful" else 400)
                archived |= {
                    "removed_on": removed.isoformat(),
                    "removal_reason": fate,
                    "removal_decision_no": case.decision_no,
                }
            cases[-1] = BlacklistCase(case.proposal, fate, case.decision_no, archived)
    return cases


def _reports(years: Sequence[int]) -> list[dict[str, Any]]:
    out = []
    for code, indicator in REPORTED.items():
        for year, value in zip(years, indicator.values, strict=False):
            out.append(
                {
                    "plan": "qingdao-2012",
                    "indicator": code,
                    "period_start": f"{year}-01-01",
                    "period_end": f"{year}-12-31",
                    "value": value,
                    "reporting_system": indicator.system,
                    "evidence_ref": indicator.evidence.format(y=year),
                }
            )
    return out


def generate(
    seed: int = 2012,
    *,
    years: Sequence[int] = (2011, 2012, 2013, 2014, 2015),
    results_per_year: int = 1500,
    enterprises: int = 400,
    honour_scale: float = 1.0,
    blacklist_cases: int = 21,
) -> DemoData:
    """The whole dataset from one seed: the same arguments always give the same bodies."""
    rng = random.Random(seed)
    firms = _enterprises(rng, enterprises)
    results = _results(rng, firms, years, results_per_year)
    lifecycle = _lifecycle(rng, results)
    honours = _honours(rng, firms, years, honour_scale)
    blacklist = _blacklist(rng, results, blacklist_cases, years)
    # Last, with its own generator: the rest of the city is the same with or without it.
    outbreak = _outbreak(random.Random(f"{seed}-outbreak"), firms, results, years)
    return DemoData(seed, tuple(years), firms, results, lifecycle, honours, blacklist, _reports(years), outbreak)


# ------------------------------------------------------------------------------------------ loading

HONOUR_CSV_COLUMNS = (
    "type_code",
    "holder_kind",
    "holder_id",
    "holder_name",
    "granted_on",
    "certificate_no",
    "subject_kind",
    "subject_name",
    "subject_number",
    "subject_title",
    "subject_role",
)


def honours_csv(bodies: Sequence[dict[str, Any]]) -> bytes:
    """Grant bodies as the awards registry's CSV (POST /v1/honours:import)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HONOUR_CSV_COLUMNS)
    for b in bodies:
        subject = b.get("subject") or {}
        writer.writerow(
            [b.get(c) or "" for c in HONOUR_CSV_COLUMNS[:6]]
            + [subject.get(c.removeprefix("subject_")) or "" for c in HONOUR_CSV_COLUMNS[6:]]
        )
    return out.getvalue().encode("utf-8")


Mint = Callable[[str, list[str], str | None], str]
#: The name the demo's blacklist archive is imported under (kept in the history and the audit).
ARCHIVE_FILE = "qcity-demo-blacklist-archive.json"
REMOVAL = ("removed_on", "removal_reason", "removal_decision_no", "removal_note")


def _in_future(problem: dict[str, str]) -> bool:
    """An archive row's problem that only says its removal lies after the suite's today."""
    return problem["field"] == "removed_on" and problem["reason"].endswith("is in the future")


Progress = Callable[[str, int, int], None]


@dataclass
class LoadReport:
    counts: Counter[str] = field(default_factory=Counter)
    problems: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def problem(self, step: str, detail: str) -> None:
        self.problems[step] += 1
        if len(self.examples) < 20:  # enough to diagnose, not a wall of text
            self.examples.append(f"{step}: {detail}")

    @property
    def problem_total(self) -> int:
        return sum(self.problems.values())


def _detail(resp: httpx.Response) -> str:
    try:
        body = resp.json()
        return f"{resp.status_code} {body.get('type', '')} {body.get('detail', '')}".strip()
    except ValueError:
        return f"{resp.status_code} {resp.text[:200]}"


#: (honour type, certificate number) -> (honour id, its ETag when this run made it)
_HonourIds = dict[tuple[str, str], tuple[str, str]]


def _no_progress(step: str, done: int, total: int) -> None:
    pass


@dataclass(eq=False)
class Loader:
    """Sends a DemoData to a running suite through its HTTP APIs, step by step, counting problems."""

    client: httpx.AsyncClient
    mint: Mint
    _: KW_ONLY
    progress: Progress = _no_progress
    batch_rows: int = 2000
    concurrency: int = 8
    retries: int = 3
    report: LoadReport = field(default_factory=LoadReport, init=False)
    #: Where each service's routes are: "" through the gateway, else its embedded mount (`discover`).
    prefix: dict[str, str] = field(default_factory=lambda: {"credit": "", "awards": ""}, init=False)
    #: (agency, report_no) -> (result id, version) for the rows this run created (re-runs skip the lifecycle)
    created: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict, init=False)
    _tokens: dict[tuple[str, str | None], str] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.sem = asyncio.Semaphore(self.concurrency)

    def _auth(self, subject: str, scopes: list[str], agency: str | None = None) -> dict[str, str]:
        key = (subject, agency)
        if key not in self._tokens:
            self._tokens[key] = self.mint(subject, scopes, agency)
        return {"Authorization": f"Bearer {self._tokens[key]}"}

    async def _send(self, step: str, method: str, url: str, **kw: Any) -> httpx.Response | None:
        """One request; a transport error or a 5xx is retried (every write here carries an
        Idempotency-Key or an If-Match, so a retry cannot apply a change twice)."""
        resp: httpx.Response | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(0.5 * 2 ** (attempt - 1))
            async with self.sem:
                try:
                    resp = await self.client.request(method, url, **kw)
                except httpx.HTTPError as exc:
                    if attempt == self.retries:
                        self.report.problem(step, f"{method} {url}: {type(exc).__name__} {exc}")
                        return None
                    continue
            if resp.status_code < 500:
                break
            self.report.counts["retried after a 5xx"] += 1
        assert resp is not None
        if resp.status_code >= 400:
            self.report.problem(step, f"{method} {url}: {_detail(resp)}")
            return None
        return resp

    async def discover(self) -> None:
        """Use the gateway for every route it forwards; else the embedded mounts (/services/<name>)."""
        for name, probe in (("credit", "/v1/rating-rules"), ("awards", "/v1/honour-types")):
            resp = await self.client.get(probe)
            if resp.status_code == 404:
                self.prefix[name] = f"/services/{name}"

    async def run(self, data: DemoData) -> LoadReport:
        await self.discover()
        await self.load_results(data)
        await self.load_lifecycle(data)
        await self.finalise_results()
        await self.load_honours(data)
        # Let the services digest the bulk first: on SQLite one writer at a time, and officers' requests
        # should not queue behind thousands of consumed events.
        await self.settle(quiet_s=1.0)
        await self.load_blacklist(data)
        await self.load_reports(data)
        return self.report

    async def load_results(self, data: DemoData) -> None:
        total, done = data.result_count, 0
        self.progress("results", 0, total)
        for agency, rows in data.results.items():
            headers = self._auth(f"demo-{agency.lower()}", ["sampling:write", "read"], agency)
            for start in range(0, len(rows), self.batch_rows):
                chunk = rows[start : start + self.batch_rows]
                resp = await self._send(
                    "results", "POST", "/v1/results:batch", json=chunk, headers=headers, timeout=120
                )
                if resp is not None:
                    body = resp.json()
                    for outcome in body["rows"]:
                        row = chunk[outcome["row"] - 1]
                        if outcome["outcome"] == "created":
                            self.created[(agency, row["report_no"])] = (outcome["id"], 1)
                        self.report.counts[f"results {outcome['outcome']}"] += 1
                        if outcome["outcome"] in ("rejected", "conflict"):
                            self.report.problem("results", f"{row['report_no']}: {outcome['problems']}")
                done += len(chunk)
                self.progress("results", done, total)

    async def _change(
        self, step: str, agency: str, report_no: str, path: str, body: dict[str, Any], method: str = "POST"
    ) -> None:
        known = self.created.get((agency, report_no))
        if known is None:  # not created by this run (a re-run, or the row was refused): nothing to change
            self.report.counts[f"{step} skipped"] += 1
            return
        result_id, version = known
        headers = self._auth(f"demo-{agency.lower()}", ["sampling:write", "read"], agency)
        headers["If-Match"] = f'"{version}"'
        resp = await self._send(step, method, f"/v1/results/{result_id}{path}", json=body, headers=headers)
        if resp is not None:
            self.created[(agency, report_no)] = (result_id, int(resp.json()["version"]))
            self.report.counts[step] += 1

    async def load_lifecycle(self, data: DemoData) -> None:
        kinds = (  # step, the changes, the request's path under the result, its method
            ("corrections", data.lifecycle.corrections, "", "PATCH"),
            ("retractions", data.lifecycle.retractions, ":retract", "POST"),
            ("re-inspections", data.lifecycle.reinspections, "/reinspection", "POST"),
        )
        jobs: list[Callable[[], Awaitable[None]]] = [
            functools.partial(self._change, step, c.agency, c.report_no, path, c.body, method)
            for step, changes, path, method in kinds
            for c in changes
        ]
        await self._run_all("corrections, retractions, re-inspections", jobs)

    async def finalise_results(self) -> None:
        """Close the objection windows that have passed now, as the sampling service's scheduled job
        would within ten minutes: 2011–2015 fails are final, and the pass rates count them."""
        headers = self._auth("demo-operator", ["admin"])
        for path in ("/v1/sampling/jobs/finalise-results:run", "/services/sampling/v1/jobs/finalise-results:run"):
            resp = await self.client.post(path, headers=headers)
            if resp.status_code != 404:
                if resp.status_code >= 400:
                    self.report.problem("finalise", _detail(resp))
                else:
                    self.report.counts["objection windows closed (job run)"] += 1
                return
        self.report.problem("finalise", "no route runs the sampling service's finalise-results job")

    async def _run_all(self, label: str, jobs: Sequence[Callable[[], Awaitable[None]]]) -> None:
        self.progress(label, 0, len(jobs))
        for start in range(0, len(jobs), 64):
            await asyncio.gather(*(job() for job in jobs[start : start + 64]))
            self.progress(label, min(start + 64, len(jobs)), len(jobs))

    async def load_honours(self, data: DemoData) -> None:
        """The first honour of each type through a single grant, the rest as the registry's CSV import
        (a brand office moving its 2011–2015 registry in does exactly that; one grant per request would
        take a minute for what the import does in a second)."""
        ids: _HonourIds = {}
        first: dict[str, dict[str, Any]] = {}
        rest: list[dict[str, Any]] = []
        for body in data.honours.grants:
            if body["type_code"] in first:
                rest.append(body)
            else:
                first[body["type_code"]] = body
        grants = [functools.partial(self._grant_honour, body, ids) for body in first.values()]
        await self._run_all("honours (single grants)", grants)
        await self._import_honours(rest, ids)
        revocations = [functools.partial(self._revoke_honour, *r, ids) for r in data.honours.revocations]
        await self._run_all("revocations", revocations)

    def _brand_office(self) -> dict[str, str]:
        return self._auth("demo-brand-office", ["awards:write", "read"])

    async def _grant_honour(self, body: dict[str, Any], ids: _HonourIds) -> None:
        key = f"demo-honour-{body['type_code']}-{body['certificate_no']}"
        resp = await self._send(
            "honours",
            "POST",
            f"{self.prefix['awards']}/v1/honours",
            json=body,
            headers={**self._brand_office(), "Idempotency-Key": key},
        )
        if resp is not None:
            ids[(body["type_code"], body["certificate_no"])] = (resp.json()["honour_id"], resp.headers["ETag"])
            self.report.counts["honours granted"] += 1

    async def _import_honours(self, rest: list[dict[str, Any]], ids: _HonourIds) -> None:
        """The registry's CSV import, 5,000 rows a request."""
        total = len(rest)
        self.progress("honours (registry import)", 0, total)
        for start in range(0, total, 5000):
            chunk = rest[start : start + 5000]
            resp = await self._send(
                "honours",
                "POST",
                f"{self.prefix['awards']}/v1/honours:import",
                content=honours_csv(chunk),
                headers={**self._brand_office(), "Content-Type": "text/csv; charset=utf-8"},
                timeout=120,
            )
            if resp is not None:
                for outcome in resp.json()["rows"]:
                    body = chunk[outcome["row"] - 1]
                    self.report.counts[f"honours imported {outcome['outcome']}"] += 1
                    if outcome["outcome"] == "created":
                        ids[(body["type_code"], body["certificate_no"])] = (outcome["honour_id"], '"1"')
                    elif outcome["outcome"] == "rejected":
                        self.report.problem("honours", f"{body['certificate_no']}: {outcome['problems']}")
            self.progress("honours (registry import)", min(start + 5000, total), total)

    async def _revoke_honour(self, code: str, cert: str, reason: str, ids: _HonourIds) -> None:
        if (code, cert) not in ids:
            return
        honour_id, _ = ids[(code, cert)]
        base, headers = self.prefix["awards"], self._brand_office()
        # Read the current ETag: the awards service may have moved the honour on since (expiry).
        current = await self._send("revocations", "GET", f"{base}/v1/honours/{honour_id}", headers=headers)
        if current is None:
            return
        tag = current.headers["ETag"]
        resp = await self._send(
            "revocations",
            "POST",
            f"{base}/v1/honours/{honour_id}:revoke",
            json={"reason": reason},
            headers={**headers, "If-Match": tag},
        )
        if resp is not None:
            self.report.counts["revocations"] += 1

    async def load_blacklist(self, data: DemoData) -> None:
        """The archive's listings, removals and repairs imported with their dates (proposer and reviewer
        different people); rejected proposals by four eyes as officers work: one proposes, another rejects."""
        # The archive's decisions with their own dates (the public list then shows when each was listed).
        archived = [c.archive for c in data.blacklist if c.archive is not None]
        if archived:
            await self._import_blacklist_archive(archived)
        # Rejected proposals, one after another as officers work: each step depends on the previous answer.
        rejected = [c for c in data.blacklist if c.archive is None]
        for n, case in enumerate(rejected):
            self.progress("blacklist", n, len(rejected))
            await self._blacklist_case(case)
        self.progress("blacklist", len(rejected), len(rejected))

    async def _import_blacklist_archive(self, archived: list[dict[str, Any]]) -> None:
        importer = self._auth("demo-archivist", ["archive:import", "read"])

        async def send(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
            resp = await self._send(
                "blacklist",
                "POST",
                self.prefix["credit"] + "/v1/blacklist:import",
                json=rows,
                headers={**importer, "X-Source-File": ARCHIVE_FILE},
            )
            return None if resp is None else dict(resp.json())

        out = await send(archived)
        if out is not None:
            self._count_archive(out, archived)
        # The generator has no clock: a removal the suite's today has not reached yet did not happen;
        # those listings are imported as they stand today, still listed.
        standing = [
            {k: v for k, v in archived[row["row"] - 1].items() if k not in REMOVAL}
            for row in (out["rows"] if out is not None else [])
            if row["outcome"] == "rejected" and all(_in_future(p) for p in row["problems"])
        ]
        if standing:
            out = await send(standing)
            if out is not None:
                self._count_archive(out, standing, final=True)

    async def _blacklist_case(self, case: BlacklistCase) -> None:
        """One proposal through four eyes to its fate: rejected, listed, removed as wrongful or repaired."""
        officer = self._auth("demo-credit-officer", ["credit:write", "read"])
        reviewer = self._auth("demo-credit-reviewer", ["credit:review", "read"])
        base = self.prefix["credit"] + "/v1/blacklist-entries"
        proposed = await self._propose_listing(base, case, officer)
        if proposed is None:
            return
        eid, tag = proposed
        if case.fate == "rejected":
            resp = await self._send(
                "blacklist",
                "POST",
                f"{base}/{eid}:reject",
                json={"reason": "事实认定证据不足，不予列入", "decision_no": case.decision_no},
                headers={**reviewer, "If-Match": tag},
            )
            self.report.counts["blacklist rejected"] += resp is not None
            return
        resp = await self._send(
            "blacklist",
            "POST",
            f"{base}/{eid}:approve",
            json={"comment": "经审核，同意列入质量信用黑名单"},
            headers={**reviewer, "If-Match": tag},
        )
        if resp is None:
            return
        self.report.counts["blacklist listed"] += 1
        tag = resp.headers["ETag"]
        if case.fate == "wrongful":
            await self._remove_wrongful(base, eid, tag, case, reviewer)
        elif case.fate == "repaired":
            await self._repair(base, eid, tag, case, officer, reviewer)

    async def _propose_listing(self, base: str, case: BlacklistCase, officer: dict[str, str]) -> tuple[str, str] | None:
        """The proposal (entry id, ETag), or None when it was loaded before (a re-run) or refused."""
        existing = await self._send("blacklist", "GET", base, params={"uscc": case.proposal["uscc"]}, headers=officer)
        if existing is not None and any(
            x["decision_no"] == case.proposal["decision_no"] for x in existing.json()["items"]
        ):
            self.report.counts["blacklist already there"] += 1  # a re-run: this case was loaded before
            return None
        # Header values are ASCII: the decision number (Chinese) enters the key as a digest.
        digest = hashlib.sha256(case.proposal["decision_no"].encode()).hexdigest()[:16]
        key = f"demo-blacklist-{case.proposal['uscc']}-{digest}"
        resp = await self._send(
            "blacklist", "POST", base, json=case.proposal, headers={**officer, "Idempotency-Key": key}
        )
        if resp is None:
            return None
        self.report.counts["blacklist proposed"] += 1
        return resp.json()["entry_id"], resp.headers["ETag"]

    async def _remove_wrongful(
        self, base: str, eid: str, tag: str, case: BlacklistCase, reviewer: dict[str, str]
    ) -> None:
        """Two reviewers: the first requests the removal (202), the second confirms it."""
        second_reviewer = self._auth("demo-credit-reviewer-2", ["credit:review", "read"])
        body = {"decision_no": case.decision_no, "comment": "行政复议撤销原处罚决定"}
        resp = await self._send(
            "blacklist", "POST", f"{base}/{eid}:remove", json=body, headers={**reviewer, "If-Match": tag}
        )
        if resp is None:
            return
        resp = await self._send(
            "blacklist",
            "POST",
            f"{base}/{eid}:remove",
            json=body,
            headers={**second_reviewer, "If-Match": resp.headers["ETag"]},
        )
        self.report.counts["blacklist removed as wrongful"] += resp is not None

    def _count_archive(self, out: dict[str, Any], rows: list[dict[str, Any]], *, final: bool = False) -> None:
        self.report.counts["blacklist imported from the archive"] += out["created"]
        self.report.counts["blacklist already there"] += out["duplicates"]
        for row in out["rows"]:
            failed = row["outcome"] == "conflict" or row["outcome"] == "rejected"
            if failed and (final or not all(_in_future(p) for p in row["problems"])):
                self.report.problem(
                    "blacklist", f"archive row {rows[row['row'] - 1]['decision_no']}: {row['problems']}"
                )

    async def _repair(
        self, base: str, eid: str, tag: str, case: BlacklistCase, officer: dict[str, str], reviewer: dict[str, str]
    ) -> None:
        body = {
            "applicant": case.proposal["enterprise_name"],
            "statement": "已完成全面整改，产品经复检合格，建立质量追溯制度。",
            "evidence": [{"title": "整改报告及复检合格报告", "document_no": f"ZG-{eid[:8]}"}],
        }
        async with self.sem:
            resp = await self.client.post(f"{base}/{eid}:apply-repair", json=body, headers={**officer, "If-Match": tag})
        if resp.status_code == 409 and "repair-too-early" in resp.text:
            # The waiting period (6–12 months from listing) runs on the server's clock: not an error.
            self.report.counts["repairs not yet due"] += 1
            return
        if resp.status_code >= 400:
            self.report.problem("repairs", _detail(resp))
            return
        resp2 = await self._send(
            "repairs",
            "POST",
            f"{base}/{eid}:review-repair",
            json={"outcome": "approved", "reason": "整改到位，同意信用修复", "decision_no": case.decision_no + "修"},
            headers={**reviewer, "If-Match": resp.headers["ETag"]},
        )
        self.report.counts["repairs approved"] += resp2 is not None

    async def repair_due(self, data: DemoData) -> None:
        """File the repairs that were not yet due at load time (their entries are still listed)."""
        officer = self._auth("demo-credit-officer", ["credit:write", "read"])
        reviewer = self._auth("demo-credit-reviewer", ["credit:review", "read"])
        base = self.prefix["credit"] + "/v1/blacklist-entries"
        for case in data.blacklist:
            if case.fate != "repaired":
                continue
            resp = await self._send(
                "repairs", "GET", base, params={"uscc": case.proposal["uscc"], "status": "listed"}, headers=officer
            )
            for entry in resp.json()["items"] if resp is not None else []:
                if entry["decision_no"] == case.proposal["decision_no"]:
                    await self._repair(base, entry["entry_id"], f'"{entry["version"]}"', case, officer, reviewer)

    async def load_reports(self, data: DemoData) -> None:
        headers = self._auth("demo-statistics-bureau", ["indicators:write", "read"])

        async def one(body: dict[str, Any]) -> None:
            resp = await self._send("indicator reports", "POST", "/v1/indicator-reports", json=body, headers=headers)
            self.report.counts["indicator reports"] += resp is not None

        await self._run_all("indicator reports", [lambda b=b: one(b) for b in data.reports])  # type: ignore[misc]

    async def settle(self, timeout_s: float = 120.0, quiet_s: float = 1.0) -> int:
        """Wait until the gateway has applied every event (its applied count stops moving); that count."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        last, still_since = -1, loop.time()
        while loop.time() < deadline:
            resp = await self.client.get("/v1/attainment")
            applied = resp.json()["freshness"]["events_applied"] if resp.status_code == 200 else -1
            if applied != last:
                last, still_since = applied, loop.time()
            elif loop.time() - still_since >= quiet_s:
                return int(last)
            await asyncio.sleep(0.2)
        self.report.problem("settle", f"the gateway was still applying events after {timeout_s:.0f} s")
        return int(last)
