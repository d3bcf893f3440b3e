"""What the gateway publishes (topic `<prefix>gateway`): early warnings it raises from the events it consumes.

A warning event carries the warning's whole state, with the evidence behind it (the counts, the
baseline, the test statistic, the rows), so a subscriber needs no second call to judge it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events import EventType

PRODUCER = "gateway"
SOURCE = "/qualitycity/gateway"

WARNING_RAISED = "gateway.warning.raised.v1"

WarningKind = Literal["fail_rate_above_baseline", "repeated_final_fails", "listed_enterprise_fails"]


class WarningSnapshot(BaseModel):
    model_config = ConfigDict(extra="forbid")

    warning_id: str
    rule_id: str
    rule_set_version: str
    kind: WarningKind
    state: Literal["open"]
    summary: str = Field(description="One line saying what was seen")
    product_category: str | None = None
    district_code: str | None = None
    uscc: str | None = None
    window_start: date = Field(description="First sampling day the evidence covers")
    window_end: date = Field(description="Last sampling day the evidence covers")
    evidence: dict[str, Any] = Field(description="The counts, baseline, statistic and result ids behind it")
    raised_at: datetime


class WarningRaised(BaseModel):
    """An early-warning rule fired (docs/warnings.md)."""

    model_config = ConfigDict(extra="forbid")
    warning: WarningSnapshot


CONTRACTS = (
    EventType(
        WARNING_RAISED,
        WarningRaised,
        PRODUCER,
        "An early-warning rule fired on the sampling stream (a fail rate above its baseline, repeated final "
        "fails, a listed enterprise failing); the evidence is in the payload.",
    ),
)
