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
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
from stdnum.cn import uscc as _uscc

# ----------------------------------------------------------------------------------------- the city

#: (division code, name, pass-probability offset): a district's firms are a little better or worse.
DISTRICTS: tuple[tuple[str, str, float], ...] = (
    ("370202", "市南", 0.015),
    ("370203", "市北", 0.0),
    ("370211", "黄岛", 0.01),
    ("370212", "崂山", 0.02),
    ("370213", "李沧", -0.01),
    ("370214", "城阳", -0.005),
    ("370281", "胶州", -0.015),
    ("370282", "即墨", -0.02),
    ("370283", "平度", -0.03),
    ("370285", "莱西", -0.025),
)
SECTORS = ("manufacturing", "food", "agricultural", "engineering")
SECTOR_WEIGHTS = (45, 25, 20, 10)
LEVELS = ("national", "provincial", "municipal", "district")
LEVEL_WEIGHTS = (12, 20, 48, 20)


@dataclass(frozen=True)
class Agency:
    code: str
    name: str


#: Which agency inspects what: (level, sector) -> agency code; the token's agency claim is the code.
AGENCIES: tuple[Agency, ...] = (
    Agency("CN-NQS", "国家质量监督检验检疫总局监督抽查(国家质检中心)"),
    Agency("SD-ZJY", "山东省产品质量监督检验研究院"),
    Agency("QD-ZJY", "青岛市产品质量监督检验研究院"),
    Agency("QD-SPJ", "青岛市食品药品检验研究院"),
    Agency("QD-NCP", "青岛市农产品质量安全检验检测中心"),
    Agency("QD-JGZ", "青岛市建设工程质量监督站"),
    Agency("QD-QXJ", "青岛市各区(市)质量技术监督局检验所"),
)


def agency_for(level: str, sector: str) -> str:
    if level == "national":
        return "CN-NQS"
    if level == "provincial":
        return "SD-ZJY"
    if level == "district":
        return "QD-QXJ"
    return {"food": "QD-SPJ", "agricultural": "QD-NCP", "engineering": "QD-JGZ"}.get(sector, "QD-ZJY")


#: Pass probability in the base year, and its yearly change, per sector (key products apart).
PASS_BASE: dict[str, tuple[float, float]] = {
    "manufacturing": (0.86, 0.012),
    "manufacturing-key": (0.875, 0.011),
    "food": (0.955, 0.0),
    "agricultural": (0.945, 0.006),
    "engineering": (0.975, 0.005),
}
LEVEL_OFFSET = {"national": -0.01, "provincial": 0.0, "municipal": 0.01, "district": 0.015}

PRODUCTS: dict[str, tuple[tuple[str, str, str], ...]] = {
    # (category, product name, a non-conforming item with its standard)
    "manufacturing": (
        ("家用电器", "滚筒洗衣机", "能效等级|GB 12021.4-2013"),
        ("家用电器", "电冰箱", "耗电量|GB 12021.2-2008"),
        ("轮胎", "轿车子午线轮胎", "耐久性能|GB 9743-2007"),
        ("电线电缆", "聚氯乙烯绝缘电缆", "导体电阻|GB/T 5023.1-2008"),
        ("纺织品", "针织服装", "纤维含量|GB/T 29862-2013"),
        ("机械", "电动自行车", "制动性能|GB 17761-1999"),
        ("化工", "水性涂料", "挥发性有机物|GB 18582-2008"),
    ),
    "food": (
        ("饮料", "矿泉水", "菌落总数|GB 19298-2014"),
        ("酒类", "啤酒", "甲醛|GB 2758-2012"),
        ("调味品", "酱油", "氨基酸态氮|GB 2717-2003"),
        ("糕点", "月饼", "防腐剂|GB 2760-2014"),
        ("水产制品", "即食海参", "菌落总数|GB 10136-2015"),
    ),
    "agricultural": (
        ("蔬菜", "大白菜", "毒死蜱|GB 2763-2014"),
        ("蔬菜", "大葱", "腐霉利|GB 2763-2014"),
        ("水果", "苹果", "多菌灵|GB 2763-2014"),
        ("茶叶", "崂山绿茶", "氯氰菊酯|GB 2763-2014"),
        ("畜禽产品", "猪肉", "克伦特罗|农业部235号公告"),
        ("水产品", "海带", "无机砷|GB 2762-2012"),
    ),
    "engineering": (
        ("房屋建筑", "住宅楼竣工验收", "混凝土强度|GB 50204-2015"),
        ("市政工程", "道路工程竣工验收", "压实度|CJJ 1-2008"),
        ("房屋建筑", "公共建筑竣工验收", "钢筋保护层厚度|GB 50204-2015"),
    ),
}

