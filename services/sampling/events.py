"""What the sampling service publishes (topic `<prefix>sampling`, key = the enterprise's USCC)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from shared.events import registry

SOURCE = "/qualitycity/sampling"


class ResultRecorded(BaseModel):
    model_config = ConfigDict(extra="forbid")

    result_id: str
    agency_code: str
    report_no: str
    uscc: str
    sector: str
    conclusion: str
    recorded_at: datetime


RESULT_RECORDED = registry.register(
    "sampling.result.recorded.v1",
    ResultRecorded,
    service="sampling",
    description="An inspection agency recorded a sampling-inspection result.",
)
