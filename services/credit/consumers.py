"""Inbound events: sampling results and awards honours folded into credit records.

Handlers are built around the service's clock and rule book (the consumer runner passes only the
session and the events). Each run of events becomes one executemany upsert, one rating pass and
at most one insert of automatic proposals: never per-row work against the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from services.credit import service
from services.credit.domain import RuleBook, record_from_honour, record_from_result
from shared.clock import Clock
from shared.consumer import Handler
from shared.events import Envelope

log = structlog.get_logger("credit.consumers")

SAMPLING_TYPES = tuple(
    f"sampling.result.{verb}.v1" for verb in ("recorded", "corrected", "retracted", "reinspected", "finalised")
)
HONOUR_TYPES = tuple(
    f"awards.honour.{verb}.v1" for verb in ("granted", "revoked", "expired", "suspended", "reinstated")
)


def handlers(clock: Clock, book: RuleBook) -> dict[str, Handler]:
    async def on_results(session: AsyncSession, events: Sequence[Envelope]) -> None:
        rows: list[dict[str, Any]] = []
        for e in events:
            try:
                rows.append(record_from_result(e.data["result"]))
            except (KeyError, TypeError, ValueError) as exc:  # a malformed payload can never apply: skip it loudly
                log.error("sampling event without a usable result snapshot", event_id=e.id, error=repr(exc))
        await service.apply_records(session, rows, clock, book)

    async def on_honours(session: AsyncSession, events: Sequence[Envelope]) -> None:
        rows: list[dict[str, Any]] = []
        for e in events:
            try:
                row = record_from_honour(e.data["honour"])
            except (KeyError, TypeError, ValueError) as exc:
                log.error("awards event without a usable honour snapshot", event_id=e.id, error=repr(exc))
                continue
            if row is not None:
                rows.append(row)
        await service.apply_records(session, rows, clock, book)

    return {**{t: on_results for t in SAMPLING_TYPES}, **{t: on_honours for t in HONOUR_TYPES}}


def batch_handler(clock: Clock, book: RuleBook) -> Handler:
    """All of a batch's results and honours folded at once: interleaved event types would otherwise make
    runs of one or two events, each paying the upsert, rating and proposal statements (≈ 500 events/s)."""

    async def on_batch(session: AsyncSession, events: Sequence[Envelope]) -> None:
        rows: list[dict[str, Any]] = []
        for e in events:
            try:
                if "result" in e.data:
                    rows.append(record_from_result(e.data["result"]))
                elif "honour" in e.data:
                    row = record_from_honour(e.data["honour"])
                    if row is not None:
                        rows.append(row)
            except (KeyError, TypeError, ValueError) as exc:  # a malformed payload can never apply: skip it loudly
                log.error("event without a usable snapshot", event_id=e.id, type=e.type, error=repr(exc))
        await service.apply_records(session, rows, clock, book)

    return on_batch