NAME_WORDS = (
    "海信",
    "澳柯",
    "华泰",
    "瑞丰",
    "金岭",
    "东方",
    "明珠",
    "鑫源",
    "恒达",
    "海润",
    "崂峰",
    "琴岛",
    "胶东",
    "新华",
    "利群",
    "宏远",
    "正大",
    "青山",
    "蓝海",
    "润泽",
    "嘉禾",
    "永盛",
    "汇丰",
    "福瑞",
)
TRADE_WORDS = {
    "manufacturing": ("电器", "橡胶", "电缆", "纺织", "机械", "化工", "电子"),
    "food": ("食品", "饮品", "酿酒", "海洋食品", "调味品"),
    "agricultural": ("农业", "果蔬", "茶业", "养殖", "农产品"),
    "engineering": ("建设", "建工", "建筑工程", "市政工程"),
}
SUFFIXES = ("有限公司", "股份有限公司", "集团有限公司")


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
class DemoData:
    seed: int
    years: tuple[int, ...]
    enterprises: list[Enterprise]
    results: dict[str, list[dict[str, Any]]]  # agency code -> result bodies (POST /v1/results:batch)
    corrections: list[ResultChange]  # PATCH /v1/results/{id} bodies
    retractions: list[ResultChange]  # POST /v1/results/{id}:retract bodies
    reinspections: list[ResultChange]  # POST /v1/results/{id}/reinspection bodies
    honours: list[dict[str, Any]]  # POST /v1/honours bodies
    revocations: list[tuple[str, str, str]]  # (type_code, certificate_no, reason)
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
        district, dname, _ = rng.choice(DISTRICTS)
        while True:
            name = f"青岛{rng.choice(NAME_WORDS)}{rng.choice(TRADE_WORDS[sector])}{rng.choice(SUFFIXES)}"
            if name in names:
                name = f"青岛{dname}{rng.choice(NAME_WORDS)}{rng.choice(TRADE_WORDS[sector])}有限公司"
            if name not in names:
                break
        names.add(name)
        out.append(Enterprise(make_uscc("91", district, 10_000_000 + 7919 * i), name, district, sector))
    return out


def _pass_probability(sector: str, key: bool, level: str, district: str, year_index: int) -> float:
    base, trend = PASS_BASE["manufacturing-key" if key else sector]
    offset = dict((d, o) for d, _, o in DISTRICTS)[district]
    return min(0.998, base + trend * year_index + LEVEL_OFFSET[level] + offset)


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
            category, product, item = rng.choice(PRODUCTS[sector])
            sampled = date(year, 1, 1) + timedelta(days=rng.randrange(0, 334))
            produced = sampled - timedelta(days=rng.randrange(3, 90))
            reported = sampled + timedelta(days=rng.randrange(7, 30))
            passed = rng.random() < _pass_probability(sector, key, level, firm.district, yi)
            agency = agency_for(level, sector)
            serial[(agency, year)] += 1
            item_name, standard = item.split("|")
            body: dict[str, Any] = {
                "report_no": f"{agency}-{year}-{serial[(agency, year)]:06d}",
                "level": level,
                "sector": sector,
                "key_product": key,
                "product_category": category,
                "product_name": product,
                "brand": firm.name[2:4],
                "model_spec": rng.choice(("标准型", "A型", "B型", "500g", "550mL", "I级")),
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
                        "item": item_name,
                        "requirement": "符合标准要求",
                        "measured": "不符合",
                        "unit": None,
                        "standard": standard,
                    }
                ],
            }
            out[agency].append(body)
    return {k: v for k, v in out.items() if v}


