"""Request and response bodies of the awards API."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.awards.domain import HonourType
from shared.contracts.awards import HonourSnapshot, PublicHonour, Subject
from shared.examples import example
from shared.strict import Day, Instant
from shared.tabular import BulkReceipt
from shared.text import Input


class GrantIn(Input):
    model_config = example(
        {
            "type_code": "B5",
            "holder_kind": "enterprise",
            "holder_id": "91370200163562681G",
            "holder_name": "青岛某电器股份有限公司",
            "subject": {"kind": "product", "name": "滚筒洗衣机"},
            "granted_on": "2012-12-20",
            "certificate_no": "SDMP-2012-0001",
        }
    )

    type_code: str = Field(min_length=1, max_length=16, description="A code from GET /v1/honour-types")
    holder_kind: Literal["enterprise", "region", "person", "organisation"]
    holder_id: str = Field(
        min_length=1,
        max_length=64,
        description="USCC (enterprise, organisation), division code (region), registry id (person)",
    )
    # 200 like every other enterprise name in the suite: credit and the gateway store the holder's name
    # in 200 characters, so a longer one accepted here would fail in their consumers.
    holder_name: str = Field(min_length=1, max_length=200)
    district_code: str | None = Field(default=None, description="The holder's district, if not implied by its id")
    subject: Subject | None = None
    granted_on: Day
    valid_until: Day | None = Field(default=None, description="Last day of validity; default from the type's validity")
    granting_authority: str | None = Field(
        default=None, max_length=200, description="Default: the type's usual authority"
    )
    certificate_no: str = Field(min_length=1, max_length=100, description="Unique within the type")


class RevokeIn(Input):
    reason: str = Field(min_length=1, max_length=2000)
    revoked_on: Day | None = Field(default=None, description="Effective date; default today")


class SuspensionOut(BaseModel):
    entry_id: str
    decision_no: str | None
    suspended_on: date
    reinstated_on: date | None


class HonourOut(HonourSnapshot):
    model_config = ConfigDict(extra="forbid")

    revoked_on: date | None
    revoke_reason: str | None
    suspensions: list[SuspensionOut]
    source: Literal["api", "import"]
    created_at: Instant
    updated_at: Instant


class PublicHonourOut(PublicHonour):
    """What the public list (公示) shows: no internal fields."""

    # A response a client may read with a later version of the schema: fields added later are no error.
    model_config = ConfigDict(extra="ignore")


# A catalog entry is answered as the domain holds it; the subclass keeps the API's schema name.
class HonourTypeOut(HonourType): ...


class CatalogOut(BaseModel):
    version: str
    types: list[HonourTypeOut]


class RowProblem(BaseModel):
    field: str
    reason: str
    type: str | None = Field(default=None, description="The problem type the same error gets on a single grant")


class RowOutcome(BaseModel):
    row: int = Field(description="1-based data row number (the CSV header is not counted)")
    outcome: Literal["created", "duplicate", "rejected"]
    honour_id: str | None = None
    problems: list[RowProblem] = []


class ImportOut(BulkReceipt):
    rejected: int
    rows: list[RowOutcome]


class TypeCount(BaseModel):
    type_code: str
    type_name_zh: str
    indicator_code: str
    granted_during: int = Field(description="Granted within the period and not revoked by its end")
    active_at_end: int = Field(
        description="Active on the period's last day: within validity, not revoked, "
        "not suspended (an honour suspended at the end is not active)"
    )


class IndicatorCount(BaseModel):
    indicator_code: str
    type_codes: list[str]
    granted_during: int
    active_at_end: int


class CountsOut(BaseModel):
    period_start: date
    period_end: date
    district_code: str | None
    by_type: list[TypeCount]
    by_indicator: list[IndicatorCount]
