"""Request and answer bodies of the subscriptions (webhooks)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints

from shared.contracts import registry
from shared.contracts.credit import ENTRY_LISTED
from shared.contracts.gateway import WARNING_RAISED, WarningKind
from shared.examples import example

#: The event types a subscription may name: the catalog's (declared so clients and tests see them).
#: What a subscription may name, sorted by name. A batch type is not among them: the feed holds the single
#: events it stands for (shared/contracts/sampling.py), so a subscription to it would never be served.
CATALOG_TYPES: list[JsonValue] = [t.name for t in registry.types() if t.expands_to is None]
#: The USCC filter's limit (a procurement system watching its suppliers).
MAX_SUBJECTS = 10_000
#: A day's overlap by default when a secret is rotated; at most a week.
DEFAULT_OVERLAP_S = 86_400
MAX_OVERLAP_S = 7 * 86_400


class SubscriptionFilters(BaseModel):
    """Narrow the delivered events further (each absent filter: no narrowing)."""

    model_config = ConfigDict(extra="forbid")

    districts: list[Annotated[str, StringConstraints(pattern=r"^\d{6}$")]] | None = Field(
        None,
        min_length=1,
        max_length=500,
        description="Only events whose district (division code) is listed; events without one "
        "(credit decisions) are then not delivered",
    )
    honour_types: list[Annotated[str, StringConstraints(min_length=1, max_length=50)]] | None = Field(
        None, min_length=1, max_length=500, description="Honour events only of these types (GET /v1/honour-types)"
    )
    warning_kinds: list[WarningKind] | None = Field(None, min_length=1, description="Warnings only of these kinds")


class SubscriptionIn(BaseModel):
    model_config = example(
        {
            "url": "https://procurement.example.gov.cn/hooks/qualitycity",
            "event_types": [ENTRY_LISTED, WARNING_RAISED],
            "subjects": ["91370200163562681G"],
        },
        extra="forbid",
    )

    url: str = Field(min_length=1, max_length=2000, description="The callback; https in production mode")
    event_types: list[str] = Field(
        min_length=1,
        max_length=100,
        description="Event types of the catalog (docs/event-catalog.md) to deliver",
        json_schema_extra={"items": {"type": "string", "enum": CATALOG_TYPES}},
    )
    subjects: list[str] | None = Field(
        None,
        max_length=MAX_SUBJECTS,
        description="Only events about these USCCs (or holder ids, districts for warnings); all when absent",
    )
    filters: SubscriptionFilters | None = None
    description: str | None = Field(None, max_length=500)


class SubscriptionOut(BaseModel):
    subscription_id: str
    url: str
    event_types: list[str]
    subjects: list[str] | None
    filters: SubscriptionFilters | None = None
    description: str | None = None
    state: Literal["active", "disabled"]
    disabled_reason: str | None = Field(None, description="Why deliveries stopped (the owner sees it here)")
    disabled_at: datetime | None = None
    failing_since: datetime | None = Field(None, description="First failure of the current run of failures")
    cursor: str = Field(description="The change-feed position fanned out so far (a `/v1/changes` cursor)")
    previous_secret_expires_at: datetime | None = Field(
        None, description="After a rotation: the replaced secret also signs deliveries until then"
    )
    created_at: datetime


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(description="The signing secret (whsec_…): shown this once, keep it")


class DeliveryOut(BaseModel):
    delivery_id: int
    event_id: str = Field(description="Also the `webhook-id` header: the receiver's de-duplication key")
    event_type: str
    state: Literal["pending", "delivered", "superseded"]
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status: int | None = Field(None, description="The receiver's HTTP status (its body is never kept)")
    last_error: str | None
    delivered_at: datetime | None


class ReplayOut(BaseModel):
    subscription_id: str
    from_cursor: str | None
    superseded: int = Field(description="Pending deliveries replaced by the replay")


class SecretRotated(BaseModel):
    subscription_id: str
    secret: str = Field(description="The new signing secret (whsec_…): shown this once, keep it")
    previous_secret_expires_at: datetime | None = Field(
        description="Until then every delivery carries a signature by the replaced secret as well "
        "(null: no overlap, the replaced secret signs nothing more)"
    )


class PingOut(BaseModel):
    webhook_id: str = Field(description="The test event's id (its `webhook-id` header)")
    ok: bool = Field(description="The receiver answered 2xx")
    status: int | None = Field(description="The receiver's HTTP status (its body is never kept)")
    error: str | None = Field(description="Why it failed: the status, a timeout, a refused address…")
    elapsed_ms: float
