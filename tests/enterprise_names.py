"""A generated register of Qingdao-like enterprise names, and the ways other systems write them
(for the name-matching test and benchmark; issue 17).

Names are built as the register spells them — an optional region prefix, a two- or three-character
trade name, an industry word, sometimes a number, an organisation form — so that some enterprises
share a core (same trade name and industry, another region or form), as real registers do. Queries
write a registered name as an archive or another system would: form dropped, region added, full-width
digits and brackets, traditional characters (all equal after normalisation), or one character changed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import opencc
from stdnum.cn import uscc as stdnum_uscc

TRADE = list(
    "海信澳柯玛双星利华东兴丰达宝龙鑫源恒泰瑞德盛福顺安康金银百通正大新宏远长隆昌明光中联创博汇晟嘉美佳凯旭天润祥和云峰"
)
INDUSTRY = [
    "电器",
    "食品",
    "机械",
    "纺织",
    "建材",
    "化工",
    "橡胶",
    "塑料",
    "电子",
    "服装",
    "水产",
    "酿酒",
    "五金",
    "印刷",
    "包装",
    "家具",
    "制药",
    "轮胎",
    "钢构",
    "汽车配件",
]
FORMS = ["有限公司"] * 6 + ["股份有限公司", "有限责任公司", "集团有限公司", "集团"]
PREFIXES = ["", "", "青岛", "青岛市", "山东省青岛市"]
DISTRICTS = {
    "370202": "市南区",
    "370203": "市北区",
    "370211": "黄岛区",
    "370212": "崂山区",
    "370213": "李沧区",
    "370214": "城阳区",
    "370281": "胶州市",
    "370283": "平度市",
}
FULL_WIDTH = str.maketrans("0123456789()", "０１２３４５６７８９（）")
_S2T = opencc.OpenCC("s2t")


@dataclass(frozen=True)
class Enterprise:
    uscc: str
    name: str
    district_code: str
    trade: str
    industry: str
    number: str
    form: str


def _uscc(rng: random.Random, district: str) -> str:
    code17 = "91" + district + "".join(rng.choice("0123456789") for _ in range(9))
    return code17 + stdnum_uscc.calc_check_digit(code17)


def register(n: int = 10_000, seed: int = 17) -> list[Enterprise]:
    rng = random.Random(seed)
    out: list[Enterprise] = []
    seen: set[str] = set()
    while len(out) < n:
        district = rng.choice(sorted(DISTRICTS))
        trade = "".join(rng.sample(TRADE, rng.choice((2, 2, 3))))
        industry = rng.choice(INDUSTRY)
        number = str(rng.randint(1, 9)) if rng.random() < 0.1 else ""
        form = rng.choice(FORMS)
        prefix = rng.choice(PREFIXES + [DISTRICTS[district]])
        name = f"{prefix}{trade}{industry}{number}{'厂' if number else ''}{form}"
        if name in seen:
            continue  # a register holds a name once
        seen.add(name)
        out.append(Enterprise(_uscc(rng, district), name, district, trade, industry, number, form))
    return out


def _core_name(e: Enterprise) -> str:
    return f"{e.trade}{e.industry}{e.number}{'厂' if e.number else ''}"


#: How a query writes the registered name; the first four leave the core as it is.
EXACT_VARIANTS = ("form_dropped", "region_added", "full_width", "traditional")


def variant(e: Enterprise, how: str, rng: random.Random) -> str:
    core = _core_name(e)
    if how == "form_dropped":
        return "青岛" + core if rng.random() < 0.5 else core
    if how == "region_added":
        return f"山东省青岛市{DISTRICTS[e.district_code]}{core}{e.form}"
    if how == "full_width":
        return f"（青岛）{core}{e.form}".translate(FULL_WIDTH)
    if how == "traditional":
        return str(_S2T.convert(e.name))
    if how == "one_char_changed":
        i = rng.randrange(len(e.trade))
        other = rng.choice([c for c in TRADE if c != e.trade[i]])
        return e.name.replace(e.trade, e.trade[:i] + other + e.trade[i + 1 :], 1)
    raise ValueError(how)
