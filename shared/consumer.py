"""Idempotent consumers: the inbox of processed event ids, written with the effect.

A batch is applied in one unit of work: events already in the inbox are skipped, the others go
to their handlers, their ids go into the inbox, and the transaction commits. Only after that
does the transport acknowledge (commit the Kafka offsets). A crash anywhere before the commit
leaves nothing behind and the batch is delivered again; a duplicate delivery finds its ids in
the inbox and changes nothing.

Handlers get typed payloads: each event is parsed with its contract's model (`shared.contracts`)
in one decode-or-skip-and-log path, whatever transport delivered it. A consumer whose handlers
name a type no contract defines does not start.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from typing import Any, Generic, TypeVar

import structlog
from pydantic import BaseModel, ValidationError
from sqlalchemy import Column, DateTime, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.contracts import registry
from shared.db import Database, chunks
from shared.events import Envelope
from shared.executemany import insert_rows

log = structlog.get_logger("consumer")

P = TypeVar("P", bound=BaseModel, covariant=True)
T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Received(Generic[P]):
    """An event as a handler gets it: the envelope, and its payload parsed with its contract's model."""

    envelope: Envelope
    payload: P

    @property
    def id(self) -> str:
        return self.envelope.id

    @property
    def type(self) -> str:
        return self.envelope.type

    @property
    def time(self) -> datetime:
        return self.envelope.time


#: A handler gets the session of the consumer's unit of work and a run of events of one type, in order.
#: It declares the payload model it reads (`Sequence[Received[ResultEvent]]`); a test holds that model
#: to the registry's for every type the handler is subscribed to.
Handler = Callable[[AsyncSession, Sequence[Received[Any]]], Awaitable[None]]


class UnknownEventType(ValueError):
    """A consumer subscribed to a type no contract defines (a misspelling would drop its events)."""


def check_subscriptions(consumer: str, types: Iterable[str]) -> None:
    unknown = sorted(t for t in types if t not in registry)
    if unknown:
        raise UnknownEventType(f"consumer {consumer!r} subscribes to event types no contract defines: {unknown}")


def decode(envelopes: Iterable[Envelope], wanted: Collection[str], consumer: str) -> list[Received[Any]]:
    """Parse the wanted events with their contracts' models; skip the others, logging what cannot apply.

    A type the consumer does not handle is skipped quietly. A type no contract defines (a newer
    producer, a misspelling) and a payload its contract rejects can never apply: they are skipped
    and logged, so they do not block their partition and do not vanish unseen either.
    """
    out: list[Received[Any]] = []
    for e in envelopes:
        if e.type not in wanted:
            if e.type not in registry:
                log.error("event of an unknown type skipped", consumer=consumer, event_id=e.id, type=e.type)
            continue
        try:
            payload = registry.get(e.type).model.model_validate(e.data)
        except ValidationError as exc:
            log.error(
                "event payload not valid for its contract; skipped",
                consumer=consumer,
                event_id=e.id,
                type=e.type,
                error=str(exc),
            )
            continue
        out.append(Received(e, payload))
    return out


def latest_versions(items: Iterable[T], key: Callable[[T], K], version: Callable[[T], int]) -> dict[K, T]:
    """Fold a batch to the newest version of each aggregate, in order of first appearance.

    Every event carries its aggregate's whole state with a version, so only the newest of a
    batch needs applying; an equal version seen again is a repeat and the first one is kept.
    """
    latest: dict[K, T] = {}
    for item in items:
        k = key(item)
        held = latest.get(k)
        if held is None or version(item) > version(held):
            latest[k] = item
    return latest


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("event_id", String(36), primary_key=True),
        Column("type", String(120), nullable=False),
        Column("consumer", String(60), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False),
    )


class IdempotentConsumer:
    """Applies batches of events exactly once to one service's database."""

    def __init__(
        self,
        name: str,
        db: Database,
        inbox: Table,
        handlers: Mapping[str, Handler],
        *,
        batch_handler: Handler | None = None,
    ) -> None:
        """`handlers` get runs of one event type, in order. A `batch_handler` instead gets all of a
        batch's new events of the handled types at once, for read models that apply a mixed batch in
        a few set-based statements (one call per run would cost a statement per run).

        Raises `UnknownEventType` if a handler names a type that no contract defines."""
        check_subscriptions(name, handlers)
        self.name = name
        self.db = db
        self.inbox = inbox
        self.handlers = dict(handlers)
        self.batch_handler = batch_handler
        self.applied_total = 0
        self.duplicates_total = 0
        self.last_event_time: datetime | None = None
        self.last_applied_at: datetime | None = None

    @property
    def event_types(self) -> list[str]:
        return sorted(self.handlers)

    async def handle_batch(self, envelopes: Sequence[Envelope]) -> None:
        if not envelopes:
            return
        async with self.db.unit_of_work() as uow:
            session = uow.session
            seen: set[str] = set()
            for chunk in chunks(e.id for e in envelopes):
                seen.update(
                    await session.scalars(select(self.inbox.c.event_id).where(self.inbox.c.event_id.in_(chunk)))
                )
            fresh: list[Envelope] = []
            for e in envelopes:
                if e.id in seen:
                    continue
                seen.add(e.id)
                fresh.append(e)
            duplicates = len(envelopes) - len(fresh)
            handled = decode(fresh, self.handlers, self.name)
            if self.batch_handler is not None:
                if handled:
                    await self.batch_handler(session, handled)
            else:
                for type_, run in groupby(handled, key=lambda r: r.type):
                    await self.handlers[type_](session, list(run))
            now = datetime.now(UTC)
            if fresh:
                await insert_rows(
                    session,
                    self.inbox,
                    [{"event_id": e.id, "type": e.type, "consumer": self.name, "processed_at": now} for e in fresh],
                )
            await uow.commit()
        self.applied_total += len(fresh)
        self.duplicates_total += duplicates
        if duplicates:
            log.info("duplicate events skipped", consumer=self.name, count=duplicates)
        self.last_event_time = max(e.time for e in envelopes)
        self.last_applied_at = now
