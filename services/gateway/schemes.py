"""District assessment schemes (考核方案) as data: each plan file may hold several
(`assessment_schemes`), validated with the plan at start. The method: docs/assessment.md."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.regions import load_regions

if TYPE_CHECKING:
    from services.gateway.plans import Indicator

#: The scoring methods a scheme may name; one so far (docs/assessment.md).
Method = Literal["capped_attainment"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SchemeIndicator(_Strict):
    code: str = Field(description="An indicator of the plan that counts for districts")
    weight: float = Field(gt=0, description="Its share of the full marks (the score is normalised by the weights)")
    target: float | None = Field(
        None, description="The district target when it differs from the plan's (needed for counts and qualitative)"
    )
    district_targets: dict[str, float] = Field(
        default_factory=dict, description="Division code -> that district's own target"
    )
    floor: float = Field(0.0, description="The value that earns no points: points grow linearly from it to the target")

    def target_for(self, district: str, plan_target: float | None) -> tuple[float | None, str]:
        """The target that applies to a district, and whose it is: the district's, the scheme's or the plan's."""
        if district in self.district_targets:
            return self.district_targets[district], "district"
        if self.target is not None:
            return self.target, "scheme"
        return plan_target, "plan"


class SchemeBonus(_Strict):
    code: str = Field(description="An honour count of the plan counted `granted_during`")
    points_each: float = Field(gt=0)
    max_points: float = Field(gt=0)


class AssessmentScheme(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,63}$")
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    method: Method = "capped_attainment"
    full_marks: float = Field(100.0, gt=0)
    cap: float = Field(1.0, ge=1.0, le=2.0, description="The most attainment one indicator can earn")
    min_results: int = Field(30, ge=1, description="Fewer results in a district and year: a pass rate is not judged")
    min_judged_share: float = Field(
        0.6, gt=0, le=1, description="Judged weights below this share of all: no score, no rank"
    )
    deterioration_penalty: float = Field(0.0, ge=0, description="Points off per indicator that deteriorated")
    indicators: list[SchemeIndicator] = Field(min_length=1)
    bonuses: list[SchemeBonus] = Field(default_factory=list)

    @property
    def total_weight(self) -> float:
        return sum(i.weight for i in self.indicators)

    def check_against(self, indicators: Mapping[str, Indicator]) -> None:
        """What only the plan can tell: every code is its indicator, and targets fit their kind."""
        regions = load_regions()
        seen: set[str] = set()
        for i in self.indicators:
            ind = indicators.get(i.code)
            if ind is None:
                raise ValueError(f"scheme {self.id}: {i.code!r} is not an indicator of the plan")
            if i.code in seen:
                raise ValueError(f"scheme {self.id}: {i.code!r} appears twice")
            seen.add(i.code)
            counted = ind.kind == "cumulative_count" or ind.kind == "qualitative"
            if counted and i.target is None:
                raise ValueError(f"scheme {self.id}: {i.code} needs a district 'target' (the plan's is the city's)")
            if i.target is None and ind.target is None:
                raise ValueError(f"scheme {self.id}: {i.code} has no target in the plan: give one")
            default = i.target if i.target is not None else ind.target
            targets = [t for t in (default, *i.district_targets.values()) if t is not None]
            if ind.is_rate and not all(0 <= t <= 1 for t in (*targets, i.floor)):
                raise ValueError(f"scheme {self.id}: {i.code} is a rate: targets and floor lie in [0, 1]")
            if any(t <= i.floor for t in targets):
                raise ValueError(f"scheme {self.id}: {i.code}'s floor must lie below every target")
            for code in i.district_targets:
                region = regions.find(code)
                if region is None or not region.is_district:
                    raise ValueError(f"scheme {self.id}: {code} is not a district code (see GET /v1/regions)")
        for b in self.bonuses:
            ind = indicators.get(b.code)
            if ind is None or ind.counting != "granted_during":
                raise ValueError(f"scheme {self.id}: bonus {b.code!r} must be an honour count counted granted_during")
