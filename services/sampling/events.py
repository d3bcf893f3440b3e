"""What the sampling service publishes (topic `<prefix>sampling`, key = the enterprise's USCC).

Every event carries the result's whole current state (`result`, a `ResultSnapshot`), so a
consumer keeps "each result's latest state" by upserting on `result.result_id` when
`result.version` is newer than what it holds, whatever events it missed or got twice.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events import registry

SOURCE = "/qualitycity/sampling"

ResultState = Literal["provisional", "final", "retracted"]


class ResultSnapshot(BaseModel):
    """A result as it stands after the change the event reports."""

    model_config = ConfigDict(extra="forbid")

    result_id: str
    version: int = Field(description="1 when recorded, +1 at each change")
    agency_code: str
    report_no: str
    level: Literal["national", "provincial", "municipal", "district"]
    sector: Literal["manufacturing", "agricultural", "food", "engineering"]
    key_product: bool
    product_category: str
    product_name: str
    brand: str | None = None
    uscc: str
    enterprise_name: str
    district_code: str
    sampling_date: date
    report_date: date
    conclusion: Literal["pass", "fail"] = Field(
        description="The standing conclusion: a fail overturned on re-inspection reads pass"
    )
    original_conclusion: Literal["pass", "fail"]
    state: ResultState = Field(description="provisional: a fail whose objection window is open; final; retracted")
    objection_deadline: date | None = Field(None, description="Last day a re-inspection may be requested (fails)")
    reinspection: Literal["upheld", "overturned"] | None = None
    nonconforming_count: int
    recorded_at: datetime


class ResultRecorded(BaseModel):
    model_config = ConfigDict(extra="forbid")
    result: ResultSnapshot


class ResultCorrected(BaseModel):
    model_config = ConfigDict(extra="forbid")
    result: ResultSnapshot
    reason: str
    changed_fields: list[str]


class ResultRetracted(BaseModel):
    model_config = ConfigDict(extra="forbid")
    result: ResultSnapshot
    reason: str


class ResultReinspected(BaseModel):
    model_config = ConfigDict(extra="forbid")
    result: ResultSnapshot
    outcome: Literal["upheld", "overturned"]
    decided_on: date
    reinspection_report_no: str


class ResultFinalised(BaseModel):
    model_config = ConfigDict(extra="forbid")
    result: ResultSnapshot


RESULT_RECORDED = registry.register(
    "sampling.result.recorded.v1",
    ResultRecorded,
    service="sampling",
    description="An inspection agency recorded a sampling-inspection result (a fail starts provisional).",
)
RESULT_CORRECTED = registry.register(
    "sampling.result.corrected.v1",
    ResultCorrected,
    service="sampling",
    description="The owning agency corrected a result, with a reason; the snapshot is the corrected result.",
)
RESULT_RETRACTED = registry.register(
    "sampling.result.retracted.v1",
    ResultRetracted,
    service="sampling",
    description="The owning agency retracted a result, with a reason; it no longer counts anywhere.",
)
RESULT_REINSPECTED = registry.register(
    "sampling.result.reinspected.v1",
    ResultReinspected,
    service="sampling",
    description="A re-inspection (复检) requested within the objection window upheld or overturned a fail; "
    "either way the result is now final.",
)
RESULT_FINALISED = registry.register(
    "sampling.result.finalised.v1",
    ResultFinalised,
    service="sampling",
    description="A provisional fail's objection window closed without a re-inspection: the fail is final.",
)
