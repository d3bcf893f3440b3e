"""What the awards service publishes (topic `<prefix>awards`, subject and key = the holder id).

Every event carries the honour's whole state after the change (`honour`, an `HonourSnapshot`),
so a consumer keeps each honour's latest state by upserting on `honour.honour_id` when
`honour.version` is newer than what it holds, whatever it missed or got twice.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events import EventType

SubjectKind = Literal["product", "trademark", "service", "standard", "committee", "project", "industry"]

PRODUCER = "awards"
SOURCE = "/qualitycity/awards"

HONOUR_GRANTED = "awards.honour.granted.v1"
HONOUR_REVOKED = "awards.honour.revoked.v1"
HONOUR_EXPIRED = "awards.honour.expired.v1"
HONOUR_SUSPENDED = "awards.honour.suspended.v1"
HONOUR_REINSTATED = "awards.honour.reinstated.v1"
#: Every awards event type; each payload is a `HonourEvent`.
HONOUR_EVENTS = (HONOUR_GRANTED, HONOUR_REVOKED, HONOUR_EXPIRED, HONOUR_SUSPENDED, HONOUR_REINSTATED)


class Subject(BaseModel):
    """What the honour is about: a product, trademark, service, standard, committee, project or
    industry. A standard carries its number, title and the holder's role."""

    model_config = ConfigDict(extra="forbid")

    kind: SubjectKind
    name: str | None = Field(
        default=None, max_length=300, description="Product, trademark, service, project or industry"
    )
    number: str | None = Field(
        default=None, max_length=100, description="Standard no. (GB/T 19001-2016), trademark registration no., TC no."
    )
    title: str | None = Field(default=None, max_length=300, description="The standard's or committee's title")
    role: Literal["lead", "participant"] | None = Field(
        default=None, description="The holder's role in drafting a standard: lead (主导) or participant (参与)"
    )


class PublicHonour(BaseModel):
    """An honour as the public list (公示) shows it: every field but the internal ones."""

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


class HonourSnapshot(PublicHonour):
    """An honour as it stands after the change the event reports."""

    indicator_codes: list[str] = Field(description="The plan indicators this honour counts toward")


class HonourEvent(BaseModel):
    """Every awards event: the honour's whole state after the change."""

    model_config = ConfigDict(extra="forbid")
    honour: HonourSnapshot


class HonourGranted(HonourEvent):
    source: Literal["api", "import"] = Field(description="A single grant, or a row of a historical import")


class HonourRevoked(HonourEvent):
    reason: str
    revoked_on: date


class HonourExpired(HonourEvent):
    reason: Literal["validity_ended"] = "validity_ended"
    entry_id: str | None = Field(
        default=None, description="Set when it expired on the removal of the listing that suspended it"
    )


class HonourSuspended(HonourEvent):
    reason: Literal["blacklisted"] = "blacklisted"
    entry_id: str
    decision_no: str | None
    suspended_on: date


class HonourReinstated(HonourEvent):
    reason: Literal["blacklist_removed"] = "blacklist_removed"
    entry_id: str
    reinstated_on: date


CONTRACTS = (
    EventType(
        HONOUR_GRANTED,
        HonourGranted,
        PRODUCER,
        "An honour was granted (or imported from a historical registry); the snapshot is its state.",
    ),
    EventType(
        HONOUR_REVOKED,
        HonourRevoked,
        PRODUCER,
        "An honour was revoked (撤销), with a reason; it never counts from its revocation date.",
    ),
    EventType(
        HONOUR_EXPIRED,
        HonourExpired,
        PRODUCER,
        "An honour's validity ended (the expiry job, or the removal of a listing after its validity).",
    ),
    EventType(
        HONOUR_SUSPENDED,
        HonourSuspended,
        PRODUCER,
        "The holder was blacklisted: its active honour is suspended while the listing stands.",
    ),
    EventType(
        HONOUR_REINSTATED,
        HonourReinstated,
        PRODUCER,
        "The listing that suspended the honour was removed and the honour is still within validity.",
    ),
)
