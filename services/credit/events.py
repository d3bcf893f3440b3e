"""What the credit service publishes (topic `<prefix>credit`, key = the enterprise's USCC).

Every blacklist event carries the entry's whole current state (`entry`), so consumers (awards,
gateway) keep the latest state by `entry.version` whatever they missed or got twice.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events import registry

SOURCE = "/qualitycity/credit"


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


class EntryProposed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entry: EntrySnapshot
    trigger_records: list[str] = Field(default_factory=list, description="For automatic proposals: the fails")


class EntryListed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entry: EntrySnapshot


class EntryRejected(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entry: EntrySnapshot
    reason: str


class RepairApplied(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entry: EntrySnapshot
    applied_by: str
    evidence_count: int


class EntryRemoved(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entry: EntrySnapshot
    reason: Literal["expired", "repaired", "wrongful"]


class RatingChanged(BaseModel):
    model_config = ConfigDict(extra="forbid")
    uscc: str
    rating: Literal["A", "B", "C", "D"]
    previous: Literal["A", "B", "C", "D"] | None
    rule_set_version: str
    as_of: date
    score: float


ENTRY_PROPOSED = registry.register(
    "credit.blacklist_entry.proposed.v1",
    EntryProposed,
    service="credit",
    description="A blacklist entry was proposed by a credit officer, or automatically after repeated final fails.",
)
ENTRY_LISTED = registry.register(
    "credit.blacklist_entry.listed.v1",
    EntryListed,
    service="credit",
    description="A different reviewer approved the proposal: the enterprise is listed and published.",
)
ENTRY_REJECTED = registry.register(
    "credit.blacklist_entry.rejected.v1",
    EntryRejected,
    service="credit",
    description="A reviewer rejected the proposal; the enterprise was never listed.",
)
REPAIR_APPLIED = registry.register(
    "credit.blacklist_entry.repair_applied.v1",
    RepairApplied,
    service="credit",
    description="A credit-repair application (信用修复) was filed for a listed entry; it awaits review.",
)
ENTRY_REMOVED = registry.register(
    "credit.blacklist_entry.removed.v1",
    EntryRemoved,
    service="credit",
    description="A listed entry left the list: expired, repaired, or removed as wrongful.",
)
RATING_CHANGED = registry.register(
    "credit.rating.changed.v1",
    RatingChanged,
    service="credit",
    description="An enterprise's credit rating (A 守信 / B 基本守信 / C 失信 / D 严重失信) changed.",
)
