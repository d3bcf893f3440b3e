"""What the sampling service publishes (topic `<prefix>sampling`, key = the enterprise's USCC).

Every event carries the result's whole current state (`result`, a `ResultSnapshot`), so a
consumer keeps "each result's latest state" by upserting on `result.result_id` when
`result.version` is newer than what it holds, whatever events it missed or got twice.

In the embedded suite a request that records several results at once publishes them as
`sampling.result_batch.recorded.v1` events (up to `BATCH_SIZE` snapshots each): one outbox row and one
inbox row per batch instead of per result. Every consumer of the suite expands such an event into one
`sampling.result.recorded.v1` per snapshot (`expand_batch`, run by `shared.consumer`), so handlers, the
change feed and webhooks see single results. The in-process bus delivers the outbox in order, so a
result's later events come after its batch; over Kafka bulk results go as single events keyed by USCC
(one enterprise's events in one partition), never as batches. A batch is one event: a snapshot its
contract refuses sets the whole batch aside (quarantine), and a replay applies the whole batch.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events import Envelope, EventType

PRODUCER = "sampling"
SOURCE = "/qualitycity/sampling"

RESULT_RECORDED = "sampling.result.recorded.v1"
RESULT_CORRECTED = "sampling.result.corrected.v1"
RESULT_RETRACTED = "sampling.result.retracted.v1"
RESULT_REINSPECTED = "sampling.result.reinspected.v1"
RESULT_FINALISED = "sampling.result.finalised.v1"
RESULT_BATCH_RECORDED = "sampling.result_batch.recorded.v1"
#: Snapshots per batch event: ≈ 350 kB of JSON, well under Kafka's 1 MB record limit.
BATCH_SIZE = 500
#: Every sampling event type; each payload is a `ResultEvent`.
RESULT_EVENTS = (RESULT_RECORDED, RESULT_CORRECTED, RESULT_RETRACTED, RESULT_REINSPECTED, RESULT_FINALISED)

ResultState = Literal["provisional", "final", "retracted"]


class ResultSnapshot(BaseModel):
    """A result as it stands after the change the event reports."""

    model_config = ConfigDict(extra="forbid")

    result_id: str
    version: int = Field(description="1 when recorded, +1 at each change")
    agency_code: str
    report_no: str
    level: Literal["national", "provincial", "municipal", "district"]
    sector: Literal["manufacturing", "agricultural", "food", "engineering"]
    key_product: bool
    product_category: str
    product_name: str
    brand: str | None = None
    uscc: str
    enterprise_name: str
    district_code: str
    sampling_date: date
    report_date: date
    conclusion: Literal["pass", "fail"] = Field(
        description="The standing conclusion: a fail overturned on re-inspection reads pass"
    )
    original_conclusion: Literal["pass", "fail"]
    state: ResultState = Field(description="provisional: a fail whose objection window is open; final; retracted")
    objection_deadline: date | None = Field(None, description="Last day a re-inspection may be requested (fails)")
    reinspection: Literal["upheld", "overturned"] | None = None
    nonconforming_count: int
    recorded_at: datetime


class ResultEvent(BaseModel):
    """Every sampling event: the result's whole state after the change."""

    model_config = ConfigDict(extra="forbid")
    result: ResultSnapshot


class ResultRecorded(ResultEvent):
    pass


class ResultCorrected(ResultEvent):
    reason: str
    changed_fields: list[str]


class ResultRetracted(ResultEvent):
    reason: str


class ResultReinspected(ResultEvent):
    outcome: Literal["upheld", "overturned"]
    decided_on: date
    reinspection_report_no: str


class ResultFinalised(ResultEvent):
    pass


class ResultBatchRecorded(BaseModel):
    """Several results recorded by one request: each snapshot as a `ResultRecorded` would carry it."""

    model_config = ConfigDict(extra="forbid")
    results: list[ResultSnapshot] = Field(min_length=1, max_length=BATCH_SIZE)


def item_id(batch_id: str, result_id: str) -> str:
    """A batch item's event id, `uuid5(batch id, result_id)`: derived, so a redelivered batch expands to
    the same ids."""
    return _uuid5(uuid.UUID(batch_id).bytes, result_id)


def _uuid5(namespace: bytes, name: str) -> str:
    # uuid.uuid5's own steps without its UUID object (a third of its cost, on every result of a bulk
    # ingest in every consumer); a unit test holds it to uuid.uuid5.
    h = bytearray(hashlib.sha1(namespace + name.encode()).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x50
    h[8] = (h[8] & 0x3F) | 0x80
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def expand_batch(envelope: Envelope, payload: BaseModel) -> list[tuple[Envelope, BaseModel]]:
    """A `ResultBatchRecorded` as the `ResultRecorded` events it stands for, in order: each with its
    result's USCC as subject, the batch's time, and its snapshot as sent (the change feed keeps it)."""
    assert isinstance(payload, ResultBatchRecorded)
    raw: list[dict[str, Any]] = envelope.data["results"]
    namespace = uuid.UUID(envelope.id).bytes
    return [
        (
            Envelope(
                type=RESULT_RECORDED,
                source=envelope.source,
                subject=snap.uscc,
                data={"result": sent},
                id=_uuid5(namespace, snap.result_id),  # item_id, the batch's id parsed once
                time=envelope.time,
            ),
            ResultRecorded(result=snap),  # a model instance is not validated again: cheaper than model_construct
        )
        for snap, sent in zip(payload.results, raw, strict=True)
    ]


CONTRACTS = (
    EventType(
        RESULT_RECORDED,
        ResultRecorded,
        PRODUCER,
        "An inspection agency recorded a sampling-inspection result (a fail starts provisional).",
    ),
    EventType(
        RESULT_CORRECTED,
        ResultCorrected,
        PRODUCER,
        "The owning agency corrected a result, with a reason; the snapshot is the corrected result.",
    ),
    EventType(
        RESULT_RETRACTED,
        ResultRetracted,
        PRODUCER,
        "The owning agency retracted a result, with a reason; it no longer counts anywhere.",
    ),
    EventType(
        RESULT_REINSPECTED,
        ResultReinspected,
        PRODUCER,
        "A re-inspection (复检) requested within the objection window upheld or overturned a fail; "
        "either way the result is now final.",
    ),
    EventType(
        RESULT_FINALISED,
        ResultFinalised,
        PRODUCER,
        "A provisional fail's objection window closed without a re-inspection: the fail is final.",
    ),
    EventType(
        RESULT_BATCH_RECORDED,
        ResultBatchRecorded,
        PRODUCER,
        f"One request recorded several results in the embedded suite (up to {BATCH_SIZE} snapshots per event; "
        "over Kafka they go as single events). "
        f"Consumers expand it into one {RESULT_RECORDED} per snapshot, with the id uuid5(batch id, result_id).",
        expands_to=RESULT_RECORDED,
        expand=expand_batch,
    ),
)
