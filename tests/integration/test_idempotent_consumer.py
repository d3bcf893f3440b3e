"""The inbox: a duplicate delivery changes nothing; a failed batch leaves nothing behind."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

import services.gateway as gateway_pkg
from services.gateway import consumers, repository
from services.gateway.models import inbox
from shared.consumer import IdempotentConsumer
from shared.events import Envelope

GATEWAY_DIR = Path(gateway_pkg.__file__).parent


def _recorded(n: int, conclusion: str = "pass", sector: str = "food") -> list[Envelope]:
    return [
        Envelope(
            type=consumers.RESULT_RECORDED,
            source="/qualitycity/sampling",
            subject="91370200163562681G",
            data={
                "result_id": f"r{i}-{conclusion}",
                "agency_code": "A",
                "report_no": f"{i}",
                "uscc": "91370200163562681G",
                "sector": sector,
                "conclusion": conclusion,
                "recorded_at": "2014-01-01T00:00:00Z",
            },
        )
        for i in range(n)
    ]


async def _rates(db: Any) -> list[dict[str, Any]]:
    async with db.unit_of_work() as uow:
        return await repository.pass_rates_by_sector(uow.session)


async def test_redelivered_batch_and_duplicates_inside_a_batch_count_once(migrated: Any) -> None:
    db = await migrated(GATEWAY_DIR, "inbox1")
    consumer = IdempotentConsumer("gateway", db, inbox, consumers.HANDLERS)
    batch = _recorded(3) + _recorded(2, "fail")
    await consumer.handle_batch(batch)
    await consumer.handle_batch(batch)  # redelivered whole
    await consumer.handle_batch([batch[0], batch[0], batch[4]])  # and again, repeated inside one batch
    assert await _rates(db) == [{"sector": "food", "n": 5, "passed": 3}]
    assert consumer.applied_total == 5 and consumer.duplicates_total == 8
    async with db.unit_of_work() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(inbox)) == 5


async def test_a_crash_mid_batch_rolls_back_effects_and_inbox(migrated: Any) -> None:
    db = await migrated(GATEWAY_DIR, "inbox2")

    async def crash(session: AsyncSession, events: Sequence[Envelope]) -> None:
        raise RuntimeError("consumer crashed")

    handlers = dict(consumers.HANDLERS)
    handlers["x.thing.made.v1"] = crash
    consumer = IdempotentConsumer("gateway", db, inbox, handlers)
    poison = Envelope(type="x.thing.made.v1", source="/t", subject="S", data={})
    batch = _recorded(2) + [poison]
    with pytest.raises(RuntimeError):
        await consumer.handle_batch(batch)
    assert await _rates(db) == []  # the first two events' effects were rolled back with the batch
    async with db.unit_of_work() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(inbox)) == 0
    # delivered again after the fix: applied exactly once
    await IdempotentConsumer("gateway", db, inbox, consumers.HANDLERS).handle_batch(batch)
    assert await _rates(db) == [{"sector": "food", "n": 2, "passed": 2}]
