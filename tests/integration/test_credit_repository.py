"""The credit service's storage on a migrated database (SQLite and PostgreSQL): record versions,
compare-and-set transitions, the one-open-entry rule, batch screening and bulk consumption."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from stdnum.cn import uscc as stdnum_uscc

import services.credit
from services.credit import consumers, repository, service
from services.credit.domain import RuleBook
from services.credit.models import blacklist_entries, outbox, ratings
from shared.clock import FixedClock
from shared.consumer import Received, decode
from shared.contracts.credit import RATING_CHANGED
from shared.contracts.sampling import RESULT_CORRECTED, RESULT_FINALISED, SOURCE
from shared.db import Database
from shared.errors import StaleVersion
from shared.events import Envelope
from shared.preconditions import update_if_version
from tests.factories import snapshot

SERVICE_DIR = Path(services.credit.__file__).parent
BOOK = RuleBook.load()
CLOCK = FixedClock(datetime(2014, 3, 3, 2, 0, tzinfo=UTC))
A, B = "91370200163562681G", "91370200MA3C00001N"


def code(i: int) -> str:
    body = f"913702{i:011d}"
    return body + stdnum_uscc.calc_check_digit(body)


def result(uscc: str, rid: str, version: int = 1, **over: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "uscc": uscc,
        "enterprise_name": "企业",
        "level": "municipal",
        "sector": "manufacturing",
        "conclusion": "fail",
        "original_conclusion": "fail",
        "report_date": "2014-02-01",
        "sampling_date": "2014-01-20",
        "product_name": "p",
    }
    fields.update(over)
    return snapshot(rid, version, **fields)


def events(results: list[dict[str, Any]], type_: str = RESULT_FINALISED) -> list[Received[Any]]:
    """The events as the consumer hands them to its handlers: parsed with the contract's model."""
    extra = {"reason": "typo", "changed_fields": ["uscc"]} if type_ == RESULT_CORRECTED else {}
    envelopes = [Envelope(type=type_, source=SOURCE, subject=r["uscc"], data={"result": r, **extra}) for r in results]
    decoded = decode(envelopes, consumers.SUBSCRIBED, "credit")
    assert len(decoded) == len(envelopes)
    return decoded


def entry(
    uscc: str, entry_id: str, status: str = "listed", listed_on: date | None = date(2014, 1, 1), **over: Any
) -> dict[str, Any]:
    now = datetime(2014, 1, 1, tzinfo=UTC)
    e = {
        "entry_id": entry_id,
        "version": 1,
        "uscc": uscc,
        "enterprise_name": "企业",
        "reason_category": "fake_or_shoddy_products",
        "facts": "f",
        "legal_basis": "l",
        "deciding_authority": "d",
        "decision_no": "n",
        "publication_years": 3,
        "rule_set_version": "qd-credit-2012.1",
        "status": status,
        "automatic": False,
        "proposed_by": "alice",
        "proposed_at": now,
        "updated_at": now,
        "listed_on": listed_on,
        "publish_until": listed_on + timedelta(days=3 * 365) if listed_on else None,
    }
    e.update(over)
    return e


async def _db(migrated: Callable[..., Any]) -> Database:
    db: Database = await migrated(SERVICE_DIR, "credit")
    return db


async def test_newest_version_wins_and_redelivery_changes_nothing(migrated: Callable[..., Any]) -> None:
    db = await _db(migrated)
    handle = consumers.handlers(CLOCK, BOOK)[RESULT_FINALISED]
    async with db.unit_of_work() as uow:
        await handle(uow.session, events([result(A, "r1", 2, conclusion="pass", reinspection="overturned")]))
        await handle(uow.session, events([result(A, "r1", 1)]))  # older, arriving late
        await handle(uow.session, events([result(B, "r2", 1, conclusion="pass", original_conclusion="pass")]))
        await uow.commit()
    async with db.unit_of_work() as uow:
        recs = (await repository.records_of(uow.session, [A]))[A]
        assert [(r["source_version"], r["kind"]) for r in recs] == [(2, "neutral")]  # kept as a tombstone
        assert (await repository.records_of(uow.session, [B]))[B] == []  # a first-version pass is no credit fact
        assert await service.apply_records(uow.session, [dict(recs[0])], CLOCK, BOOK) == 0  # same version again


async def test_a_corrected_uscc_moves_the_record_and_both_ratings(migrated: Callable[..., Any]) -> None:
    db = await _db(migrated)
    async with db.unit_of_work() as uow:
        handle = consumers.handlers(CLOCK, BOOK)[RESULT_CORRECTED]
        await handle(uow.session, events([result(A, "r1", 1, level="national", sector="food")], RESULT_CORRECTED))
        await handle(uow.session, events([result(B, "r1", 2, level="national", sector="food")], RESULT_CORRECTED))
        await uow.commit()
    async with db.unit_of_work() as uow:
        recs = await repository.records_of(uow.session, [A, B])
        assert recs[A] == [] and len(recs[B]) == 1
        got = dict((await uow.session.execute(select(ratings.c.uscc, ratings.c.rating))).all())
        assert got == {A: "B", B: "C"}  # A fell to C with the fail, then back to B when it moved to B
        changed = list(
            await uow.session.scalars(
                select(outbox.c.subject).where(outbox.c.type == RATING_CHANGED).order_by(outbox.c.id)
            )
        )
        assert changed == [A, A, B]


