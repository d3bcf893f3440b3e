"""What the awards service publishes (topic `<prefix>awards`, subject and key = the holder id),
and the credit events it consumes.

Every event carries the honour's whole state after the change (`honour`, an `HonourSnapshot`),
so a consumer keeps each honour's latest state by upserting on `honour.honour_id` when
`honour.version` is newer than what it holds, whatever it missed or got twice.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.awards.domain import Subject
from shared.events import registry

SOURCE = "/qualitycity/awards"


class HonourSnapshot(BaseModel):
    """An honour as it stands after the change the event reports."""

    model_config = ConfigDict(extra="forbid")

    honour_id: str
    version: int = Field(description="1 when granted, +1 at each change")
    type_code: str = Field(description="The catalog's code (GET /v1/honour-types)")
    type_name_zh: str
    holder_kind: Literal["enterprise", "region", "person", "organisation"]
    holder_id: str = Field(description="USCC for enterprises and organisations, division code for regions")
    holder_name: str
    district_code: str | None
    subject: Subject | None
    granted_on: date
    valid_until: date | None = Field(description="Last day of validity; null = no fixed term")
    state: Literal["active", "suspended", "revoked", "expired"]
    certificate_no: str
    granting_authority: str
    indicator_codes: list[str] = Field(description="The plan indicators this honour counts toward")


class HonourGranted(BaseModel):
    model_config = ConfigDict(extra="forbid")
    honour: HonourSnapshot
    source: Literal["api", "import"] = Field(description="A single grant, or a row of a historical import")


class HonourRevoked(BaseModel):
    model_config = ConfigDict(extra="forbid")
    honour: HonourSnapshot
    reason: str
    revoked_on: date


class HonourExpired(BaseModel):
    model_config = ConfigDict(extra="forbid")
    honour: HonourSnapshot
    reason: Literal["validity_ended"] = "validity_ended"
    entry_id: str | None = Field(
        default=None, description="Set when it expired on the removal of the listing that suspended it"
    )


class HonourSuspended(BaseModel):
    model_config = ConfigDict(extra="forbid")
    honour: HonourSnapshot
    reason: Literal["blacklisted"] = "blacklisted"
    entry_id: str
    decision_no: str | None
    suspended_on: date


class HonourReinstated(BaseModel):
    model_config = ConfigDict(extra="forbid")
    honour: HonourSnapshot
    reason: Literal["blacklist_removed"] = "blacklist_removed"
    entry_id: str
    reinstated_on: date


HONOUR_GRANTED = registry.register(
    "awards.honour.granted.v1",
    HonourGranted,
    service="awards",
    description="An honour was granted (or imported from a historical registry); the snapshot is its state.",
)
HONOUR_REVOKED = registry.register(
    "awards.honour.revoked.v1",
    HonourRevoked,
    service="awards",
    description="An honour was revoked (撤销), with a reason; it never counts from its revocation date.",
)
HONOUR_EXPIRED = registry.register(
    "awards.honour.expired.v1",
    HonourExpired,
    service="awards",
    description="An honour's validity ended (the expiry job, or the removal of a listing after its validity).",
)
HONOUR_SUSPENDED = registry.register(
    "awards.honour.suspended.v1",
    HonourSuspended,
    service="awards",
    description="The holder was blacklisted: its active honour is suspended while the listing stands.",
)
HONOUR_REINSTATED = registry.register(
    "awards.honour.reinstated.v1",
    HonourReinstated,
    service="awards",
    description="The listing that suspended the honour was removed and the honour is still within validity.",
)

# The credit service's events we consume: type strings and payload dicts, never its code.
BLACKLIST_LISTED = "credit.blacklist_entry.listed.v1"
BLACKLIST_REMOVED = "credit.blacklist_entry.removed.v1"


class BlacklistEntry(BaseModel):
    """The part of the credit service's `data["entry"]` we rely on; other fields are ignored so the
    producer can add fields without breaking us."""

    model_config = ConfigDict(extra="ignore")

    entry_id: str
    version: int = 1
    uscc: str
    enterprise_name: str = ""
    decision_no: str | None = None
    listed_on: date | None = None  # null only before listing; a listed event carries it
    publish_until: date | None = None
    removed_on: date | None = None
    removal_reason: str | None = None
