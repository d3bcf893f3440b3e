"""Inbound events: sampling results and awards honours folded into credit records.

Handlers are built around the service's clock and rule book (the consumer runner passes only the
session and the events, parsed with their contracts' models). Each run of events becomes one
executemany upsert, one rating pass and at most one insert of automatic proposals: never per-row
work against the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.credit import service
from services.credit.domain import RuleBook, record_from_honour, record_from_result
from shared.clock import Clock
from shared.consumer import Handler, Received
from shared.contracts.awards import HONOUR_EVENTS, HonourEvent
from shared.contracts.sampling import RESULT_EVENTS, ResultEvent

#: The event types the credit service consumes.
SUBSCRIBED = (*RESULT_EVENTS, *HONOUR_EVENTS)


def _record(payload: ResultEvent | HonourEvent) -> dict[str, Any] | None:
    """The credit record a snapshot makes (None: not an enterprise's honour, no credit fact)."""
    if isinstance(payload, ResultEvent):
        return record_from_result(payload.result.model_dump())
    return record_from_honour(payload.honour.model_dump())


def _named(payload: ResultEvent | HonourEvent) -> tuple[str, str, str | None] | None:
    """The enterprise an event names, for the register names are matched against (passes too)."""
    if isinstance(payload, ResultEvent):
        r = payload.result
        return r.uscc, r.enterprise_name, r.district_code
    h = payload.honour
    return (h.holder_id.upper(), h.holder_name, h.district_code) if h.holder_kind == "enterprise" else None


def handlers(clock: Clock, book: RuleBook) -> dict[str, Handler]:
    async def on_results(session: AsyncSession, events: Sequence[Received[ResultEvent]]) -> None:
        await on_batch(session, events)

    async def on_honours(session: AsyncSession, events: Sequence[Received[HonourEvent]]) -> None:
        await on_batch(session, events)

    on_batch = batch_handler(clock, book)
    return {t: on_results if t in RESULT_EVENTS else on_honours for t in SUBSCRIBED}


def batch_handler(clock: Clock, book: RuleBook) -> Handler:
    """All of a batch's results and honours folded at once: interleaved event types would otherwise make
    runs of one or two events, each paying the upsert, rating and proposal statements (≈ 500 events/s)."""

    async def on_batch(session: AsyncSession, events: Sequence[Received[ResultEvent | HonourEvent]]) -> None:
        rows = [row for e in events if (row := _record(e.payload)) is not None]
        await service.apply_records(session, rows, clock, book)
        await service.remember(session, [n for e in events if (n := _named(e.payload)) is not None], clock.now())

    return on_batch