async def test_compare_and_set_lets_exactly_one_writer_through(migrated: Callable[..., Any]) -> None:
    db = await _db(migrated)
    async with db.unit_of_work() as uow:
        await repository.insert_entries(uow.session, [entry(A, "e1", "proposed", None)])
        where = blacklist_entries.c.entry_id == "e1"
        assert await update_if_version(uow.session, blacklist_entries, where, 1, {"status": "listed"}) == 2
        with pytest.raises(StaleVersion) as stale:
            await update_if_version(uow.session, blacklist_entries, where, 1, {"status": "rejected"})
        assert stale.value.extensions["current_etag"] == '"2"'
        await uow.commit()
    async with db.unit_of_work() as uow:
        row = await repository.get_entry(uow.session, "e1")
        assert row is not None and (row["status"], row["version"]) == ("listed", 2)


async def test_one_open_entry_per_enterprise_is_enforced_by_the_database(migrated: Callable[..., Any]) -> None:
    db = await _db(migrated)
    async with db.unit_of_work() as uow:
        await repository.insert_entries(uow.session, [entry(A, "e1", "rejected", None), entry(A, "e2", "proposed")])
        await uow.commit()
    async with db.unit_of_work() as uow:
        with pytest.raises(IntegrityError):
            await repository.insert_entries(uow.session, [entry(A, "e3", "listed")])


async def test_screening_answers_each_enterprise_on_the_date_in_one_query(
    migrated: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    db = await _db(migrated)
    n = 20_000
    rows = [entry(code(i), f"e{i:08d}", listed_on=date(2013, 1, 1) + timedelta(days=i % 700)) for i in range(n)]
    rows[5] = entry(
        code(5), "e00000005", "removed", date(2013, 1, 1), removed_on=date(2013, 6, 1), removal_reason="repaired"
    )
    async with db.unit_of_work() as uow:
        for i in range(0, n, 5000):
            await repository.insert_entries(uow.session, rows[i : i + 5000])
        await uow.commit()
    asked = [code(i) for i in range(0, 2000, 2)]  # 1,000 USCCs, half of them never on record
    asked[-1] = code(10**9)
    on = date(2013, 3, 1)
    async with db.unit_of_work() as uow:
        started = time.perf_counter()
        found = await repository.listed_entries(uow.session, asked, on)
        elapsed = time.perf_counter() - started
    expected = {code(i) for i in range(0, 1998, 2) if date(2013, 1, 1) + timedelta(days=i % 700) <= on}
    expected.add(code(0))  # listed on its first day
    assert set(found) == expected
    assert code(5) not in found and code(10**9) not in found
    async with db.unit_of_work() as uow:
        later = await repository.listed_entries(uow.session, [code(4)], date(2013, 5, 1))
        assert code(4) in later
    with capsys.disabled():
        print(
            f"\n[credit] screening 1,000 USCCs over {n:,} entries ({db.engine.dialect.name}): {elapsed * 1000:.1f} ms"
        )


async def test_bulk_consumption_is_batched_and_proposes_at_the_threshold(
    migrated: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    db = await _db(migrated)
    handle = consumers.handlers(CLOCK, BOOK)[RESULT_FINALISED]
    n = 6000
    batch = [
        result(code(i % 2000), f"r{i}", report_date=(date(2014, 2, 1) - timedelta(days=i % 90)).isoformat())
        for i in range(n)
    ]  # 2,000 enterprises with three final fails each, all within the window
    started = time.perf_counter()
    async with db.unit_of_work() as uow:
        await handle(uow.session, events(batch))
        await uow.commit()
    elapsed = time.perf_counter() - started
    async with db.unit_of_work() as uow:
        proposed = await uow.session.scalar(
            select(func.count())
            .select_from(blacklist_entries)
            .where(blacklist_entries.c.status == "proposed", blacklist_entries.c.automatic.is_(True))
        )
        listed = await uow.session.scalar(
            select(func.count()).select_from(blacklist_entries).where(blacklist_entries.c.status == "listed")
        )
    assert (proposed, listed) == (2000, 0)
    with capsys.disabled():
        print(
            f"\n[credit] consumed {n:,} sampling events in one batch ({db.engine.dialect.name}): "
            f"{n / elapsed:,.0f} events/s (with 2,000 ratings and 2,000 proposals)"
        )
