"""Finding an enterprise by its name when its USCC is not given (`POST /v1/enterprises:match`).

Chinese enterprise names vary in how they are written more than in what they say: full-width digits
and brackets, traditional characters, the region prefix (青岛 / 青岛市 / 山东省青岛市 / (青岛)), the
organisation form (有限公司, 股份有限公司, 有限责任公司, 集团). Both sides are reduced to their *core*
(the name without region and form, NFKC, simplified, without spaces and punctuation) and the cores are
compared with rapidfuzz's normalised Levenshtein similarity, in the manner of sanctions-list screening APIs (match
by example, scored candidates, an explanation of each score).

No word segmenter: a core is a handful of characters compared as characters; a segmenter (jieba) would
bring a dictionary and its errors into a comparison an edit distance already makes.

A name is answered with one USCC only when the best candidate scores at least `THRESHOLD` and no other
is within `MARGIN` of it; otherwise every candidate is reported for a person to choose. Two enterprises
whose names differ only in region or form (青岛海达机械有限公司, 海达机械股份有限公司) are therefore
reported, not guessed, unless the district tells them apart.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import opencc
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

#: The least score (0–100) of a name answered with one USCC, and the lead it needs over the next
#: candidate: the project's choices, measured on the generated set (docs/credit-rules.md).
THRESHOLD = 90.0
MARGIN = 5.0
#: Candidates below this score are not reported at all.
CUTOFF = 70.0
#: Score adjustments by district: the same district confirms a candidate, another one speaks against it.
SAME_DISTRICT = 3.0
OTHER_DISTRICT = -15.0

#: Region names as prefixes (longest first when stripped): the country, the province, the city, and
#: Qingdao's districts and county-level cities (GB/T 2260), with and without their unit (省/市/区).
_CITY = ("中华人民共和国", "中国", "山东省", "山东", "青岛市", "青岛")
_DISTRICTS = {
    "370202": ("市南区", "市南"),
    "370203": ("市北区", "市北"),
    "370205": ("四方区", "四方"),
    "370211": ("黄岛区", "黄岛", "西海岸新区", "西海岸"),
    "370212": ("崂山区", "崂山"),
    "370213": ("李沧区", "李沧"),
    "370214": ("城阳区", "城阳"),
    "370215": ("即墨区", "即墨市", "即墨"),
    "370281": ("胶州市", "胶州"),
    "370282": ("即墨市",),
    "370283": ("平度市", "平度"),
    "370285": ("莱西市", "莱西"),
}
_DISTRICT_OF = {name: code for code, names in _DISTRICTS.items() for name in names}
REGION_PREFIXES = tuple(sorted({*_CITY, *_DISTRICT_OF}, key=len, reverse=True))
#: Organisation forms as suffixes (longest first): stripped repeatedly (…集团有限公司 → …).
ORG_FORMS = tuple(
    sorted(
        {
            "股份有限公司",
            "有限责任公司",
            "有限公司",
            "股份公司",
            "集团公司",
            "集团",
            "公司",
            "总公司",
            "有限合伙",
            "合伙企业",
            "个人独资企业",
        },
        key=len,
        reverse=True,
    )
)
#: Affixes by set and length (longest first): a slice and a set lookup per length, not a scan per affix.
_FORMS, _REGIONS = frozenset(ORG_FORMS), frozenset(REGION_PREFIXES)
_FORM_LENGTHS = sorted({len(f) for f in ORG_FORMS}, reverse=True)
_REGION_LENGTHS = sorted({len(r) for r in REGION_PREFIXES}, reverse=True)
_BRACKETED = re.compile(r"[(\[【〔［]([^)\]】〕］]*)[)\]】〕］]")
_PUNCT = re.compile(r"[\W_]+")
_T2S = opencc.OpenCC("t2s")
#: A core keeps at least this many characters: 青岛港 is not stripped to 港.
_MIN_CORE = 2


@dataclass(frozen=True)
class Normalised:
    """A name reduced to its core, with what was removed on the way (for the explanation)."""

    name: str
    core: str
    regions: tuple[str, ...]
    forms: tuple[str, ...]

    @property
    def district(self) -> str | None:
        """The district code a region prefix names, if any (青岛市黄岛区… → 370211)."""
        codes = [_DISTRICT_OF[r] for r in self.regions if r in _DISTRICT_OF]
        return codes[-1] if codes else None


def _affix(text: str, affixes: frozenset[str], lengths: list[int], *, at_end: bool) -> int:
    """The length of the longest affix at the end (or start) of `text`, 0 if none."""
    for k in lengths:
        if len(text) > k and (text[-k:] if at_end else text[:k]) in affixes:
            return k
    return 0


@lru_cache(maxsize=1 << 16)
def normalise(name: str) -> Normalised:
    """NFKC (full-width digits, letters and brackets to half-width), traditional to simplified (OpenCC
    t2s), casefold, no spaces; a bracketed region removed; organisation forms stripped from the end and
    region prefixes from the start, repeatedly; punctuation dropped."""
    text = "".join(_T2S.convert(unicodedata.normalize("NFKC", name)).casefold().split())
    regions: list[str] = []

    def bracket(m: re.Match[str]) -> str:
        inner = m.group(1)
        if inner in REGION_PREFIXES:
            regions.append(inner)
            return ""
        return inner

    text = _BRACKETED.sub(bracket, text)
    forms: list[str] = []
    while (k := _affix(text, _FORMS, _FORM_LENGTHS, at_end=True)) and len(text) - k >= _MIN_CORE:
        forms.insert(0, text[-k:])
        text = text[:-k]
    while (k := _affix(text, _REGIONS, _REGION_LENGTHS, at_end=False)) and len(text) - k >= _MIN_CORE:
        regions.append(text[:k])
        text = text[k:]
    return Normalised(name, _PUNCT.sub("", text), tuple(regions), tuple(forms))


@dataclass(frozen=True)
class Candidate:
    uscc: str
    name: str
    district_code: str | None
    score: float
    explanation: dict[str, Any]


@dataclass(frozen=True)
class Match:
    outcome: Literal["matched", "ambiguous", "not_found"]
    uscc: str | None
    candidates: list[Candidate] = field(default_factory=list)


def explain(query: Normalised, other: Normalised, district: str) -> dict[str, Any]:
    """Which parts of the two cores are the same and which differ, and what normalisation removed."""
    matched: list[str] = []
    differed: list[dict[str, str]] = []
    for op in Levenshtein.opcodes(query.core, other.core):
        a, b = query.core[op.src_start : op.src_end], other.core[op.dest_start : op.dest_end]
        if op.tag == "equal":
            matched.append(a)
        else:
            differed.append({"query": a, "candidate": b})
    return {
        "query_core": query.core,
        "candidate_core": other.core,
        "matched": matched,
        "differed": differed,
        "removed": {
            "query": {"regions": list(query.regions), "forms": list(query.forms)},
            "candidate": {"regions": list(other.regions), "forms": list(other.forms)},
        },
        "district": district,
    }


class EnterpriseIndex:
    """Every known enterprise by its name's core; answers a name with scored, explained candidates."""

    def __init__(self, enterprises: Iterable[tuple[str, str, str | None]]) -> None:
        self._rows: list[tuple[str, str, str | None, Normalised]] = []
        self._by_core: dict[str, list[int]] = {}
        for uscc, name, district in enterprises:
            n = normalise(name)
            self._by_core.setdefault(n.core, []).append(len(self._rows))
            self._rows.append((uscc, name, district or n.district, n))
        self._cores = list(self._by_core)

    def __len__(self) -> int:
        return len(self._rows)

    def match(self, name: str, district_code: str | None = None, limit: int = 5) -> Match:
        q = normalise(name)
        if not q.core:
            return Match("not_found", None)
        district_code = district_code or q.district
        # Levenshtein, not rapidfuzz's default Indel ratio: there a changed character costs two edits and a
        # dropped one one, so 星凯 would beat 星创凯's true twin 星泰凯 for a query 星泰凯 misspelt.
        found = process.extract(
            q.core,
            self._cores,
            scorer=Levenshtein.normalized_similarity,
            score_cutoff=(CUTOFF - SAME_DISTRICT) / 100,
            limit=limit * 2,
        )
        scored: list[Candidate] = []
        for core, score, _ in found:
            for i in self._by_core[core]:
                uscc, full, district, n = self._rows[i]
                if district_code is None or district is None:
                    seen, adjust = "unknown", 0.0
                elif district == district_code:
                    seen, adjust = "same", SAME_DISTRICT
                else:
                    seen, adjust = "different", OTHER_DISTRICT
                total = max(0.0, min(100.0, 100 * float(score) + adjust))
                if total >= CUTOFF:
                    scored.append(Candidate(uscc, full, district, round(total, 1), explain(q, n, seen)))
        scored.sort(key=lambda c: (-c.score, c.uscc))
        scored = scored[:limit]
        if not scored:
            return Match("not_found", None)
        best = scored[0]
        runner_up = scored[1].score if len(scored) > 1 else 0.0
        if best.score >= THRESHOLD and best.score - runner_up >= MARGIN:
            return Match("matched", best.uscc, scored)
        return Match("ambiguous", None, scored)