#: The outbreak's campaign: results sampled in its quarter, and how many of them fail.
OUTBREAK_RESULTS, OUTBREAK_FAILS = 100, 45
#: (category, product, item|standard) of the outbreak: procymidone residue on spring onions, a
#: recurring finding of vegetable sampling.
OUTBREAK_PRODUCT = ("蔬菜", "大葱", "腐霉利|GB 2763-2014")


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
    dname = next(name for code, name, _ in DISTRICTS if code == district)
    year = years[-2]
    start = date(year, 7, 1)
    category, product, item = OUTBREAK_PRODUCT
    item_name, standard = item.split("|")
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
                "product_category": category,
                "product_name": product,
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
                        "item": item_name,
                        "requirement": "≤0.2 mg/kg",
                        "measured": f"{rng.uniform(0.3, 1.8):.2f}",
                        "unit": "mg/kg",
                        "standard": standard,
                    }
                ]
                if failed
                else [],
            }
        )
    results[agency] = results.pop(agency, []) + rows
    return Outbreak(category, district, start, tuple(r["report_no"] for r in rows), OUTBREAK_FAILS)


def _lifecycle(
    rng: random.Random, results: dict[str, list[dict[str, Any]]]
) -> tuple[list[ResultChange], list[ResultChange], list[ResultChange]]:
    corrections: list[ResultChange] = []
    retractions: list[ResultChange] = []
    reinspections: list[ResultChange] = []
    for agency, rows in results.items():
        for r in rows:
            roll = rng.random()
            if roll < 0.01:
                retractions.append(ResultChange(agency, r["report_no"], {"reason": "样品信息重复录入，撤回本报告"}))
            elif roll < 0.03:
                corrections.append(
                    ResultChange(
                        agency,
                        r["report_no"],
                        {
                            "reason": "产品名称录入有误，按原始记录更正",
                            "changes": {"product_name": r["product_name"] + "(更正)"},
                        },
                    )
                )
            elif r["conclusion"] == "fail" and roll < 0.06:
                corrections.append(
                    ResultChange(
                        agency,
                        r["report_no"],
                        {
                            "reason": "复核原始记录，检验结论判定有误",
                            "changes": {"conclusion": "pass", "nonconforming_items": []},
                        },
                    )
                )
            elif r["conclusion"] == "fail" and roll < 0.30:
                reported = date.fromisoformat(r["report_date"])
                requested = reported + timedelta(days=rng.randrange(2, 14))
                reinspections.append(
                    ResultChange(
                        agency,
                        r["report_no"],
                        {
                            "outcome": "overturned" if rng.random() < 0.4 else "upheld",
                            "reinspection_report_no": "FJ-" + r["report_no"],
                            "requested_on": requested.isoformat(),
                            "decided_on": (requested + timedelta(days=rng.randrange(5, 20))).isoformat(),
                        },
                    )
                )
    return corrections, retractions, reinspections


