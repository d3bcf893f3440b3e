"""Wire models of the sampling API."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from services.sampling.domain import Conclusion, Level, Sector, State
from shared.examples import example
from shared.strict import Day, Flag, Instant
from shared.tabular import BulkReceipt
from shared.text import Input
from shared.uscc import USCC

Text64 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
DistrictCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]

EXAMPLE: dict[str, Any] = {
    "report_no": "QD-FJ-2014-000123",
    "level": "municipal",
    "sector": "food",
    "key_product": False,
    "product_category": "饮料",
    "product_name": "崂山矿泉水",
    "brand": "崂山",
    "model_spec": "550mL",
    "batch_no": "20140501A",
    "production_date": "2014-05-01",
    "uscc": "91370200163562681G",
    "enterprise_name": "青岛某饮品有限公司",
    "district_code": "370212",
    "sampled_unit": "青岛某超市",
    "sampling_date": "2014-05-10",
    "report_date": "2014-05-25",
    "conclusion": "fail",
    "nonconforming_items": [
        {
            "item": "菌落总数",
            "requirement": "≤100 CFU/mL",
            "measured": "350",
            "unit": "CFU/mL",
            "standard": "GB 19298-2014",
        }
    ],
}


class NonconformingItem(Input):
    item: Text200 = Field(description="The inspected item (检验项目)")
    requirement: Text200 = Field(description="What the standard requires (标准要求)")
    measured: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    unit: Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)] | None = None
    standard: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] = Field(
        description="The standard referred to, e.g. GB 2763-2021"
    )


class ResultFields(Input):
    """What an agency states about one sampled batch (the agency itself comes from the token)."""

    level: Level
    sector: Sector
    key_product: Flag = Field(False, description="制造业重要产品 (a key manufacturing product)")
    product_category: Text64
    product_name: Text200
    brand: Text64 | None = None
    model_spec: Text64 | None = None
    batch_no: Text64 | None = None
    production_date: Day | None = None
    uscc: USCC
    enterprise_name: Text200
    district_code: DistrictCode = Field(description="The producing enterprise's district; see GET /v1/regions")
    sampled_unit: Text200 | None = None
    sampling_date: Day
    report_date: Day
    conclusion: Conclusion
    nonconforming_items: list[NonconformingItem] = Field(default_factory=list, max_length=100)


class ResultIn(ResultFields):
    model_config = example(EXAMPLE)

    report_no: Text64 = Field(description="The agency's report number: unique per agency, the idempotency key")


class ArchiveResultIn(ResultIn):
    """A result from a bureau's archive, with what became of it (docs/archive-import.md)."""

    agency_code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)] | None = Field(
        None, description="The agency that reported it; default the token's agency"
    )
    reinspection_outcome: Literal["upheld", "overturned"] | None = Field(
        None, description="The re-inspection (复检) outcome, if the enterprise objected"
    )
    reinspection_report_no: Text64 | None = None
    reinspection_requested_on: date | None = Field(None, description="Within the objection window of report_date")
    reinspection_decided_on: date | None = None
    state: Literal["provisional", "final"] | None = Field(
        None, description="The final state as archived; checked against the dates (default: what they imply)"
    )


class ResultOut(BaseModel):
    id: str
    version: int
    agency_code: str
    report_no: str
    level: Level
    sector: Sector
    key_product: bool
    product_category: str
    product_name: str
    brand: str | None
    model_spec: str | None
    batch_no: str | None
    production_date: date | None
    uscc: str
    enterprise_name: str
    district_code: str
    sampled_unit: str | None
    sampling_date: date
    report_date: date
    conclusion: Conclusion = Field(
        description="The standing conclusion (a fail overturned on re-inspection reads pass)"
    )
    original_conclusion: Conclusion
    state: State
    objection_deadline: date | None
    reinspection: Literal["upheld", "overturned"] | None
    nonconforming_items: list[NonconformingItem]
    recorded_at: Instant
    updated_at: Instant


class Correction(Input):
    """A correction by the owning agency: the fields that change, and why."""

    reason: Text200
    changes: dict[str, Any] = Field(
        description="Fields of the result to change (any of the result's fields except report_no)",
        examples=[{"product_name": "崂山矿泉水（含气）"}],
    )


class Retraction(Input):
    reason: Text200


