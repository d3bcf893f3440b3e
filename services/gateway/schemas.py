"""The gateway's request and response shapes (documented in /docs; the dashboard reads these)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.gateway.progress import Progress
from shared.strict import Day, Instant, Number
from shared.text import Input

Status = Literal["achieved", "on_track", "acceleration_needed", "limited_progress", "deterioration", "no_data"]


class ProgressOut(BaseModel):
    status: Status
    reason: str
    base_year: int | None = None
    base_value: float | None = None
    current_year: int | None = None
    observed_growth: float | None = Field(None, description="Compound yearly growth from the base year")
    required_growth: float | None = Field(None, description="Yearly growth needed to reach the target by its year")
    progress_value: float | None = Field(None, description="observed / |required| (with a target), else observed")

    @model_validator(mode="before")
    @classmethod
    def _from_progress(cls, data: Any) -> Any:
        """A `progress.Progress` keeps its points and its growth whole; this shape names their parts."""
        if not isinstance(data, Progress):
            return data
        flat: dict[str, Any] = {"status": data.status, "reason": data.reason}
        for name, point in (("base", data.base), ("current", data.current)):
            if point is not None:
                flat |= {f"{name}_year": point.year, f"{name}_value": point.value}
        if (g := data.growth) is not None:
            flat |= {"observed_growth": g.observed, "required_growth": g.required, "progress_value": g.value}
        return flat


class ReportRef(BaseModel):
    report_id: str
    period_start: date
    period_end: date
    reporting_system: str
    evidence_ref: str
    reported_by: str
    reported_at: Instant


class SeriesPoint(BaseModel):
    year: int
    value: float
    n: int | None = None
    passed: int | None = None
    wilson_95: tuple[float, float] | None = None
    rows: str | None = Field(None, description="URL listing exactly the rows behind this value")
    report: ReportRef | None = None


class DistrictPoint(BaseModel):
    district_code: str
    value: float
    n: int | None = None
    passed: int | None = None
    wilson_95: tuple[float, float] | None = None
    rows: str


class DistrictYearPoint(BaseModel):
    """One cell of the district × year table: every district with a value in any year of the series,
    every year from the plan's base year to as_of's (that year read to as_of)."""

    district_code: str
    year: int
    value: float | None = Field(description="Rates: passed / n, null in a year without results; counts: the count")
    n: int | None = Field(default=None, description="Rates: results counted (0 in a year without results)")
    passed: int | None = None
    wilson_95: tuple[float, float] | None = Field(default=None, description="Rates: 95% Wilson score interval")
    rows: str = Field(description="URL listing exactly the rows behind this cell")


class Figure(BaseModel):
    code: str
    name_zh: str
    name_en: str
    section: str
    kind: Literal["min_rate", "exact_rate", "min_score", "cumulative_count", "qualitative"]
    unit: str
    target: float | None
    target_text: str | None
    due: date
    source: Literal["computed", "reported"]
    counting: Literal["granted_during", "active_at_end"] | None
    value: float | None = Field(description="Rates as ratios (0..1); counts; reported values in their unit")
    value_year: int | None = Field(description="The year the value describes (rates: year to as_of)")
    gap: float | None = Field(description="target - value: positive is a shortfall, negative beyond the target")
    n: int | None = Field(description="Rates: results counted")
    passed: int | None
    wilson_95: tuple[float, float] | None = Field(description="Rates: 95% Wilson score interval")
    status: Status
    progress: ProgressOut
    links: dict[str, str] = Field(description="`rows`: URL listing exactly the results, honours or reports behind")
    report: ReportRef | None = None


class FigureDetail(Figure):
    series: list[SeriesPoint]
    districts: list[DistrictPoint] = Field(description="Each district in the as_of year")
    district_years: list[DistrictYearPoint] = Field(
        description="District × year: every district, every year of the series (empty for reported indicators)"
    )


# The figure of each indicator source, as `attainment` builds it. Each is a `Figure` (the routes answer
# with `Figure` / `FigureDetail`, so the wire shape is one for all sources, with nulls where a source
# has nothing to say); the subclasses name what each source fills in. The series and districts stay
# empty unless the detail was asked for.


class _BuiltFigure(Figure):
    series: list[SeriesPoint] = Field(default_factory=list)
    districts: list[DistrictPoint] = Field(default_factory=list)
    district_years: list[DistrictYearPoint] = Field(default_factory=list)


class PassRateFigure(_BuiltFigure):
    """A pass rate: the latest year with results, its n, passed and Wilson interval; `links.rows`
    lists the results (absent while no result is counted)."""

    source: Literal["computed"] = "computed"
    counting: None = None


class CountFigure(_BuiltFigure):
    """An honour count on as_of by its counting rule; `links.rows` lists the honours counted."""

    source: Literal["computed"] = "computed"
    counting: Literal["granted_during", "active_at_end"]


class ReportedFigure(_BuiltFigure):
    """The latest report of the latest period; citywide only. `links.rows` lists the reports."""

    source: Literal["reported"] = "reported"
    counting: None = None


class Freshness(BaseModel):
    last_event_time: Instant | None = Field(description="Time of the last event applied (as its producer stamped it)")
    last_applied_at: Instant | None = Field(description="When the gateway applied it")
    lag_s: float | None = Field(description="last_applied_at - last_event_time: how far behind the producer")
    age_s: float | None = Field(description="now - last_applied_at")
    events_applied: int


class AttainmentOut(BaseModel):
    plan: str
    as_of: date
    district: str | None
    method: str = Field(description="The published status method (docs/attainment-method.md)")
    freshness: Freshness
    indicators: list[Figure]


class AttainmentDetailOut(BaseModel):
    plan: str
    as_of: date
    district: str | None
    method: str
    freshness: Freshness
    indicator: FigureDetail


class IndicatorReportIn(Input):
    model_config = ConfigDict(extra="forbid")

    plan: str = Field("qingdao-2012", examples=["qingdao-2012"])
    indicator: str = Field(examples=["expressway_good_road_rate"])
    period_start: Day = Field(examples=["2014-01-01"])
    period_end: Day = Field(examples=["2014-12-31"])
    value: Number = Field(description="In the indicator's unit: rates as ratios (0.984 for 98.4%)", examples=[0.984])
    reporting_system: str = Field(min_length=1, max_length=200, examples=["山东省交通运输厅公路养护管理系统"])
    evidence_ref: str = Field(min_length=1, max_length=500, examples=["鲁交公路〔2015〕3号 附表2"])
    note: str | None = Field(None, max_length=2000)
    district_code: str | None = Field(
        None,
        pattern=r"^\d{6}$",
        description="A district's own figure (district assessment); omitted: the whole city's",
        examples=["370212"],
    )

    @model_validator(mode="after")
    def _period(self) -> IndicatorReportIn:
        if self.period_end < self.period_start:
            raise ValueError("period_end is before period_start")
        return self


class IndicatorReportOut(BaseModel):
    report_id: str
    plan: str
    indicator: str
    period_start: date
    period_end: date
    value: float
    district_code: str | None = Field(description="null: the whole city's figure")
    reporting_system: str
    evidence_ref: str
    note: str | None
    reported_by: str
    reported_at: Instant


class ResultRow(BaseModel):
    result_id: str
    version: int
    uscc: str
    enterprise_name: str
    agency_code: str
    report_no: str
    level: str
    sector: str
    key_product: bool
    product_category: str
    product_name: str
    district_code: str
    sampling_date: date
    report_date: date
    conclusion: str
    state: str
    reinspection: str | None


class HonourRow(BaseModel):
    honour_id: str
    version: int
    type_code: str
    type_name_zh: str
    holder_kind: str
    holder_id: str
    holder_name: str
    district_code: str | None
    granted_on: date
    valid_until: date | None
    revoked_on: date | None
    state: str
    certificate_no: str
    granting_authority: str


class EntryRow(BaseModel):
    entry_id: str
    version: int
    uscc: str
    enterprise_name: str
    reason_category: str
    status: str
    listed_on: date | None
    publish_until: date | None
    removed_on: date | None
    removal_reason: str | None
    decision_no: str | None
    deciding_authority: str


class Identity(BaseModel):
    uscc: str
    name: str | None
    district_code: str | None


class YearCount(BaseModel):
    year: int = Field(description="The year of the sampling date")
    passed: int
    failed: int


class SamplingSummary(BaseModel):
    n: int
    passed: int
    pass_rate: float | None
    wilson_95: tuple[float, float] | None
    by_year: list[YearCount] = Field(description="Every result up to as_of, retracted ones left out, by year")
    recent_fails: list[ResultRow]


class RatingOut(BaseModel):
    rating: Literal["A", "B", "C", "D"]
    previous: str | None
    as_of: date
    score: float
    rule_set_version: str


class BlacklistStatus(BaseModel):
    listed: bool = Field(description="On the published list on as_of")
    standing: list[EntryRow]
    history: list[EntryRow]


class CreditRecordItem(BaseModel):
    """A record another authority sent, at its latest version as the change feed carries it."""

    record_id: str
    version: int
    authority: str = Field(description="The sending authority system: the record's source")
    record_no: str
    kind: str
    status: Literal["active", "withdrawn"]
    occurred_on: date
    details: dict[str, Any]


class HonoursOut(BaseModel):
    active: list[HonourRow]
    suspended: list[HonourRow]
    other: list[HonourRow] = Field(description="Revoked, expired or not yet granted on as_of")


class Eligibility(BaseModel):
    eligible: bool
    reasons: list[str]
    brand_type_codes: list[str] = Field(description="Honour types counted as brand honours (data/procurement.json)")


class CreditProfile(BaseModel):
    as_of: date
    identity: Identity
    sampling: SamplingSummary
    rating: RatingOut | None
    blacklist: BlacklistStatus
    honours: HonoursOut
    procurement_priority: Eligibility
    credit_records: list[CreditRecordItem] = Field(
        description="Records from other authorities (penalties, complaints, licence and certification actions, "
        "positive records) at their latest version, oldest first, with their source"
    )
    freshness: Freshness


class PriorityItem(BaseModel):
    uscc: str
    name: str
    brand_honours: int


class PriorityPage(BaseModel):
    as_of: date
    brand_type_codes: list[str]
    items: list[PriorityItem]
    next_cursor: str | None


class EnterpriseOut(BaseModel):
    uscc: str
    name: str
    district_code: str | None


class Change(BaseModel):
    cursor: str = Field(description="Pass as `after` to read what follows")
    event: dict[str, Any] = Field(description="The CloudEvents 1.0 envelope as applied")
    applied_at: Instant


class ChangesOut(BaseModel):
    items: list[Change]
    next_cursor: str | None = Field(description="The cursor of the last item (or the one sent): poll with it")


class PlanSummary(BaseModel):
    id: str
    name_zh: str
    name_en: str
    period_start: date
    period_end: date
    base_year: int
    indicators: int


class PlansOut(BaseModel):
    items: list[PlanSummary]
