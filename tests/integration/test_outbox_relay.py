"""The outbox relay: publish in order, mark after the acknowledgement, republish after a crash."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

import services.gateway as gateway_pkg
from services.gateway.models import outbox
from shared.events import Envelope
from shared.outbox import OutboxRelay, add_to_outbox
from shared.supervisor import CANCEL_GRACE_S, cancel_and_wait

GATEWAY_DIR = Path(gateway_pkg.__file__).parent


class RecordingPublisher:
    def __init__(self, fail: bool = False) -> None:
        self.published: list[tuple[str, str, bytes]] = []
        self.fail = fail

    async def publish(self, topic: str, batch: Sequence[tuple[Envelope, bytes]]) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        self.published.extend((topic, e.id, raw) for e, raw in batch)


def _events(n: int, subject: str = "91370200163562681G") -> list[Envelope]:
    return [Envelope(type="x.thing.made.v1", source="/t", subject=subject, data={"i": i}) for i in range(n)]


async def _unpublished(db: Any) -> int:
    async with db.unit_of_work() as uow:
        return int(await uow.session.scalar(select(func.count()).where(outbox.c.published_at.is_(None))) or 0)


async def test_events_written_in_a_rolled_back_transaction_never_leave(migrated: Any) -> None:
    db = await migrated(GATEWAY_DIR, "outbox1")
    async with db.unit_of_work() as uow:
        await add_to_outbox(uow.session, outbox, _events(3))
        # leaving without commit: the caller's transaction failed
    pub = RecordingPublisher()
    assert await OutboxRelay(db, outbox, pub, "t").publish_pending() == 0
    assert pub.published == []


async def test_relay_publishes_in_commit_order_and_marks_rows(migrated: Any) -> None:
    db = await migrated(GATEWAY_DIR, "outbox2")
    events = _events(25)
    for chunk in (events[:10], events[10:]):
        async with db.unit_of_work() as uow:
            await add_to_outbox(uow.session, outbox, chunk)
            await uow.commit()
    pub = RecordingPublisher()
    relay = OutboxRelay(db, outbox, pub, "topic-a", batch_size=7)
    assert await relay.publish_pending() == 25
    assert [eid for _, eid, _ in pub.published] == [e.id for e in events]
    assert {t for t, _, _ in pub.published} == {"topic-a"}
    assert await _unpublished(db) == 0
    assert await relay.publish_pending() == 0  # nothing twice


async def test_relay_batches_stop_at_their_byte_budget_and_lose_nothing(migrated: Any) -> None:
    """Large rows (batch events) cut a publish short of `batch_size`; every row still leaves once, in order."""
    db = await migrated(GATEWAY_DIR, "outbox-bytes")
    events = [
        Envelope(type="x.thing.made.v1", source="/t", subject="S", data={"pad": "x" * (300 + i)}) for i in range(40)
    ]
    async with db.unit_of_work() as uow:
        await add_to_outbox(uow.session, outbox, events)
        await uow.commit()
    sizes: list[int] = []

    class Sizing(RecordingPublisher):
        async def publish(self, topic: str, batch: Sequence[tuple[Envelope, bytes]]) -> None:
            sizes.append(sum(len(raw) for _, raw in batch))
            await super().publish(topic, batch)

    pub = Sizing()
    relay = OutboxRelay(db, outbox, pub, "t", batch_size=30, max_batch_bytes=3_000)
    assert await relay.publish_pending() == 40
    assert [eid for _, eid, _ in pub.published] == [e.id for e in events]
    assert len(sizes) > 4 and max(sizes) <= 3_000  # 40 rows of 300-odd bytes: about 9 per publish
    assert await _unpublished(db) == 0


async def test_broker_down_keeps_rows_until_it_returns(migrated: Any) -> None:
    db = await migrated(GATEWAY_DIR, "outbox3")
    async with db.unit_of_work() as uow:
        await add_to_outbox(uow.session, outbox, _events(4))
        await uow.commit()
    down = RecordingPublisher(fail=True)
    with pytest.raises(ConnectionError):
        await OutboxRelay(db, outbox, down, "t").publish_pending()
    assert await _unpublished(db) == 4
    up = RecordingPublisher()
    assert await OutboxRelay(db, outbox, up, "t").publish_pending() == 4
    assert await _unpublished(db) == 0


async def test_relay_killed_between_publish_and_mark_republishes_on_restart(migrated: Any) -> None:
    db = await migrated(GATEWAY_DIR, "outbox4")
    events = _events(3)
    async with db.unit_of_work() as uow:
        await add_to_outbox(uow.session, outbox, events)
        await uow.commit()
    pub = RecordingPublisher()
    relay = OutboxRelay(db, outbox, pub, "t")
    published = asyncio.Event()

    async def hang(*_: Any) -> None:
        published.set()
        await asyncio.Future()  # the process dies here: the mark never happens

    relay._mark_published = hang  # type: ignore[method-assign]
    relay.start()
    await asyncio.wait_for(published.wait(), 60)
    await relay.stop()
    assert len(pub.published) == 3
    assert await _unpublished(db) == 3  # the kill rolled the mark back

    restarted = OutboxRelay(db, outbox, pub, "t")
    assert await restarted.publish_pending() == 3
    assert [eid for _, eid, _ in pub.published] == [e.id for e in events] * 2  # at least once
    assert await _unpublished(db) == 0


async def test_a_relay_stops_at_once_even_when_cancelled_as_a_commit_wakes_it(migrated: Any) -> None:
    """In Python 3.11, `asyncio.wait_for` swallows a cancel that comes as the awaited event is set
    (CPython gh-86296): a relay waiting for a wake that way ran on after its stop, and the service's
    shutdown waited for it for ever. Each stop here follows a wake by 0 to 5 turns of the event loop, so
    some land in that window; each must end on its first cancel, well before a second one would come
    (shared/supervisor.CANCEL_GRACE_S)."""
    db = await migrated(GATEWAY_DIR, "outbox-stop")
    for turns in range(6):
        for _ in range(4):
            relay = OutboxRelay(db, outbox, RecordingPublisher(), "t", interval_s=30)
            relay.start()
            await asyncio.sleep(0.05)  # its first round is done: it waits for a wake
            relay.notify()
            for _ in range(turns):
                await asyncio.sleep(0)
            async with asyncio.timeout(CANCEL_GRACE_S / 2):
                await relay.stop()


async def test_a_task_that_swallows_its_cancel_is_cancelled_again_until_it_ends() -> None:
    swallowed = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            swallowed.set()  # what a library's wait_for did in Python 3.11
        await asyncio.sleep(3600)

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    async with asyncio.timeout(30):
        await cancel_and_wait(task, grace_s=0.1)
    assert swallowed.is_set() and task.cancelled()
