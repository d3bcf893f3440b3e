"""The awards SQL on real databases built by its migrations (SQLite and PostgreSQL): the counting
queries agree with the domain's rules, and the credit-event handlers keep suspensions exact."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

import services.awards
from services.awards import repository
from services.awards.domain import HonourFacts, Suspension, active_on, count_by_type, load_catalog
from services.awards.main import SPEC
from services.awards.models import honours, outbox, suspensions
from services.awards.service import expire_due
from shared.consumer import IdempotentConsumer
from shared.db import Database
from shared.uuid7 import new_ids
from tests.e2e.awards_helpers import listed_event, make_uscc, removed_event

SERVICE_DIR = Path(services.awards.__file__).parent
NOW = datetime(2016, 1, 1, tzinfo=UTC)


def _row(honour_id: str, type_code: str, holder: str, granted_on: date, **over: Any) -> dict[str, Any]:
    row = {
        "honour_id": honour_id,
        "version": 1,
        "type_code": type_code,
        "holder_kind": "enterprise",
        "holder_id": holder,
        "holder_name": "甲",
        "district_code": "370211",
        "subject": None,
        "granted_on": granted_on,
        "valid_until": None,
        "state": "active",
        "certificate_no": honour_id,
        "granting_authority": "a",
        "revoked_on": None,
        "revoke_reason": None,
        "source": "import",
        "granted_by": "t",
        "created_at": NOW,
        "updated_at": NOW,
    }
    row.update(over)
    return row


async def test_counts_and_active_on_in_sql_match_the_domain_rules(migrated: Callable[..., Any]) -> None:
    db: Database = await migrated(SERVICE_DIR, "awards_counts")
    rnd = random.Random(20120704)
    codes = ["B5", "B6", "S2", "Q5"]
    rows, susp, facts = [], [], []
    for hid in new_ids(400):
        granted = date(2010, 1, 1) + timedelta(days=rnd.randrange(0, 6 * 365))
        valid = granted + timedelta(days=rnd.randrange(200, 1500)) if rnd.random() < 0.6 else None
        revoked = granted + timedelta(days=rnd.randrange(0, 900)) if rnd.random() < 0.15 else None
        ss = []
        for k in range(rnd.choice([0, 0, 1, 2])):
            start = granted + timedelta(days=rnd.randrange(0, 1200))
            end = start + timedelta(days=rnd.randrange(1, 400)) if rnd.random() < 0.6 else None
            ss.append(Suspension(f"e{k}", start, end))
            susp.append({"honour_id": hid, "entry_id": f"e{k}", "suspended_on": start, "reinstated_on": end})
        code = rnd.choice(codes)
        rows.append(_row(hid, code, make_uscc(rnd.randrange(1, 50)), granted, valid_until=valid, revoked_on=revoked))
        facts.append(HonourFacts(code, granted, valid, revoked, tuple(ss)))
    async with db.unit_of_work() as uow:
        await repository.insert_honours(uow.session, rows)
        await repository.add_suspensions(uow.session, susp)
        await uow.commit()
    async with db.unit_of_work() as uow:
        for start, end in [
            (date(2011, 1, 1), date(2015, 12, 31)),
            (date(2013, 6, 1), date(2013, 6, 1)),
            (date(2014, 1, 1), date(2014, 12, 31)),
        ]:
            assert await repository.counts_by_type(uow.session, start, end, None) == count_by_type(facts, start, end)
        for day in (date(2012, 3, 1), date(2015, 12, 31)):
            got = await repository.list_honours(uow.session, repository.HonourFilter(active_on=day), None, 10_000)
            expected = sorted(r["honour_id"] for r, f in zip(rows, facts, strict=True) if active_on(f, day))
            assert [r["honour_id"] for r in got] == expected


async def _consumer(db: Database) -> IdempotentConsumer:
    return IdempotentConsumer("awards", db, SPEC.inbox, SPEC.handlers)


async def _states(db: Database) -> dict[str, tuple[str, int]]:
    async with db.unit_of_work() as uow:
        rows = (await uow.session.execute(select(honours.c.certificate_no, honours.c.state, honours.c.version))).all()
    return {r.certificate_no: (r.state, r.version) for r in rows}


async def _count(db: Database, type_: str) -> int:
    async with db.unit_of_work() as uow:
        return int(await uow.session.scalar(select(func.count()).where(outbox.c.type == type_)) or 0)


async def test_overlapping_listings_keep_an_honour_suspended_until_the_last_is_removed(
    migrated: Callable[..., Any],
) -> None:
    db: Database = await migrated(SERVICE_DIR, "awards_listings")
    uscc = make_uscc(7)
    async with db.unit_of_work() as uow:
        await repository.insert_honours(
            uow.session,
            [
                _row(new_ids(1)[0], "B5", uscc, date(2013, 1, 1), certificate_no="long"),
                _row(
                    new_ids(1)[0], "B6", uscc, date(2013, 1, 1), certificate_no="short", valid_until=date(2015, 6, 30)
                ),
            ],
        )
        await uow.commit()
    consumer = await _consumer(db)
    first = listed_event("E1", uscc, listed_on=date(2015, 3, 1))
    await consumer.handle_batch([first, first])  # the same event twice in one batch
    await consumer.handle_batch([first])  # and again later
    assert await _states(db) == {"long": ("suspended", 2), "short": ("suspended", 2)}
    await consumer.handle_batch([listed_event("E2", uscc, listed_on=date(2015, 4, 1), decision_no="第2号")])
    assert await _count(db, "awards.honour.suspended.v1") == 2  # already suspended: no second event
    await consumer.handle_batch([removed_event("E1", uscc, date(2015, 5, 1))])
    assert await _states(db) == {"long": ("suspended", 2), "short": ("suspended", 2)}  # E2 still stands
    await consumer.handle_batch([removed_event("E2", uscc, date(2015, 8, 1))])
    assert await _states(db) == {"long": ("active", 3), "short": ("expired", 3)}
    assert await _count(db, "awards.honour.reinstated.v1") == 1
    assert await _count(db, "awards.honour.expired.v1") == 1
    # A stale listed event for a removed entry (lower version) changes nothing.
    await consumer.handle_batch([listed_event("E2", uscc, listed_on=date(2015, 4, 1))])
    assert await _states(db) == {"long": ("active", 3), "short": ("expired", 3)}
    async with db.unit_of_work() as uow:
        rows = (await uow.session.execute(select(suspensions).order_by(suspensions.c.entry_id))).mappings().all()
    assert {(r["entry_id"], r["reinstated_on"]) for r in rows} == {("E1", date(2015, 5, 1)), ("E2", date(2015, 8, 1))}


async def test_expiry_job_expires_every_due_honour_in_batches(migrated: Callable[..., Any]) -> None:
    db: Database = await migrated(SERVICE_DIR, "awards_expiry")
    due = [_row(i, "B5", make_uscc(1), date(2012, 1, 1), valid_until=date(2014, 12, 31)) for i in new_ids(2500)]
    keep = [_row(i, "B5", make_uscc(1), date(2013, 1, 1), valid_until=date(2015, 1, 1)) for i in new_ids(5)]
    async with db.unit_of_work() as uow:
        await repository.insert_honours(uow.session, due + keep)
        await uow.commit()
    async with db.unit_of_work() as uow:
        assert await expire_due(uow.session, load_catalog(), date(2015, 1, 1), NOW) == 2500
        await uow.commit()
    async with db.unit_of_work() as uow:
        states: dict[str, int] = dict(
            (await uow.session.execute(select(honours.c.state, func.count()).group_by(honours.c.state))).all()
        )
    assert states == {"expired": 2500, "active": 5}
    assert await _count(db, "awards.honour.expired.v1") == 2500