class ReinspectionIn(Input):
    outcome: Literal["upheld", "overturned"]
    reinspection_report_no: Text64
    requested_on: Day = Field(description="When the enterprise asked for the re-inspection (within the window)")
    decided_on: Day


class VersionOut(BaseModel):
    version: int
    change: Literal["recorded", "corrected", "retracted", "reinspected", "finalised"]
    reason: str | None
    actor: str
    agency: str | None = Field(
        None, description="The agency of whoever made this version: for a re-inspection, the re-inspecting agency"
    )
    at: Instant
    result: dict[str, Any]


class RowProblem(BaseModel):
    field: str
    reason: str


class RowOutcome(BaseModel):
    row: int = Field(description="1-based data row number in the request (a CSV header is not counted)")
    outcome: Literal["created", "duplicate", "conflict", "rejected"]
    id: str | None = None
    problems: list[RowProblem] = []


class BatchOut(BulkReceipt):
    rejected: int = Field(description="Rows refused for their content (problems name the fields)")
    conflicts: int = Field(description="Rows re-sending a stored report number with different content")
    atomic: bool
    rows: list[RowOutcome]


class PassRateGroup(BaseModel):
    key: dict[str, Any]
    n: int
    passed: int
    failed: int
    rate: float | None
    wilson_95: tuple[float, float] | None


class PassRates(BaseModel):
    group_by: list[str]
    include_provisional: bool
    n: int
    groups: list[PassRateGroup]


class Scorecard(BaseModel):
    agency_code: str
    submissions: int = Field(description="Rows received in single and batch requests")
    results: int = Field(description="Results recorded (not counting duplicates)")
    rejected_rows: int = Field(description="Rows refused for their content")
    conflict_rows: int = Field(description="Rows re-sending a stored report number with different content")
    duplicates: int
    corrections: int
    retractions: int
    fails: int
    overturned_fails: int
    median_days_sampling_to_report: float | None


class ArchiveImportOut(BaseModel):
    source_file: str
    received: int
    created: int
    duplicates: int
    conflicts: int = Field(description="Report numbers already recorded with other content")
    rejected: int
    atomic: bool
    rows: list[RowOutcome]


# ---------------------------------------------------------------- notices (公告)

ResultId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=36)]
NOTICE_MAX_RESULTS = 500


class NoticeIn(Input):
    """A notice (公告) publishing final fails: its publisher is the token's agency, or the bureau."""

    model_config = example(
        {
            "notice_no": "青质监公告〔2014〕12号",
            "notice_date": "2014-06-30",
            "title": "2014年第二季度产品质量监督抽查不合格产品公告",
            "result_ids": ["0190b1c2-7a3e-7cc1-9a2b-3c4d5e6f7a8b"],
        }
    )

    notice_no: Text64 = Field(description="The notice's number (公告编号): unique")
    notice_date: Day = Field(description="The day the notice is dated (not after today)")
    title: Text200
    result_ids: list[ResultId] = Field(
        min_length=1, max_length=NOTICE_MAX_RESULTS, description="The final fails it publishes (each in one notice)"
    )


class NoticeCorrection(Input):
    """A correction of a published notice by its publisher: what changes, and why (the number stays)."""

    reason: Text200
    notice_date: Day | None = None
    title: Text200 | None = None
    result_ids: list[ResultId] | None = Field(None, min_length=1, max_length=NOTICE_MAX_RESULTS)


class NoticeResult(BaseModel):
    """A result a notice cites, as it stands now (a result retracted since leaves the public list)."""

    result_id: str
    agency_code: str
    report_no: str
    enterprise_name: str
    product_name: str
    state: State
    conclusion: Conclusion


class NoticeVersionOut(BaseModel):
    version: int
    change: Literal["published", "corrected"]
    reason: str | None
    actor: str
    agency: str | None
    at: Instant
    notice: dict[str, Any] = Field(description="The notice at that version: number, date, title, result ids")


class NoticeOut(BaseModel):
    id: str
    version: int
    notice_no: str
    notice_date: date
    title: str
    publisher: str | None = Field(description="The publishing agency; null: the bureau")
    published_at: Instant
    updated_at: Instant
    results: list[NoticeResult]
    history: list[NoticeVersionOut] | None = Field(None, description="Every version, oldest first (one notice)")
