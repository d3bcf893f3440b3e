"""What the credit service publishes (topic `<prefix>credit`, key = the enterprise's USCC).

Every blacklist event carries the entry's whole current state (`entry`), so consumers (awards,
gateway) keep the latest state by `entry.version` whatever they missed or got twice.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events import EventType

PRODUCER = "credit"
SOURCE = "/qualitycity/credit"

ENTRY_PROPOSED = "credit.blacklist_entry.proposed.v1"
ENTRY_LISTED = "credit.blacklist_entry.listed.v1"
ENTRY_REJECTED = "credit.blacklist_entry.rejected.v1"
REPAIR_APPLIED = "credit.blacklist_entry.repair_applied.v1"
ENTRY_REMOVED = "credit.blacklist_entry.removed.v1"
ENTRY_NOTICED = "credit.blacklist_entry.noticed.v1"
STATEMENT_RECEIVED = "credit.blacklist_entry.statement_received.v1"
RATING_CHANGED = "credit.rating.changed.v1"
#: Every blacklist-entry event type; each payload is an `EntryEvent`.
ENTRY_EVENTS = (
    ENTRY_PROPOSED,
    ENTRY_NOTICED,
    STATEMENT_RECEIVED,
    ENTRY_LISTED,
    ENTRY_REJECTED,
    REPAIR_APPLIED,
    ENTRY_REMOVED,
)
RECORD_RECORDED = "credit.record.recorded.v1"
RECORD_CORRECTED = "credit.record.corrected.v1"
RECORD_WITHDRAWN = "credit.record.withdrawn.v1"
#: Every event of a record sent by another authority; each payload is a `RecordEvent`.
RECORD_EVENTS = (RECORD_RECORDED, RECORD_CORRECTED, RECORD_WITHDRAWN)
RecordKind = Literal[
    "administrative_penalty",
    "upheld_complaint",
    "licence_suspension",
    "licence_revocation",
    "certification_withdrawal",
    "positive_record",
]


class EntrySnapshot(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entry_id: str
    version: int
    uscc: str
    enterprise_name: str
    reason_category: str
    status: Literal["proposed", "noticed", "in_review", "listed", "rejected", "removed"]
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
    noticed_on: date | None = Field(None, description="Due process: the day the enterprise was told (告知)")
    statement_deadline: date | None = Field(None, description="…and the last working day for its statement")


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


class EntryNoticed(EntryEvent):
    """Approved: the enterprise is told and may make a statement until `entry.statement_deadline`."""


class StatementReceived(EntryEvent):
    kind: Literal["statement", "hearing_request"]
    received_on: date


class RecordFields(BaseModel):
    """What names a record another authority sent and whom it is about: the event's snapshot and the
    credit API's record both start with these."""

    record_id: str
    version: int
    authority: str = Field(description="The sending authority system (its token's agency)")
    record_no: str = Field(description="The authority's own id of the record")
    kind: RecordKind
    status: Literal["active", "withdrawn"]
    uscc: str
    enterprise_name: str
    occurred_on: date


class RecordSnapshot(RecordFields):
    """A record another authority sent, at its current version (the whole record as sent in `details`)."""

    model_config = ConfigDict(extra="forbid")

    details: dict[str, Any]


class RecordEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    record: RecordSnapshot


class RecordRecorded(RecordEvent):
    pass


class RecordCorrected(RecordEvent):
    reason: str
    changed_fields: list[str]


class RecordWithdrawn(RecordEvent):
    reason: str


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
        ENTRY_NOTICED,
        EntryNoticed,
        PRODUCER,
        "Approved, and the enterprise told (告知): it may make a statement or ask for a hearing until the "
        "deadline (working days); the listing takes effect only after it.",
    ),
    EventType(
        STATEMENT_RECEIVED,
        StatementReceived,
        PRODUCER,
        "The enterprise made a statement or asked for a hearing (陈述申辩) in time: a reviewer decides.",
    ),
    EventType(
        ENTRY_LISTED,
        EntryListed,
        PRODUCER,
        "The enterprise is listed and published: on approval (no notice), after the statement period "
        "passed without a statement, or when a reviewer upheld the proposal over the statement.",
    ),
    EventType(
        ENTRY_REJECTED,
        EntryRejected,
        PRODUCER,
        "The proposal was rejected (by a reviewer, on the enterprise's statement, or by the system when its "
        "triggering records were withdrawn); the enterprise was never listed.",
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
        RECORD_RECORDED,
        RecordRecorded,
        PRODUCER,
        "Another authority sent a credit record (penalty, upheld complaint, licence or certification action, "
        "positive record).",
    ),
    EventType(RECORD_CORRECTED, RecordCorrected, PRODUCER, "The sending authority corrected its record."),
    EventType(RECORD_WITHDRAWN, RecordWithdrawn, PRODUCER, "The sending authority withdrew its record."),
    EventType(
        RATING_CHANGED,
        RatingChanged,
        PRODUCER,
        "An enterprise's credit rating (A 守信 / B 基本守信 / C 失信 / D 严重失信) changed.",
    ),
)
