"""Plans as data: every `*.json` file of a plans folder is one plan, validated at start.

A malformed file stops the gateway with a message naming the file and the line, so a typo in a
target is found by whoever edits the file, not by a leader reading a wrong figure.
"""

from __future__ import annotations

import json
import json.decoder
import json.scanner
from datetime import date
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from services.gateway.schemes import AssessmentScheme
from shared.errors import NotFound, ValidationFailed, field_error

PLANS_DIR = Path(__file__).parent / "plans"
DATA_DIR = Path(__file__).parent / "data"

Kind = Literal["min_rate", "exact_rate", "min_score", "cumulative_count", "qualitative"]
Counting = Literal["granted_during", "active_at_end"]
Sector = Literal["manufacturing", "agricultural", "food", "engineering"]
Level = Literal["national", "provincial", "municipal", "district"]
#: How a "stays stable" (保持稳定) target is judged (docs/attainment-method.md): no significant fall.
Stability = Literal["no_significant_fall"]


class PlanNotFound(NotFound, slug="plan-not-found", title="Plan not found"):
    def __init__(self, plan_id: str, known: list[str]) -> None:
        super().__init__(f"No plan {plan_id!r}; plans: " + ", ".join(sorted(known)))


class IndicatorNotFound(NotFound, slug="indicator-not-found", title="Indicator not found"):
    def __init__(self, plan_id: str, code: str) -> None:
        super().__init__(f"Plan {plan_id} has no indicator {code!r}")


class UnknownIndicator(ValidationFailed, slug="unknown-indicator", title="Unknown indicator"):
    """A report names an indicator the plan does not have."""

    def __init__(self, plan_id: str, code: str) -> None:
        super().__init__(
            f"Plan {plan_id} has no indicator {code!r}", [field_error("indicator", "body", "not in the plan")]
        )


class IndicatorNotReported(ValidationFailed, slug="indicator-not-reported", title="Computed indicator"):
    def __init__(self, code: str) -> None:
        super().__init__(
            f"{code} is computed from events; only reported indicators take reports",
            [field_error("indicator", "body", "computed, not reported")],
        )


class ValueOutOfRange(ValidationFailed, slug="value-out-of-range", title="Value out of range"):
    def __init__(self) -> None:
        super().__init__(
            "A rate is a ratio between 0 and 1", [field_error("value", "body", "a rate is between 0 and 1")]
        )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ResultFilter(_Strict):
    """Which sampling results a pass rate counts (each omitted dimension means all)."""

    sector: Sector | None = None
    level: Level | None = None
    key_product: bool | None = None


class PassRateSource(_Strict):
    kind: Literal["computed"]
    metric: Literal["pass_rate"]
    filter: ResultFilter


class HonourCountSource(_Strict):
    kind: Literal["computed"]
    metric: Literal["honour_count"]
    type_codes: list[str] = Field(min_length=1, description="The awards catalog's type codes counted")


class ReportedSource(_Strict):
    kind: Literal["reported"]


Source = Annotated[PassRateSource | HonourCountSource | ReportedSource, Field(union_mode="left_to_right")]


