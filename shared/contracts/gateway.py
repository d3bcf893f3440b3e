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
WARNING_ACKNOWLEDGED = "gateway.warning.acknowledged.v1"
WARNING_CLOSED = "gateway.warning.closed.v1"
WARNING_EVENTS = (WARNING_RAISED, WARNING_ACKNOWLEDGED, WARNING_CLOSED)

WarningKind = Literal["fail_rate_above_baseline", "repeated_final_fails", "listed_enterprise_fails"]
WarningState = Literal["open", "acknowledged", "closed"]


class WarningSnapshot(BaseModel):
    model_config = ConfigDict(extra="forbid")

    warning_id: str
    rule_id: str
    rule_set_version: str
    kind: WarningKind
    state: WarningState = Field(description="open (raised), acknowledged (someone handles it), closed")
    summary: str = Field(description="One line saying what was seen")
    product_category: str | None = None
    district_code: str | None = None
    uscc: str | None = None
    window_start: date = Field(description="First sampling day the evidence covers")
    window_end: date = Field(description="Last sampling day the evidence covers")
    evidence: dict[str, Any] = Field(description="The counts, baseline, statistic and result ids behind it")
    raised_at: datetime
    occurrence: int = Field(1, ge=1, description="1; 2 once the first of its condition was closed, …")
    version: int = Field(1, ge=1, description="The warning's version (its ETag): 1 raised, +1 per transition")
    acknowledged_by: str | None = Field(None, description="The token subject that acknowledged it")
    acknowledged_at: datetime | None = None
    acknowledged_note: str | None = None
    closed_by: str | None = Field(None, description="The token subject that closed it")
    closed_at: datetime | None = None
    closed_note: str | None = None


class WarningRaised(BaseModel):
    """An early-warning rule fired (docs/warnings.md)."""

    model_config = ConfigDict(extra="forbid")
    warning: WarningSnapshot


class WarningAcknowledged(BaseModel):
    """Someone took an open warning in hand (actor, time, note in the warning)."""

    model_config = ConfigDict(extra="forbid")
    warning: WarningSnapshot


class WarningClosed(BaseModel):
    """A warning was closed (actor, time, note in the warning): its condition may raise again."""

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
    EventType(
        WARNING_ACKNOWLEDGED,
        WarningAcknowledged,
        PRODUCER,
        "A warning was acknowledged: someone handles it (who, when, the note); it stays deduplicated.",
    ),
    EventType(
        WARNING_CLOSED,
        WarningClosed,
        PRODUCER,
        "A warning was closed (who, when, the note); the same condition may now raise a new warning.",
    ),
)
