"""What the credit service publishes (topic `<prefix>credit`, key = the enterprise's USCC).

Every blacklist event carries the entry's whole current state (`entry`), so consumers (awards,
gateway) keep the latest state by `entry.version` whatever they missed or got twice.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events import EventType

PRODUCER = "credit"
SOURCE = "/qualitycity/credit"

ENTRY_PROPOSED = "credit.blacklist_entry.proposed.v1"
ENTRY_LISTED = "credit.blacklist_entry.listed.v1"
ENTRY_REJECTED = "credit.blacklist_entry.rejected.v1"
REPAIR_APPLIED = "credit.blacklist_entry.repair_applied.v1"
ENTRY_REMOVED = "credit.blacklist_entry.removed.v1"
RATING_CHANGED = "credit.rating.changed.v1"
#: Every blacklist-entry event type; each payload is an `EntryEvent`.
ENTRY_EVENTS = (ENTRY_PROPOSED, ENTRY_LISTED, ENTRY_REJECTED, REPAIR_APPLIED, ENTRY_REMOVED)


class EntrySnapshot(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entry_id: str
    version: int
    uscc: str
    enterprise_name: str
    reason_category: str
    status: Literal["proposed", "listed", "rejected", "removed"]
    automatic: bool
    proposed_by: str
    proposed_at: datetime
    decided_by: str | None = None
    listed_on: date | None = None
    publish_until: date | None = Field(None, description="Last day of publication")
    removed_on: date | None = None
    removal_reason: Literal["expired", "repaired", "wrongful"] | None = None
    decision_no: str | None = Field(None, description="The decision document number (null on an automatic proposal)")
    deciding_authority: str
    legal_basis: str
    earliest_repair_on: date | None = None


class EntryEvent(BaseModel):
    """Every blacklist-entry event: the entry's whole state after the change."""

    model_config = ConfigDict(extra="forbid")
    entry: EntrySnapshot


class EntryProposed(EntryEvent):
    trigger_records: list[str] = Field(default_factory=list, description="For automatic proposals: the fails")


class EntryListed(EntryEvent):
    pass


class EntryRejected(EntryEvent):
    reason: str


class RepairApplied(EntryEvent):
    applied_by: str
    evidence_count: int


class EntryRemoved(EntryEvent):
    reason: Literal["expired", "repaired", "wrongful"]


class RatingChanged(BaseModel):
    model_config = ConfigDict(extra="forbid")
    uscc: str
    rating: Literal["A", "B", "C", "D"]
    previous: Literal["A", "B", "C", "D"] | None
    rule_set_version: str
    as_of: date
    score: float


CONTRACTS = (
    EventType(
        ENTRY_PROPOSED,
        EntryProposed,
        PRODUCER,
        "A blacklist entry was proposed by a credit officer, or automatically after repeated final fails.",
    ),
    EventType(
        ENTRY_LISTED,
        EntryListed,
        PRODUCER,
        "A different reviewer approved the proposal: the enterprise is listed and published.",
    ),
    EventType(
        ENTRY_REJECTED,
        EntryRejected,
        PRODUCER,
        "A reviewer rejected the proposal; the enterprise was never listed.",
    ),
    EventType(
        REPAIR_APPLIED,
        RepairApplied,
        PRODUCER,
        "A credit-repair application (信用修复) was filed for a listed entry; it awaits review.",
    ),
    EventType(
        ENTRY_REMOVED,
        EntryRemoved,
        PRODUCER,
        "A listed entry left the list: expired, repaired, or removed as wrongful.",
    ),
    EventType(
        RATING_CHANGED,
        RatingChanged,
        PRODUCER,
        "An enterprise's credit rating (A 守信 / B 基本守信 / C 失信 / D 严重失信) changed.",
    ),
)
