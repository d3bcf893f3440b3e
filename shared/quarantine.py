"""The quarantine: events that cannot apply, set aside so their partition moves on.

An event goes here when it can never apply as it is — its bytes are not a CloudEvent, its type is
one no contract defines, its payload fails its contract's model — or when applying it failed
deterministically `max_attempts` times on its own (a value the database refuses, a handler bug).
A transient failure (the database unreachable, a deadlock, the broker down) is never a reason: it
is retried until it passes. Each quarantined event is a row of `quarantined_events` in the
consuming service's database, written with the event's inbox row in one transaction (a
redelivery is then skipped like any processed event); in Kafka mode the original record is also
republished on `<topic>.dlq` before that commit. An error log line and the metrics
`qc_events_quarantined_total{consumer,reason}` and `qc_quarantined_events{consumer}` tell the
operators, who list, inspect, replay or discard the rows through `quarantine_router` (`admin`).
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Query, Request
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, Field
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database, UtcDateTime
from shared.errors import Conflict, NotFound
from shared.events import Envelope, KafkaOrigin
from shared.pagination import Page, decode_cursor, keyset, page, where_given
from shared.routing import Admin, Cursor, Limit, problems
from shared.strict import Instant
from shared.transient import is_transient as is_transient  # re-exported: the consumer's classification
from shared.uuid7 import new_ids

if TYPE_CHECKING:
    from shared.consumer import IdempotentConsumer

log = structlog.get_logger("quarantine")

QUARANTINE_TABLE = "quarantined_events"
Reason = Literal["undecodable", "unknown-type", "invalid", "apply-failed"]
State = Literal["quarantined", "replayed", "discarded"]
#: Republishes a consumed record on its dead-letter topic with extra headers (Kafka mode only).
DeadLetter = Callable[[KafkaOrigin, Sequence[tuple[str, bytes]]], Awaitable[None]]

_ERROR_MAX = 4000


def quarantine_table(metadata: Any) -> Table:
    return Table(
        QUARANTINE_TABLE,
        metadata,
        Column("id", String(36), primary_key=True),  # uuid7: in the order set aside
        Column("consumer", String(60), nullable=False),
        Column("event_id", String(64), nullable=False),  # an undecodable record's: derived from its position
        Column("type", String(120), nullable=False),  # "" when the record was not a CloudEvent
        Column("source", String(200), nullable=False),
        Column("subject", String(200), nullable=False),
        Column("kafka_topic", String(200)),
        Column("kafka_partition", Integer),
        Column("kafka_offset", BigInteger),
        Column("envelope", JSON),  # the structured CloudEvent, what a replay applies; null when undecodable
        Column("raw", LargeBinary),  # the record's value exactly as it arrived (Kafka mode)
        Column("reason", String(20), nullable=False),
        Column("error_class", String(200), nullable=False),
        Column("error", Text, nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("first_seen", UtcDateTime(), nullable=False),
        Column("last_seen", UtcDateTime(), nullable=False),
        Column("state", String(12), nullable=False),
        Column("acted_by", String(120)),
        Column("acted_at", UtcDateTime()),
        Column("note", String(500)),
        Index("ix_quarantined_events_state_id", "state", "id"),
        Index("ix_quarantined_events_event_id", "event_id"),
    )


# ---------------------------------------------------------------------------------- transient errors

# `is_transient` lives in shared/transient.py: the edge answers 503 for the same conditions.


# ---------------------------------------------------------------------------------- conditions


class QuarantinedEventNotFound(NotFound, slug="quarantined-event-not-found", title="No such quarantined event"): ...


class NotQuarantined(Conflict, slug="not-quarantined", title="The event is no longer quarantined"): ...


class ReplayFailed(Conflict, slug="replay-failed", title="The event failed again; it stays quarantined"): ...


# ---------------------------------------------------------------------------------- the store


@dataclass(frozen=True, slots=True)
class SetAside:
    """One event to quarantine, and why."""

    envelope: Envelope
    reason: Reason
    error_class: str
    error: str
    attempts: int = 1

    @classmethod
    def of(cls, envelope: Envelope, reason: Reason, exc: BaseException, attempts: int = 1) -> SetAside:
        return cls(envelope, reason, _class_name(exc), str(exc) or repr(exc), attempts)


def _class_name(exc: BaseException) -> str:
    t = type(exc)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def _text(value: str, limit: int) -> str:
    return value.replace("\x00", "\\0")[:limit]  # PostgreSQL text cannot hold NUL


class Quarantine:
    """The `quarantined_events` table of one consumer, its dead-letter publishing and its metrics."""

    def __init__(self, consumer: str, db: Database, table: Table, dead_letter: DeadLetter | None = None) -> None:
        self.consumer = consumer
        self.db = db
        self.table = table
        self.dead_letter = dead_letter
        self.quarantined_total: Counter[str] = Counter()  # by reason, since the process started
        self.current: int | None = None  # rows in state quarantined, as last counted

    async def put(self, session: AsyncSession, items: Sequence[SetAside], now: datetime) -> None:
        """Insert the rows and publish the dead letters, inside the caller's transaction (before its
        commit: a failed commit redelivers, and a dead letter may repeat, never go missing)."""
        if not items:
            return
        rows = []
        for item, id_ in zip(items, new_ids(len(items)), strict=True):
            e, origin = item.envelope, item.envelope.origin
            rows.append(
                {
                    "id": id_,
                    "consumer": self.consumer,
                    "event_id": e.id[:64],
                    "type": _text(e.type, 120),
                    "source": _text(e.source, 200),
                    "subject": _text(e.subject, 200),
                    "kafka_topic": origin.topic if origin else None,
                    "kafka_partition": origin.partition if origin else None,
                    "kafka_offset": origin.offset if origin else None,
                    "envelope": None if item.reason == "undecodable" else e.to_cloudevent_dict(),
                    "raw": origin.value if origin else None,
                    "reason": item.reason,
                    "error_class": _text(item.error_class, 200),
                    "error": _text(item.error, _ERROR_MAX),
                    "attempts": item.attempts,
                    "first_seen": now,
                    "last_seen": now,
                    "state": "quarantined",
                }
            )
        await session.execute(insert(self.table), rows)  # rare and small: Core, which encodes the JSON
        if self.dead_letter is not None:
            for item in items:
                if item.envelope.origin is not None:
                    await self.dead_letter(item.envelope.origin, self._dlq_headers(item))

    def _dlq_headers(self, item: SetAside) -> list[tuple[str, bytes]]:
        return [
            ("qc_dlq_consumer", self.consumer.encode()),
            ("qc_dlq_reason", item.reason.encode()),
            ("qc_dlq_error_class", item.error_class.encode()),
            ("qc_dlq_error", item.error[:_ERROR_MAX].encode()),
            ("qc_dlq_attempts", str(item.attempts).encode()),
        ]

    async def committed(self, items: Sequence[SetAside]) -> None:
        """After the commit: one error line each, the counter, and the gauge counted again."""
        for item in items:
            origin = item.envelope.origin
            log.error(
                "event quarantined",
                consumer=self.consumer,
                event_id=item.envelope.id,
                type=item.envelope.type,
                reason=item.reason,
                error_class=item.error_class,
                error=item.error[:500],
                attempts=item.attempts,
                topic=origin.topic if origin else None,
                partition=origin.partition if origin else None,
                offset=origin.offset if origin else None,
            )
            self.quarantined_total[item.reason] += 1
        if items:
            await self.refresh()

    async def refresh(self) -> None:
        async with self.db.unit_of_work() as uow:
            self.current = int(
                await uow.session.scalar(
                    select(func.count()).select_from(self.table).where(self.table.c.state == "quarantined")
                )
                or 0
            )

    # -- for the admin API

    async def list(
        self, state: State | None, type_: str | None, after: tuple[str] | None, limit: int
    ) -> list[dict[str, Any]]:
        t = self.table
        stmt = where_given(select(*_summary_columns(t)), (t.c.state, state), (t.c.type, type_))
        async with self.db.unit_of_work() as uow:
            rows = await uow.session.execute(keyset(stmt, [t.c.id], after, limit + 1, descending=True))
            return [dict(r) for r in rows.mappings()]

    async def get(self, session: AsyncSession, quarantine_id: str) -> dict[str, Any]:
        row = (await session.execute(select(self.table).where(self.table.c.id == quarantine_id))).mappings().first()
        if row is None:
            raise QuarantinedEventNotFound(f"No quarantined event {quarantine_id!r} in the {self.consumer} service")
        return dict(row)

    async def settle(
        self, session: AsyncSession, quarantine_id: str, state: State, actor: str, now: datetime, note: str | None
    ) -> None:
        """Move a quarantined row to its final state, once: a concurrent replay or discard loses."""
        t = self.table
        done = await session.execute(
            update(t)
            .where(t.c.id == quarantine_id, t.c.state == "quarantined")
            .values(state=state, acted_by=actor[:120], acted_at=now, last_seen=now, note=note)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            await self.refused(session, quarantine_id)

    async def refused(self, session: AsyncSession, quarantine_id: str) -> None:
        row = await self.get(session, quarantine_id)
        raise NotQuarantined(f"The event was {row['state']} by {row['acted_by']} at {row['acted_at']}")

    async def failed_again(self, quarantine_id: str, error_class: str, error: str, now: datetime) -> dict[str, Any]:
        """A replay failed: the row stays quarantined, with one more attempt and the new error."""
        t = self.table
        async with self.db.unit_of_work() as uow:
            await uow.session.execute(
                update(t)
                .where(t.c.id == quarantine_id, t.c.state == "quarantined")
                .values(
                    attempts=t.c.attempts + 1,
                    last_seen=now,
                    error_class=_text(error_class, 200),
                    error=_text(error, _ERROR_MAX),
                )
            )
            row = await self.get(uow.session, quarantine_id)
            await uow.commit()
        log.error(
            "quarantined event failed again on replay",
            consumer=self.consumer,
            event_id=row["event_id"],
            type=row["type"],
            error_class=error_class,
            error=error[:500],
        )
        return row


def _summary_columns(t: Table) -> list[Any]:
    return [c for c in t.c if c.name not in ("envelope", "raw")]


def envelope_of(row: dict[str, Any]) -> Envelope | None:
    """The event a row holds, as the consumer gets it (None: the record was never a CloudEvent)."""
    ce = row["envelope"]
    if not ce:
        return None
    return Envelope(
        id=ce["id"],
        type=ce["type"],
        source=ce["source"],
        subject=ce.get("subject") or "",
        time=datetime.fromisoformat(ce["time"].replace("Z", "+00:00")),
        data=ce["data"],
        datacontenttype=ce.get("datacontenttype") or "application/json",
    )


# ---------------------------------------------------------------------------------- metrics


class QuarantineMetrics(Collector):
    """`qc_events_quarantined_total{consumer,reason}` and `qc_quarantined_events{consumer}`, read
    from the running consumer at each scrape (each app has its own registry)."""

    def __init__(self, consumer: Callable[[], IdempotentConsumer | None]) -> None:
        self._consumer = consumer

    def collect(self) -> Iterator[Metric]:
        consumer = self._consumer()
        total = CounterMetricFamily(
            "qc_events_quarantined", "Events set aside since the process started", labels=["consumer", "reason"]
        )
        current = GaugeMetricFamily(
            "qc_quarantined_events", "Events in quarantine now (state quarantined)", labels=["consumer"]
        )
        if consumer is not None:
            q = consumer.quarantine
            for reason in ("undecodable", "unknown-type", "invalid", "apply-failed"):
                total.add_metric([q.consumer, reason], q.quarantined_total[reason])
            if q.current is not None:
                current.add_metric([q.consumer], q.current)
        yield total
        yield current


# ---------------------------------------------------------------------------------- the admin API


class QuarantinedEventOut(BaseModel):
    id: str
    consumer: str
    event_id: str
    type: str = Field(description='The event type; "" when the record was not a CloudEvent')
    source: str
    subject: str
    kafka_topic: str | None
    kafka_partition: int | None
    kafka_offset: int | None
    reason: Reason
    error_class: str
    error: str
    attempts: int
    first_seen: Instant
    last_seen: Instant
    state: State
    acted_by: str | None
    acted_at: Instant | None
    note: str | None = Field(description="The reason given when discarded")


class QuarantinedEventDetail(QuarantinedEventOut):
    event: dict[str, Any] | None = Field(description="The event as a structured CloudEvent; null when undecodable")
    raw_base64: str | None = Field(description="The Kafka record's value exactly as it arrived, base64")


class DiscardIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500, description="Why the event is dropped for good")


def _detail(row: dict[str, Any]) -> QuarantinedEventDetail:
    raw = row.get("raw")
    return QuarantinedEventDetail.model_validate(
        row | {"event": row["envelope"], "raw_base64": base64.b64encode(raw).decode() if raw is not None else None}
    )


def _consumer(request: Request) -> IdempotentConsumer:
    consumer: IdempotentConsumer | None = request.app.state.runtime.consumer
    if consumer is None:
        raise RuntimeError("this service consumes no events")
    return consumer


def quarantine_router(prefix: str = "/v1/quarantine") -> APIRouter:
    """The admin routes over a consuming service's quarantine. Services mount it at `/v1/quarantine`;
    the gateway mounts its own at `/v1/quarantine/gateway` and forwards `/v1/quarantine/{service}`."""
    router = APIRouter(prefix=prefix, tags=["operations"], responses=problems(401, 403, 404, 422))

    @router.get("", summary="Quarantined events, newest first", response_model=Page[QuarantinedEventOut])
    async def list_quarantined(
        request: Request,
        _: Admin,
        cursor: Cursor = None,
        limit: Limit = 50,
        state: Annotated[State | None, Query(description="Only events in this state")] = None,
        type: Annotated[str | None, Query(description="Only events of this type")] = None,
    ) -> dict[str, Any]:
        after = decode_cursor(cursor, str)
        rows = await _consumer(request).quarantine.list(state, type, after, limit)
        return page(rows, limit, lambda r: (r["id"],))

    @router.get("/{quarantine_id}", summary="One quarantined event, with its original payload and error")
    async def get_quarantined(request: Request, quarantine_id: str, _: Admin) -> QuarantinedEventDetail:
        q = _consumer(request).quarantine
        async with q.db.unit_of_work() as uow:
            return _detail(await q.get(uow.session, quarantine_id))

    @router.post(
        "/{quarantine_id}:replay",
        summary="Apply a quarantined event now; if it fails again it stays quarantined with the new error",
        responses=problems(409),
    )
    async def replay_quarantined(request: Request, quarantine_id: str, principal: Admin) -> QuarantinedEventDetail:
        return _detail(await _consumer(request).replay(quarantine_id, principal.subject))

    @router.post(
        "/{quarantine_id}:discard", summary="Drop a quarantined event for good, with a reason", responses=problems(409)
    )
    async def discard_quarantined(
        request: Request, quarantine_id: str, body: DiscardIn, principal: Admin
    ) -> QuarantinedEventDetail:
        q = _consumer(request).quarantine
        now = datetime.now(UTC)
        async with q.db.unit_of_work() as uow:
            await q.settle(uow.session, quarantine_id, "discarded", principal.subject, now, body.reason)
            row = await q.get(uow.session, quarantine_id)
            await uow.commit()
        log.warning("quarantined event discarded", consumer=q.consumer, event_id=row["event_id"], by=principal.subject)
        await q.refresh()
        return _detail(row)

    return router