#: Honours granted per year for each catalog type (before `scale`), tuned near the seed's targets.
HONOURS_PER_YEAR: dict[str, int] = {
    "B1": 1,
    "B2": 2,
    "B3": 15,
    "B4": 3,
    "B5": 130,
    "B6": 125,
    "B7": 26,
    "S1": 2,
    "S2": 40,
    "S3": 40,
    "S4": 25,
    "S5": 1,
    "S6": 30,
    "S7": 3,
    "S8": 5,
    "S9": 2,
    "S10": 3,
    "S11": 1,
    "Q1": 10,
    "Q2": 22,
    "Q3": 95,
    "Q4": 2,
    "Q5": 3,
    "Q6": 1,
    "E1": 2,
    "E2": 8,
}
#: Holder kind used for each type (the first the catalog allows that the generator can name).
HOLDER_KIND: dict[str, str] = {
    "B1": "region",
    "B2": "region",
    "B4": "region",
    "S11": "region",
    "S7": "region",
    "Q2": "person",
    "S9": "organisation",
    "S10": "organisation",
}
SUBJECT_KIND: dict[str, str | None] = {
    "B1": "industry",
    "B2": "product",
    "B3": "trademark",
    "B4": "product",
    "B5": "product",
    "B6": "trademark",
    "B7": "service",
    "S1": "standard",
    "S2": "standard",
    "S3": "standard",
    "S4": "standard",
    "S5": "committee",
    "S6": None,
    "S7": "product",
    "S8": "product",
    "S9": "service",
    "S10": "service",
    "S11": "industry",
    "Q1": None,
    "Q2": None,
    "Q3": None,
    "Q4": None,
    "Q5": None,
    "Q6": None,
    "E1": "project",
    "E2": "project",
}
GI_PRODUCTS = (
    "崂山绿茶",
    "胶州大白菜",
    "马家沟芹菜",
    "大泽山葡萄",
    "平度黄金",
    "莱西花生",
    "崂山矿泉水",
    "即墨老酒",
    "灵山岛海参",
    "黄岛蓝莓",
)
INDUSTRIES = ("家电", "橡胶轮胎", "纺织服装", "海洋食品", "啤酒饮料", "港口物流", "旅游服务", "金融服务")
SERVICES = ("港口物流服务", "城市公交服务", "星级酒店服务", "社区养老服务", "电子商务服务", "旅游咨询服务")


def _subject(rng: random.Random, code: str, i: int, year: int, firm: Enterprise | None) -> dict[str, Any] | None:
    kind = SUBJECT_KIND[code]
    brand = firm.name[2:4] if firm else "琴岛"
    if kind is None:
        return None
    if kind == "product":
        if code in ("B2", "B4"):
            return {"kind": "product", "name": GI_PRODUCTS[i % len(GI_PRODUCTS)]}
        sector = firm.sector if firm else "agricultural"
        return {"kind": "product", "name": f"{brand}牌{rng.choice(PRODUCTS[sector])[1]}"}
    if kind == "trademark":
        return {"kind": "trademark", "name": brand, "number": f"{rng.randrange(1_000_000, 9_999_999)}"}
    if kind == "service":
        return {"kind": "service", "name": rng.choice(SERVICES)}
    if kind == "industry":
        return {"kind": "industry", "name": INDUSTRIES[i % len(INDUSTRIES)]}
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


def _honours(
    rng: random.Random, firms: list[Enterprise], years: Sequence[int], scale: float
) -> tuple[list[dict[str, Any]], list[tuple[str, str, str]]]:
    honours: list[dict[str, Any]] = []
    revocations: list[tuple[str, str, str]] = []
    orgs = [
        Enterprise(make_uscc("51", d, 20_000_000 + 131 * i), f"青岛市{n}质量协会", d, "manufacturing")
        for i, (d, n, _) in enumerate(DISTRICTS)
    ]
    for code, per_year in HONOURS_PER_YEAR.items():
        n = 0
        for year in years:
            count = max(1 if code != "B1" or year % 2 else 0, round(per_year * scale))
            for _ in range(count):
                n += 1
                kind = HOLDER_KIND.get(code, "enterprise")
                firm: Enterprise | None = None
                if kind == "region":
                    district, dname, _ = DISTRICTS[(n - 1) % len(DISTRICTS)]
                    holder_id, holder_name = district, f"青岛市{dname}区(市)"
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
                honours.append(body)
                if rng.random() < 0.01:
                    revocations.append((code, body["certificate_no"], "复查发现申报材料不实，撤销称号"))
    return honours, revocations


REASONS = (
    "fake_or_shoddy_products",
    "food_safety_violation",
    "refusing_supervision",
    "certification_fraud",
    "special_equipment_violation",
)
FATES = ("listed", "listed", "listed", "rejected", "wrongful", "repaired", "repaired")


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
        reason = "food_safety_violation" if sector == "food" else rng.choice(REASONS)
        fate = FATES[i % len(FATES)]
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


