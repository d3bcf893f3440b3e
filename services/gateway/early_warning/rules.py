"""Warning rules as data: one versioned file, validated when the gateway starts (docs/warnings.md).

A malformed file stops the gateway at start, naming the file and the line, like a plan file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.gateway.plans import load_located

RULES_DIR = Path(__file__).parents[1] / "warning_rules"
DEFAULT_RULES = RULES_DIR / "qingdao-warnings.json"


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{2,63}$")
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)


class FailRateRule(_Rule):
    """A group's fail rate in a calendar quarter against its own preceding quarters."""

    kind: Literal["fail_rate_above_baseline"]
    group_by: list[Literal["product_category", "district_code"]] = Field(min_length=1, max_length=2)
    baseline_quarters: int = Field(ge=1, le=12)
    alpha: float = Field(gt=0, lt=0.5, description="False-alarm bound per group and quarter (all looks together)")
    checkpoints: list[int] = Field(min_length=1, max_length=16, description="Window sizes n at which to look")
    min_baseline_n: int = Field(ge=1)
    min_window_fails: int = Field(ge=1)
    min_ratio: float = Field(ge=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> FailRateRule:
        if len(set(self.group_by)) != len(self.group_by):
            raise ValueError("group_by names a field twice")
        if self.checkpoints != sorted(set(self.checkpoints)) or self.checkpoints[0] < 1:
            raise ValueError("checkpoints must be positive and strictly increasing")
        return self


class RepeatedFailsRule(_Rule):
    """An enterprise's final fails of one product category within a window of days."""

    kind: Literal["repeated_final_fails"]
    min_fails: int = Field(ge=2)
    window_days: int = Field(ge=1, le=3660)


class ListedFailsRule(_Rule):
    """A new fail of an enterprise that is blacklisted (or holds a suspended honour)."""

    kind: Literal["listed_enterprise_fails"]
    include_suspended_honours: bool


Rule = Annotated[FailRateRule | RepeatedFailsRule | ListedFailsRule, Field(discriminator="kind")]


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule_set: str = Field(min_length=1)
    version: str = Field(min_length=1, description="Changes whenever a rule changes; every warning names it")
    description_zh: str
    description_en: str
    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> RuleSet:
        ids = [r.id for r in self.rules]
        if len(set(ids)) != len(ids):
            raise ValueError(f"rule ids must be unique: {sorted(i for i in ids if ids.count(i) > 1)}")
        return self

    def of_kind(self, kind: type[_Rule]) -> list[Rule]:
        return [r for r in self.rules if isinstance(r, kind)]


def load_rules(path: Path = DEFAULT_RULES) -> RuleSet:
    """The rule set of the file; raises DataFileError (file and line) when it cannot be used."""
    rules, _, _ = load_located(path, RuleSet, "(rule set)")
    return rules