class Indicator(_Strict):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    section: str = Field(min_length=1, description="The seed document's section, e.g. 三(一)1")
    kind: Kind
    target: float | None = Field(description="null: no numeric target (qualitative, or 'a batch')")
    target_text: str | None = None
    unit: str
    counting: Counting | None = None
    source: Source
    natural_limit: float | None = Field(None, description="A bound the value cannot pass (1.0 for rates)")
    due: date | None = Field(None, description="The target's own deadline when earlier than the plan's end")
    stability: Stability | None = Field(
        None,
        description="A target of staying stable: 'no_significant_fall' (no fall whose years' 95% Wilson "
        "intervals do not overlap) instead of Open SDG's growth thresholds",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Indicator:
        computed_count = isinstance(self.source, HonourCountSource)
        if computed_count and self.counting is None:
            raise ValueError("an honour count needs 'counting' (granted_during or active_at_end)")
        if not computed_count and self.counting is not None:
            raise ValueError("'counting' applies only to honour counts")
        if self.kind == "qualitative" and self.target is not None:
            raise ValueError("a qualitative indicator has no numeric target")
        if self.kind in ("min_rate", "exact_rate", "min_score") and self.target is None:
            raise ValueError(f"a {self.kind} indicator needs a target")
        if self.kind.endswith("_rate") and self.target is not None and not 0 <= self.target <= 1:
            raise ValueError("a rate's target is a ratio between 0 and 1")
        if isinstance(self.source, PassRateSource) and not (self.kind.endswith("_rate") or self.kind == "qualitative"):
            raise ValueError("a pass-rate source needs a rate or qualitative kind")
        if computed_count and self.kind not in ("cumulative_count", "qualitative"):
            raise ValueError("an honour-count source needs the cumulative_count kind")
        if self.stability is not None and not (isinstance(self.source, PassRateSource) and self.target is None):
            # The test compares Wilson intervals, so it needs each year's n and passed, and no number to reach.
            raise ValueError("'stability' applies only to a pass rate without a numeric target")
        return self

    @property
    def is_rate(self) -> bool:
        return self.kind.endswith("_rate") or isinstance(self.source, PassRateSource)

    @property
    def reported(self) -> bool:
        return isinstance(self.source, ReportedSource)


class Plan(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,63}$")
    name_zh: str
    name_en: str
    document_no: str | None = None
    issued_on: date | None = None
    period_start: date
    period_end: date
    base_year: int = Field(description="Progress is measured from this year's value (Open SDG's base year)")
    sections: dict[str, str] = Field(default_factory=dict)
    indicators: list[Indicator] = Field(min_length=1)
    assessment_schemes: list[AssessmentScheme] = Field(
        default_factory=list, description="District assessment schemes (docs/assessment.md)"
    )

    @field_validator("assessment_schemes")
    @classmethod
    def _schemes_fit(cls, schemes: list[AssessmentScheme], info: ValidationInfo) -> list[AssessmentScheme]:
        indicators = {i.code: i for i in info.data.get("indicators", [])}
        seen: set[str] = set()
        for s in schemes:
            if s.id in seen:
                raise ValueError(f"assessment scheme {s.id!r} appears twice")
            seen.add(s.id)
            s.check_against(indicators)
        return schemes

    @model_validator(mode="after")
    def _consistent(self) -> Plan:
        if self.period_end < self.period_start:
            raise ValueError("period_end is before period_start")
        if not self.period_start.year <= self.base_year <= self.period_end.year:
            raise ValueError("base_year lies outside the plan's period")
        seen: set[str] = set()
        for i in self.indicators:
            if i.code in seen:
                raise ValueError(f"indicator code {i.code!r} appears twice")
            seen.add(i.code)
        return self

    def indicator(self, code: str) -> Indicator | None:
        return next((i for i in self.indicators if i.code == code), None)

    def due(self, ind: Indicator) -> date:
        return ind.due or self.period_end


class DataFileError(ValueError):
    """A data file (a plan, the warning rules) that cannot be used: the message names the file and the line."""

    def __init__(self, path: Path, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


class PlanFileError(DataFileError):
    """A plan file that cannot be used."""


class _Located(dict[str, Any]):
    """A JSON object that remembers where it started in the text."""

    start: int = 0


def _loads_located(text: str) -> Any:
    """json.loads, but every object knows its offset: the pure-Python scanner calls parse_object,
    which we wrap (the C scanner would bypass it)."""
    decoder = json.JSONDecoder()

    def parse_object(s_and_end: tuple[str, int], *args: Any) -> tuple[_Located, int]:
        obj, end = json.decoder.JSONObject(s_and_end, *args)  # type: ignore[attr-defined]
        located = _Located(obj)
        located.start = s_and_end[1] - 1
        return located, end

    decoder.parse_object = parse_object  # type: ignore[attr-defined]
    decoder.scan_once = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]
    return decoder.decode(text)


def _line_of(text: str, raw: Any, loc: tuple[Any, ...]) -> int:
    """The line of the value at `loc`: the deepest object on the path, then the key inside it."""
    node, offset = raw, 0
    for part in loc:
        if isinstance(node, _Located):
            offset = node.start
            if isinstance(part, str) and part in node:
                key_at = text.find(json.dumps(part, ensure_ascii=False), offset)
                if key_at >= 0:
                    offset = key_at
                node = node[part]
                continue
            break
        if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            if isinstance(node, _Located):
                offset = node.start
            continue
        break
    return text.count("\n", 0, offset) + 1


M = TypeVar("M", bound=BaseModel)


def load_located(
    path: Path, model: type[M], root: str, error: type[DataFileError] = DataFileError
) -> tuple[M, str, Any]:
    """The file's JSON validated as `model`, with its text and located JSON; `error` names the file
    and the line of the first problem (`root` names the whole document in the message)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(path, 1, f"not UTF-8: {exc}") from None
    try:
        raw = _loads_located(text)
    except json.JSONDecodeError as exc:
        raise error(path, exc.lineno, f"not valid JSON: {exc.msg} (column {exc.colno})") from None
    try:
        return model.model_validate(raw), text, raw
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p[:1].isupper()))  # drop union tags
        where = ".".join(str(p) for p in loc) or root
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise error(path, _line_of(text, raw, loc), f"{where}: {msg}") from None


def parse_plan(path: Path) -> Plan:
    plan, text, raw = load_located(path, Plan, "(plan)", PlanFileError)
    if plan.id != path.stem:
        raise PlanFileError(path, _line_of(text, raw, ("id",)), f"the plan id {plan.id!r} differs from the file name")
    return plan


def load_plans(folder: Path = PLANS_DIR) -> dict[str, Plan]:
    """Every plan of the folder, by id; raises PlanFileError on the first malformed file."""
    plans: dict[str, Plan] = {}
    for path in sorted(folder.glob("*.json")):
        plan = parse_plan(path)
        plans[plan.id] = plan
    if not plans:
        raise PlanFileError(folder, 0, "no plan file (*.json) found")
    return plans


@cache
def brand_type_codes() -> frozenset[str]:
    """Honour types that count as a brand honour for procurement priority (data/procurement.json)."""
    raw = json.loads((DATA_DIR / "procurement.json").read_text(encoding="utf-8"))
    return frozenset(str(c) for c in raw["brand_type_codes"])