#: Reported indicators: one value a year from the system that measures it (ratios for rates).
REPORTED: dict[str, tuple[str, str, tuple[float, ...]]] = {
    "management_system_certification_rate": (
        "青岛市认证认可监管信息系统",
        "青质监认〔{y}〕年报",
        (0.48, 0.52, 0.555, 0.585, 0.612),
    ),
    "producer_services_satisfaction": (
        "青岛市服务业顾客满意度测评系统",
        "青质协测评〔{y}〕1号",
        (76.5, 77.8, 78.9, 80.2, 81.0),
    ),
    "consumer_services_satisfaction": (
        "青岛市服务业顾客满意度测评系统",
        "青质协测评〔{y}〕2号",
        (72.1, 73.0, 74.2, 75.3, 76.0),
    ),
    "expressway_good_road_rate": (
        "山东省交通运输厅公路养护管理系统",
        "鲁交公路〔{y}〕附表2",
        (0.965, 0.971, 0.978, 0.984, 0.986),
    ),
    "trunk_road_good_road_rate": (
        "山东省交通运输厅公路养护管理系统",
        "鲁交公路〔{y}〕附表3",
        (0.80, 0.82, 0.83, 0.845, 0.862),
    ),
    "standards_library_holdings": (
        "青岛市标准化研究院标准馆藏系统",
        "青标研〔{y}〕馆藏统计",
        (180_000, 210_000, 238_000, 266_000, 291_500),
    ),
}


def _reports(years: Sequence[int]) -> list[dict[str, Any]]:
    out = []
    for code, (system, evidence, values) in REPORTED.items():
        for year, value in zip(years, values, strict=False):
            out.append(
                {
                    "plan": "qingdao-2012",
                    "indicator": code,
                    "period_start": f"{year}-01-01",
                    "period_end": f"{year}-12-31",
                    "value": value,
                    "reporting_system": system,
                    "evidence_ref": evidence.format(y=year),
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
    corrections, retractions, reinspections = _lifecycle(rng, results)
    honours, revocations = _honours(rng, firms, years, honour_scale)
    blacklist = _blacklist(rng, results, blacklist_cases, years)
    # Last, with its own generator: the rest of the city is the same with or without it.
    outbreak = _outbreak(random.Random(f"{seed}-outbreak"), firms, results, years)
    return DemoData(
        seed=seed,
        years=tuple(years),
        enterprises=firms,
        results=results,
        corrections=corrections,
        retractions=retractions,
        reinspections=reinspections,
        honours=honours,
        revocations=revocations,
        blacklist=blacklist,
        reports=_reports(years),
        outbreak=outbreak,
    )


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


class Loader:
    """Sends a DemoData to a running suite through its HTTP APIs, step by step, counting problems."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        mint: Mint,
        *,
        progress: Progress | None = None,
        batch_rows: int = 2000,
        concurrency: int = 8,
        retries: int = 3,
    ) -> None:
        self.client = client
        self.retries = retries
        self.mint = mint
        self.progress = progress or (lambda step, done, total: None)
        self.batch_rows = batch_rows
        self.sem = asyncio.Semaphore(concurrency)
        self.report = LoadReport()
        self.prefix = {"credit": "", "awards": ""}
        self._tokens: dict[tuple[str, str | None], str] = {}
        # report_no -> (result id, version) for the rows this run created (re-runs skip the lifecycle)
        self.created: dict[tuple[str, str], tuple[str, int]] = {}

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
            ("corrections", data.corrections, "", "PATCH"),
            ("retractions", data.retractions, ":retract", "POST"),
            ("re-inspections", data.reinspections, "/reinspection", "POST"),
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
        for body in data.honours:
            if body["type_code"] in first:
                rest.append(body)
            else:
                first[body["type_code"]] = body
        grants = [functools.partial(self._grant_honour, body, ids) for body in first.values()]
        await self._run_all("honours (single grants)", grants)
        await self._import_honours(rest, ids)
        revocations = [functools.partial(self._revoke_honour, *r, ids) for r in data.revocations]
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
