"""Idempotent consumers: the inbox of processed event ids, written with the effect.

A batch is applied in one unit of work: events already in the inbox are skipped, the others go
to their handlers, their ids go into the inbox, and the transaction commits. Only after that
does the transport acknowledge (commit the Kafka offsets). A crash anywhere before the commit
leaves nothing behind and the batch is delivered again; a duplicate delivery finds its ids in
the inbox and changes nothing.

Handlers get typed payloads: each event is parsed with its contract's model (`shared.contracts`)
in one decode-or-set-aside path, whatever transport delivered it. A consumer whose handlers
name a type no contract defines does not start. What can never apply, and what fails on its own
again and again, is quarantined (`shared.quarantine`) so its partition moves on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from typing import Any, Generic, TypeVar

import structlog
from pydantic import BaseModel, ValidationError
from sqlalchemy import Column, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared import columns
from shared.contracts import registry
from shared.db import Database, chunks
from shared.events import Envelope, EventType
from shared.executemany import insert_rows
from shared.quarantine import (
    QUARANTINE_TABLE,
    DeadLetter,
    Quarantine,
    ReplayFailed,
    SetAside,
    envelope_of,
    is_transient,
)

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
    """Parse the wanted events with their contracts' models; skip the others, logging what cannot apply
    (the consumer itself quarantines those: `decode_or_set_aside`)."""
    handled, rejected = decode_or_set_aside(envelopes, wanted)
    for r in rejected:
        log.error(
            "event cannot apply; skipped",
            consumer=consumer,
            event_id=r.envelope.id,
            type=r.envelope.type,
            reason=r.reason,
            error=r.error[:500],
        )
    return handled


def decode_or_set_aside(
    envelopes: Iterable[Envelope], wanted: Collection[str]
) -> tuple[list[Received[Any]], list[SetAside]]:
    """The wanted events parsed with their contracts' models, and those that can never apply as they
    are: a record that is not a CloudEvent, a type no contract defines (a newer producer, a
    misspelling), a payload its contract rejects. A known type the consumer does not handle is
    another service's business: left out quietly. A batch type (`EventType.expands_to`) whose single
    type is wanted comes out as those single events, each with its own derived id.

    Each envelope is parsed once: the model is kept on it (`Envelope.parsed`), so the other consumers
    of an in-process delivery, and the halves of a batch being isolated, reuse it (handlers only read
    payloads)."""
    out: list[Received[Any]] = []
    rejected: list[SetAside] = []
    for e in envelopes:
        if e.origin is not None and e.origin.error is not None:
            rejected.append(SetAside.of(e, "undecodable", e.origin.error))
            continue
        batch: EventType | None = None
        if e.type not in wanted:
            # A batch type's consumers are those of the single type it stands for.
            batch = registry.find(e.type)
            if batch is None:
                rejected.append(SetAside(e, "unknown-type", "UnknownEventType", f"no contract defines {e.type!r}"))
                continue
            if batch.expands_to not in wanted:
                continue
        payload = e.parsed
        if payload is None:
            try:
                payload = e.parsed = registry.get(e.type).model.model_validate(e.data)
            except ValidationError as exc:
                # Not kept: each consumer that gets the event sets it aside in its own quarantine. A batch
                # event is one event: one refused snapshot sets the whole batch aside.
                rejected.append(SetAside.of(e, "invalid", exc))
                continue
        if batch is None:
            out.append(Received(e, payload))
            continue
        # A batch stands for single events: handlers, the change feed and webhooks get those (the inbox
        # keeps the batch's id, the one delivered).
        if e.expanded is None:
            e.expanded = batch.singles(e, payload)
            for item, item_payload in e.expanded:
                item.parsed = item_payload  # a batch being isolated applies its items as single events
        out.extend(Received(item, item_payload) for item, item_payload in e.expanded)
    return out, rejected


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
        columns.timestamp("processed_at"),
    )


class IdempotentConsumer:
    """Applies batches of events exactly once to one service's database; sets aside what cannot apply.

    A batch is applied in one transaction. If that fails with a transient error (see
    `shared.quarantine.is_transient`) the error goes to the transport, which delivers the batch
    again later. Any other failure is isolated: the batch is split in halves, each applied in its
    own transaction, down to the single events that fail; such an event is tried `max_attempts`
    times in all, then quarantined with its inbox row, and the rest of the batch applies. The good
    events are applied once: each transaction carries their inbox ids.
    """

    def __init__(
        self,
        name: str,
        db: Database,
        inbox: Table,
        handlers: Mapping[str, Handler],
        *,
        batch_handler: Handler | None = None,
        max_attempts: int = 3,
        retry_delay_s: float = 0.05,
        dead_letter: DeadLetter | None = None,
    ) -> None:
        """`handlers` get runs of one event type, in order. A `batch_handler` instead gets all of a
        batch's new events of the handled types at once, for read models that apply a mixed batch in
        a few set-based statements (one call per run would cost a statement per run). The service's
        metadata (the inbox's) must define the quarantine table (`quarantine_table`).

        Raises `UnknownEventType` if a handler names a type that no contract defines."""
        check_subscriptions(name, handlers)
        if QUARANTINE_TABLE not in inbox.metadata.tables:
            raise ValueError(f"consumer {name!r}: its service's models define no {QUARANTINE_TABLE} table")
        self.name = name
        self.db = db
        self.inbox = inbox
        self.handlers = dict(handlers)
        self.batch_handler = batch_handler
        self.max_attempts = max_attempts
        self.retry_delay_s = retry_delay_s
        self.quarantine = Quarantine(name, db, inbox.metadata.tables[QUARANTINE_TABLE], dead_letter)
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
        try:
            await self._apply(envelopes)
        except Exception as exc:
            if is_transient(exc):
                raise
            log.warning(
                "batch failed; isolating the events that fail",
                consumer=self.name,
                size=len(envelopes),
                error=repr(exc)[:500],
            )
            await self._isolate(envelopes, exc)
        times = [e.time for e in envelopes if e.type]  # a stand-in for an undecodable record has no time of its own
        if times:
            self.last_event_time = max(times)

    async def _isolate(self, envelopes: Sequence[Envelope], failure: Exception) -> None:
        """Bisect a failed batch: halves in order, each in its own transaction, down to single events.

        A batch event that fails on its own is bisected through the single events it stands for: those
        apply (or are quarantined) under their own ids, then the batch's id joins the inbox. A crash in
        between redelivers the batch, whose items already applied are then skipped by their ids."""
        if len(envelopes) == 1:
            items = envelopes[0].expanded
            if items is None:
                await self._retry_or_quarantine(envelopes[0], failure)
                return
            await self._isolate([item for item, _ in items], failure)
            async with self.db.unit_of_work() as uow:
                await self._mark_processed(uow.session, await self._fresh(uow.session, envelopes), datetime.now(UTC))
                await uow.commit()
            return
        mid = len(envelopes) // 2
        for half in (envelopes[:mid], envelopes[mid:]):
            try:
                await self._apply(half)
            except Exception as exc:
                if is_transient(exc):
                    raise
                await self._isolate(half, exc)

    async def _retry_or_quarantine(self, envelope: Envelope, failure: Exception) -> None:
        attempts = 1
        while attempts < self.max_attempts:
            await asyncio.sleep(self.retry_delay_s * attempts)
            attempts += 1
            try:
                await self._apply([envelope])
                return
            except Exception as exc:
                if is_transient(exc):
                    raise
                failure = exc
        await self._set_aside([SetAside.of(envelope, "apply-failed", failure, attempts)])

    async def _fresh(self, session: AsyncSession, envelopes: Sequence[Envelope]) -> list[Envelope]:
        """The batch without the events already in the inbox and without repeats inside it."""
        seen: set[str] = set()
        for chunk in chunks(e.id for e in envelopes):
            seen.update(await session.scalars(select(self.inbox.c.event_id).where(self.inbox.c.event_id.in_(chunk))))
        fresh: list[Envelope] = []
        for e in envelopes:
            if e.id in seen:
                continue
            seen.add(e.id)
            fresh.append(e)
        return fresh

    async def _mark_processed(self, session: AsyncSession, envelopes: Sequence[Envelope], now: datetime) -> None:
        if envelopes:
            await insert_rows(
                session,
                self.inbox,
                [{"event_id": e.id, "type": e.type, "consumer": self.name, "processed_at": now} for e in envelopes],
            )

    async def _apply(self, envelopes: Sequence[Envelope]) -> None:
        """One transaction: the fresh events applied, those that cannot apply set aside, all in the inbox."""
        async with self.db.unit_of_work() as uow:
            session = uow.session
            fresh = await self._fresh(session, envelopes)
            handled, rejected = decode_or_set_aside(fresh, self.handlers)
            await self._run_handlers(session, handled)
            now = datetime.now(UTC)
            await self.quarantine.put(session, rejected, now)
            await self._mark_processed(session, fresh, now)
            await uow.commit()
        await self.quarantine.committed(rejected)
        duplicates = len(envelopes) - len(fresh)
        self.applied_total += len(fresh)
        self.duplicates_total += duplicates
        if duplicates:
            log.info("duplicate events skipped", consumer=self.name, count=duplicates)
        self.last_applied_at = now

    async def _run_handlers(self, session: AsyncSession, handled: Sequence[Received[Any]]) -> None:
        if not handled:
            return
        if self.batch_handler is not None:
            await self.batch_handler(session, handled)
        else:
            for type_, run in groupby(handled, key=lambda r: r.type):
                await self.handlers[type_](session, list(run))

    async def _set_aside(self, items: Sequence[SetAside]) -> None:
        """Quarantine events that failed on their own, with their inbox rows (a redelivery is skipped)."""
        async with self.db.unit_of_work() as uow:
            fresh = {e.id for e in await self._fresh(uow.session, [i.envelope for i in items])}
            items = [i for i in items if i.envelope.id in fresh]
            now = datetime.now(UTC)
            await self.quarantine.put(uow.session, items, now)
            await self._mark_processed(uow.session, [i.envelope for i in items], now)
            await uow.commit()
        await self.quarantine.committed(items)

    async def replay(self, quarantine_id: str, actor: str) -> dict[str, Any]:
        """Apply a quarantined event now, through the handlers; it becomes `replayed`. If it fails
        again (other than transiently) it stays quarantined with the new error: `ReplayFailed`."""
        q = self.quarantine
        now = datetime.now(UTC)
        async with self.db.unit_of_work() as uow:
            session = uow.session
            # Settled first: the update locks the row, so two replays never both apply the event.
            await q.settle(session, quarantine_id, "replayed", actor, now, None)
            row = await q.get(session, quarantine_id)
            error = await self._reapply(session, envelope_of(row))
            if error is None:
                await uow.commit()
            # else: leaving without commit rolls back the handlers' writes and the settlement
        if error is not None:
            row = await q.failed_again(quarantine_id, *error, now)
            raise ReplayFailed(
                f"{error[0]}: {error[1][:500]}", error_class=error[0], error=error[1][:500], attempts=row["attempts"]
            )
        log.info("quarantined event replayed", consumer=self.name, event_id=row["event_id"], by=actor)
        await q.refresh()
        return row

    async def _reapply(self, session: AsyncSession, envelope: Envelope | None) -> tuple[str, str] | None:
        """Apply one event in the session; the error (class, message) if it cannot, None if applied."""
        if envelope is None:
            return "Undecodable", "the record is not a CloudEvent"
        handled, rejected = decode_or_set_aside([envelope], self.handlers)
        if rejected:
            return rejected[0].error_class, rejected[0].error
        if not handled:
            return "NotHandled", f"the {self.name} consumer does not handle {envelope.type!r}"
        try:
            await self._run_handlers(session, handled)
        except Exception as exc:
            if is_transient(exc):
                raise
            failure = SetAside.of(envelope, "apply-failed", exc)
            return failure.error_class, failure.error
        return None
