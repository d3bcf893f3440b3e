"""The awards service's grant and import called directly (no HTTP) on an in-memory SQLite migrated
by Alembic: the honour rules (docs/honour-catalog.md), a blacklisted holder, certificate numbers, and
an import's rows created, duplicated or rejected each for its own reason."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

import services.awards
from services.awards import service
from services.awards.models import honours, listings, suspensions
from services.awards.schemas import GrantIn
from shared.clock import FixedClock
from shared.db import Database
from tests.e2e.awards_helpers import grant_body
from tests.helpers import problem_slug

SERVICE_DIR = Path(services.awards.__file__).parent
CLOCK = FixedClock(datetime(2015, 6, 1, 2, 0, tzinfo=UTC))
CTX = service.default_context("registrar", CLOCK)
A, B = "91370200163562681G", "91370200MA3C00001N"
TRADEMARK = "B3"  # 中国驰名商标: enterprises only, no fixed term


@pytest.fixture
async def db(memory_db: Callable[[Path], Awaitable[Database]]) -> AsyncIterator[Database]:
    yield await memory_db(SERVICE_DIR)


async def _grant(db: Database, body: dict[str, Any]) -> dict[str, Any]:
    async with db.unit_of_work() as uow:
        row = await service.grant(uow.session, CTX, GrantIn.model_validate(body))
        await uow.commit()
    return row


async def _refused(db: Database, body: dict[str, Any]) -> str:
    async with db.unit_of_work() as uow:
        return await problem_slug(service.grant(uow.session, CTX, GrantIn.model_validate(body)))


async def _count(db: Database) -> int:
    async with db.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(honours))).scalar_one())


async def _list(db: Database, uscc: str, listed_on: date) -> None:
    async with db.unit_of_work() as uow:
        await uow.session.execute(
            insert(listings).values(
                entry_id=f"e-{uscc}",
                version=2,
                uscc=uscc,
                enterprise_name="企业",
                decision_no="罚1",
                listed_on=listed_on,
            )
        )
        await uow.commit()


async def test_a_valid_grant_is_stored_active(db: Database) -> None:
    row = await _grant(db, grant_body(TRADEMARK, A, cert="TM-1"))
    assert (row["state"], row["version"], row["holder_id"], row["source"]) == ("active", 1, A, "api")
    assert row["valid_until"] is None  # a well-known trademark has no fixed term
    assert await _count(db) == 1


async def test_grants_breaking_a_rule_are_refused_and_store_nothing(db: Database) -> None:
    await _grant(db, grant_body(TRADEMARK, A, cert="TM-1"))
    refused = {
        "unknown-honour-type": grant_body(TRADEMARK, A, type_code="Z9"),
        "duplicate-certificate-no": grant_body(TRADEMARK, B, cert="TM-1"),
        "granted-in-future": grant_body(TRADEMARK, A, granted_on="2015-06-02"),
        "holder-kind-not-allowed": grant_body(TRADEMARK, A, holder_kind="region", holder_id="370211"),
        "invalid-uscc": grant_body(TRADEMARK, "91370200163562681X"),
        "valid-until-before-granted": grant_body(TRADEMARK, A, valid_until="2013-01-01", granted_on="2014-01-01"),
    }
    for slug, body in refused.items():
        assert await _refused(db, body) == slug, body
    assert await _count(db) == 1


async def test_a_blacklisted_enterprise_cannot_be_granted(db: Database) -> None:
    await _list(db, A, date(2015, 1, 10))
    assert await _refused(db, grant_body(TRADEMARK, A)) == "holder-blacklisted"
    assert (await _grant(db, grant_body(TRADEMARK, B)))["state"] == "active"  # another enterprise may


def _csv_row(body: dict[str, Any]) -> dict[str, str]:
    """A grant as an import file's row: strings, the subject flattened to subject_* columns."""
    row = {k: str(v) for k, v in body.items() if k != "subject"}
    for k, v in (body.get("subject") or {}).items():
        row[f"subject_{k}"] = str(v)
    return row


async def _import(db: Database, rows: list[dict[str, str]]) -> list[Any]:
    async with db.unit_of_work() as uow:
        outcomes = await service.import_rows(uow.session, CTX, rows)
        await uow.commit()
    return outcomes


def _summary(outcomes: list[Any]) -> list[tuple[int, str, list[str]]]:
    return [(o.row, o.outcome, [p.type.rsplit(":", 1)[-1] for p in o.problems or []]) for o in outcomes]


async def test_import_creates_duplicates_and_rejects_row_by_row(db: Database) -> None:
    await _grant(db, grant_body(TRADEMARK, A, cert="TM-STORED", granted_on="2013-05-01"))
    first = _csv_row(grant_body(TRADEMARK, A, cert="TM-10", granted_on="2013-01-01"))
    rows = [
        first,
        dict(first),  # the same honour twice in one file: one honour
        {**first, "holder_id": B},  # the same certificate for another holder
        _csv_row(grant_body(TRADEMARK, A, cert="TM-STORED", granted_on="2013-05-01")),  # already stored
        _csv_row(grant_body(TRADEMARK, B, cert="TM-STORED", granted_on="2013-05-01")),  # stored, other holder
        _csv_row(grant_body(TRADEMARK, A, type_code="Z9")),
        {**first, "certificate_no": "TM-11", "granted_on": "2099-01-01"},
    ]
    outcomes = await _import(db, rows)
    assert _summary(outcomes) == [
        (1, "created", []),
        (2, "duplicate", []),
        (3, "rejected", ["duplicate-certificate-no"]),
        (4, "duplicate", []),
        (5, "rejected", ["duplicate-certificate-no"]),
        (6, "rejected", ["unknown-honour-type"]),
        (7, "rejected", ["granted-in-future"]),
    ]
    assert outcomes[1].honour_id == outcomes[0].honour_id
    assert await _count(db) == 2
    # Importing the same file again changes nothing.
    again = await _import(db, rows)
    assert [o.outcome for o in again] == ["duplicate", "duplicate", "rejected", "duplicate", "rejected"] + [
        "rejected"
    ] * 2
    assert await _count(db) == 2


async def test_import_suspends_honours_granted_before_a_listing_and_refuses_those_after(db: Database) -> None:
    await _list(db, A, date(2014, 3, 1))
    before = _csv_row(grant_body(TRADEMARK, A, cert="TM-BEFORE", granted_on="2013-01-01"))
    after = _csv_row(grant_body(TRADEMARK, A, cert="TM-AFTER", granted_on="2014-06-01"))
    outcomes = await _import(db, [before, after])
    assert _summary(outcomes) == [(1, "created", []), (2, "rejected", ["holder-blacklisted"])]
    async with db.sessions() as session:
        state = (
            await session.execute(select(honours.c.state).where(honours.c.honour_id == outcomes[0].honour_id))
        ).scalar_one()
        suspended_on = (await session.execute(select(suspensions.c.suspended_on))).scalars().all()
    assert state == "suspended"
    assert suspended_on == [date(2014, 3, 1)]
