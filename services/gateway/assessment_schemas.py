"""The district assessment's response shapes (docs/assessment.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

from services.gateway.schemas import ReportRef

LineStatus = Literal["scored", "too_few_results", "no_data"]
TargetSource = Literal["district", "scheme", "plan"]


@dataclass(frozen=True)
class Document:
    """A document an assessment route answers instead of JSON: what it holds, and each `format`'s media
    type (the media types its 200 documents, and the Content-Type it answers with)."""

    what: str
    media_types: dict[str, str]


class AssessmentLine(BaseModel):
    """One indicator's part in a district's score for one year."""

    code: str
    name_zh: str
    name_en: str
    kind: str
    unit: str
    weight: float
    status: LineStatus = Field(description="scored; too_few_results (a pass rate under min_results); no_data")
    value: float | None
    target: float | None = Field(description="The target applied this year (a count's pro-rata share)")
    target_source: TargetSource = Field(description="Whose target: the district's own, the scheme's or the plan's")
    floor: float
    attainment: float | None = Field(description="clamp((value − floor) / (target − floor), 0, cap)")
    points: float | None = Field(description="weight × attainment; null when not judged")
    contribution: float | None = Field(description="full_marks × points ÷ the judged weights: adds up to base_score")
    penalty: float = Field(description="Points off for a deterioration since the year before")
    previous_value: float | None
    n: int | None = Field(description="Results behind a pass rate")
    passed: int | None
    wilson_95: tuple[float, float] | None
    report: ReportRef | None = Field(description="The district's report behind a reported value")
    why: str


class AssessmentBonus(BaseModel):
    code: str
    name_zh: str
    granted: int = Field(description="Honours of this count granted in the district during the year")
    points: float
    why: str


class DistrictAssessment(BaseModel):
    year: int
    district_code: str
    name_zh: str
    name_en: str
    ranked: bool = Field(description="false: too little was judged to score and rank the district")
    score: float | None = Field(description="base_score − penalties + bonus")
    rank: int | None = Field(description="1 = best; equal scores share a rank")
    previous_score: float | None
    previous_rank: int | None
    change: float | None = Field(description="score − previous_score")
    base_score: float | None
    penalties: float
    bonus: float
    judged_weight: float
    total_weight: float
    why: str
    indicators: list[AssessmentLine]
    bonuses: list[AssessmentBonus]


class AssessmentOut(BaseModel):
    plan: str
    scheme: str
    scheme_name_zh: str
    year: int
    as_of: date = Field(description="The data's date: the year's last day, or today in the current year")
    method: str
    districts: list[DistrictAssessment] = Field(description="Ranked districts by rank, then the unranked by code")


class DistrictAssessmentsOut(BaseModel):
    plan: str
    scheme: str
    district_code: str
    name_zh: str
    as_of: date
    method: str
    years: list[DistrictAssessment]
