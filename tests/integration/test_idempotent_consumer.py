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
from shared.consumer import IdempotentConsumer, Received
from shared.contracts.sampling import RESULT_REINSPECTED, RESULT_RETRACTED
from shared.events import Envelope
from tests.factories import result_event

GATEWAY_DIR = Path(gateway_pkg.__file__).parent


def _recorded(n: int, conclusion: str = "pass", sector: str = "food") -> list[Envelope]:
    return [result_event(result_id=f"r{i}-{conclusion}", conclusion=conclusion, sector=sector) for i in range(n)]


def _gateway_consumer(db: Any) -> IdempotentConsumer:
    return IdempotentConsumer("gateway", db, inbox, consumers.HANDLERS, batch_handler=consumers.apply_batch)


async def _rates(db: Any) -> list[dict[str, Any]]:
    async with db.unit_of_work() as uow:
        return await repository.pass_rates_by_sector(uow.session)


async def test_redelivered_batch_and_duplicates_inside_a_batch_count_once(migrated: Any) -> None:
    db = await migrated(GATEWAY_DIR, "inbox1")
    consumer = _gateway_consumer(db)
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

    async def apply_then_crash(session: AsyncSession, events: Sequence[Received[Any]]) -> None:
        await consumers.apply_batch(session, events)  # the effects are written...
        raise ConnectionResetError("connection lost")  # ...and the database goes away before the commit

    consumer = IdempotentConsumer("gateway", db, inbox, consumers.HANDLERS, batch_handler=apply_then_crash)
    batch = _recorded(2)
    with pytest.raises(ConnectionResetError):  # transient: back to the transport, which delivers again
        await consumer.handle_batch(batch)
    assert await _rates(db) == []  # the first two events' effects were rolled back with the batch
    async with db.unit_of_work() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(inbox)) == 0
    # delivered again after the fix: applied exactly once
    await _gateway_consumer(db).handle_batch(batch)
    assert await _rates(db) == [{"sector": "food", "n": 2, "passed": 2}]


async def test_later_versions_replace_earlier_ones_and_late_arrivals_change_nothing(migrated: Any) -> None:
    db = await migrated(GATEWAY_DIR, "inbox3")
    consumer = _gateway_consumer(db)
    v1 = result_event(result_id="r1", conclusion="fail", state="provisional")
    v2 = result_event(
        RESULT_REINSPECTED,
        extra={"outcome": "overturned", "decided_on": "2014-06-01", "reinspection_report_no": "QD-R-1"},
        result_id="r1",
        version=2,
        conclusion="pass",
        state="final",
        reinspection="overturned",
    )
    v3 = result_event(
        RESULT_RETRACTED,
        extra={"reason": "sampled wrongly"},
        result_id="r1",
        version=3,
        conclusion="pass",
        state="retracted",
    )
    await consumer.handle_batch([v1])
    assert await _rates(db) == [{"sector": "food", "n": 1, "passed": 0}]
    await consumer.handle_batch([v2])
    assert await _rates(db) == [{"sector": "food", "n": 1, "passed": 1}]  # overturned: counted once, as a pass
    late = result_event(result_id="r1", conclusion="fail", state="provisional")  # v1 again, under a new event id
    await consumer.handle_batch([v3, late])  # retracted; the stale v1 arriving late changes nothing
    assert await _rates(db) == []
