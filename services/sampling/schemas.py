"""Wire models of the sampling API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.sampling.domain import Conclusion, Sector
from shared.identifiers import USCC


class ResultIn(BaseModel):
    """A sampling-inspection result as an agency pushes it. The agency comes from the token."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"report_no": "QD-2014-000123", "uscc": "91370200163562681G", "sector": "food", "conclusion": "pass"}
            ]
        },
    )

    report_no: str = Field(min_length=1, max_length=64, description="The agency's report number (unique per agency)")
    uscc: USCC
    sector: Sector
    conclusion: Conclusion


class ResultOut(BaseModel):
    id: str
    agency_code: str
    report_no: str
    uscc: str
    sector: Sector
    conclusion: Conclusion
    retracted: bool
    recorded_at: datetime


class RowProblem(BaseModel):
    field: str
    reason: str


class RowOutcome(BaseModel):
    row: int = Field(description="1-based row number in the request")
    outcome: Literal["created", "duplicate", "conflict", "rejected"]
    id: str | None = None
    problems: list[RowProblem] = []


class BatchOut(BaseModel):
    received: int
    created: int
    duplicates: int
    rejected: int
    rows: list[RowOutcome]
