"""Batch events (`sampling.result_batch.recorded.v1`): projected exactly as the single events they stand
for, once, and set aside whole when their contract refuses a snapshot (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Table, func, select

import services.credit as credit_pkg
import services.gateway as gateway_pkg
from services.credit import consumers as credit_consumers
from services.credit import models as credit_models
from services.credit.domain import RuleBook
from services.gateway import consumers as gateway_consumers
from services.gateway import models as gateway_models
from shared.clock import FixedClock
from shared.consumer import IdempotentConsumer
from shared.contracts.sampling import RESULT_BATCH_RECORDED, RESULT_RECORDED, SOURCE, item_id
from shared.events import Envelope
from tests.factories import USCC_A, USCC_B, result_event

GATEWAY_DIR = Path(gateway_pkg.__file__).parent
CREDIT_DIR = Path(credit_pkg.__file__).parent
CLOCK = FixedClock(datetime(2014, 7, 1, 2, 0, tzinfo=UTC))
AT = datetime(2014, 5, 25, tzinfo=UTC)


def _singles() -> list[Envelope]:
    """Twelve results over two enterprises, sectors, districts and outcomes (final fails count for credit)."""
    out = []
    for i in range(12):
        fail = i % 3 == 0
        out.append(
            result_event(
                result_id=f"r{i:02d}",
                uscc=USCC_A if i % 2 else USCC_B,
                enterprise_name="青岛某饮品有限公司" if i % 2 else "某合作社",
                sector="food" if i % 4 else "agricultural",
                district_code="370212" if i < 6 else "370283",
                conclusion="fail" if fail else "pass",
                original_conclusion="fail" if fail else "pass",
                nonconforming_count=1 if fail else 0,
            )
        )
    for e in out:
        e.time = AT
    return out


def _batch(singles: list[Envelope], event_id: str = "01a233b6-0000-7000-8000-000000000001") -> Envelope:
    return Envelope(
        type=RESULT_BATCH_RECORDED,
        source=SOURCE,
        subject="QD-AGENCY-1",
        data={"results": [e.data["result"] for e in singles]},
        id=event_id,
        time=AT,
    )


def _consumers(gateway_db: Any, credit_db: Any) -> tuple[IdempotentConsumer, IdempotentConsumer]:
    gateway = IdempotentConsumer(
        "gateway",
        gateway_db,
        gateway_models.inbox,
        gateway_consumers.HANDLERS,
        batch_handler=gateway_consumers.apply_batch,
    )
    book = RuleBook.load()
    credit = IdempotentConsumer(
        "credit",
        credit_db,
        credit_models.inbox,
        credit_consumers.handlers(CLOCK, book),
        batch_handler=credit_consumers.batch_handler(CLOCK, book),
    )
    return gateway, credit


async def _rows(db: Any, table: Table, skip: tuple[str, ...] = ()) -> list[tuple[Any, ...]]:
    cols = [c for c in table.c if c.name not in skip]
    async with db.reader() as uow:
        rows = (await uow.session.execute(select(*cols))).all()
    return sorted((tuple(r) for r in rows), key=repr)


async def _state(gateway_db: Any, credit_db: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every read model the two consumers write, without what differs by design (ids, applied_at, seq)."""
    g = gateway_models
    return {
        "results": await _rows(gateway_db, g.rm_results, ("updated_at",)),
        "counts": await _rows(gateway_db, g.rm_pass_counts),
        "daily": await _rows(gateway_db, g.rm_pass_daily),
        "enterprises": await _rows(gateway_db, g.rm_enterprises, ("updated_at",)),
        "feed": await _rows(gateway_db, g.rm_changes, ("seq", "event_id", "applied_at")),
        "records": await _rows(credit_db, credit_models.records, ("updated_at",)),
        "register": await _rows(credit_db, credit_models.enterprises),
        "ratings": await _rows(credit_db, credit_models.ratings, ("updated_at",)),
    }


async def _count(db: Any, table: Table) -> int:
    async with db.reader() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(table)) or 0)


async def test_a_batch_event_projects_as_its_single_events_and_once(migrated: Any) -> None:
    singles = _singles()
    by_single = _consumers(await migrated(GATEWAY_DIR, "g-single"), await migrated(CREDIT_DIR, "c-single"))
    by_batch = _consumers(await migrated(GATEWAY_DIR, "g-batch"), await migrated(CREDIT_DIR, "c-batch"))
    for consumer in by_single:
        await consumer.handle_batch(singles)
    batch = _batch(singles)
    for consumer in by_batch:
        await consumer.handle_batch([batch])

    expected = await _state(by_single[0].db, by_single[1].db)
    assert len(expected["results"]) == 12 and len(expected["feed"]) == 12 and expected["records"]  # not vacuous
    assert await _state(by_batch[0].db, by_batch[1].db) == expected

    # The feed holds the single events the batch stands for, under ids derived from the batch's.
    gateway = by_batch[0]
    async with gateway.db.reader() as uow:
        feed = (
            await uow.session.execute(select(gateway_models.rm_changes.c.event_id, gateway_models.rm_changes.c.type))
        ).all()
    assert sorted(feed) == sorted((item_id(batch.id, e.data["result"]["result_id"]), RESULT_RECORDED) for e in singles)

    # Delivered again (a redelivery, or the same record read twice): the inbox skips it; nothing moves.
    for consumer in by_batch:
        await consumer.handle_batch([_batch(singles)])
        assert consumer.duplicates_total == 1
        assert await _count(consumer.db, consumer.inbox) == 1  # one inbox row for the batch, not twelve
    assert await _state(by_batch[0].db, by_batch[1].db) == expected


async def test_a_batch_with_a_snapshot_its_contract_refuses_is_set_aside_whole(migrated: Any) -> None:
    singles = _singles()
    bad = _batch(singles)
    bad.data["results"][5] = {**bad.data["results"][5], "conclusion": "maybe"}
    gateway, _ = _consumers(await migrated(GATEWAY_DIR, "g-bad"), await migrated(CREDIT_DIR, "c-bad"))
    good = result_event(result_id="r-alone")
    await gateway.handle_batch([good, bad])

    assert await _count(gateway.db, gateway_models.rm_results) == 1  # the good single event; none of the batch
    async with gateway.db.reader() as uow:
        quarantined = (
            await uow.session.execute(
                select(gateway_models.quarantined_events.c.event_id, gateway_models.quarantined_events.c.reason)
            )
        ).all()
    assert [tuple(r) for r in quarantined] == [(bad.id, "invalid")]
    assert await _count(gateway.db, gateway.inbox) == 2  # set aside, not redelivered for ever
