"""The sampling service's corrections called directly (no HTTP) on an in-memory SQLite migrated by
Alembic: each correction is a new version, the history keeps every earlier one, and only the owning
agency may correct a live result at its current version."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

import services.sampling
from services.sampling import repository, service
from services.sampling.domain import Rules
from services.sampling.schemas import EXAMPLE, Correction, ResultIn
from shared.clock import FixedClock
from shared.db import Database
from shared.regions import load_regions
from tests.helpers import problem_slug

SERVICE_DIR = Path(services.sampling.__file__).parent
CLOCK = FixedClock(datetime(2014, 6, 10, 2, 0, tzinfo=UTC))


def context(agency: str, subject: str = "inspector") -> service.Context:
    return service.Context(actor=subject, clock=CLOCK, agency=agency, rules=Rules.load(), regions=load_regions())


OWNER = context("QD-AGENCY-1", "wang")
OTHER = context("QD-AGENCY-2", "li")


@pytest.fixture
async def db(memory_db: Callable[[Path], Awaitable[Database]]) -> AsyncIterator[Database]:
    yield await memory_db(SERVICE_DIR)


async def _record(db: Database, **over: Any) -> str:
    async with db.unit_of_work() as uow:
        result_id, created = await service.record_result(
            uow.session, OWNER, ResultIn.model_validate({**EXAMPLE, **over})
        )
        await uow.commit()
    assert created
    return result_id


async def _correct(db: Database, result_id: str, if_match: str, reason: str, **changes: Any) -> dict[str, Any]:
    async with db.unit_of_work() as uow:
        new = await service.correct(uow.session, OWNER, result_id, if_match, Correction(reason=reason, changes=changes))
        await uow.commit()
    return new


async def _current(db: Database, result_id: str) -> dict[str, Any]:
    async with db.sessions() as session:
        row = await repository.get(session, result_id)
    assert row is not None
    return row


async def _history(db: Database, result_id: str) -> list[dict[str, Any]]:
    async with db.sessions() as session:
        return await repository.versions(session, result_id)


async def test_a_correction_is_a_new_version_and_the_history_keeps_the_old(db: Database) -> None:
    rid = await _record(db)
    assert (await _current(db, rid))["version"] == 1
    assert await _history(db, rid) == []  # the first change saves version 1 with it

    await _correct(db, rid, '"1"', "型号笔误", model_spec="600mL")
    await _correct(db, rid, '"2"', "品名补全", product_name="崂山矿泉水（含气）")

    current = await _current(db, rid)
    assert (current["version"], current["model_spec"], current["product_name"]) == (3, "600mL", "崂山矿泉水（含气）")
    history = await _history(db, rid)
    assert [(h["version"], h["change"], h["reason"], h["actor"]) for h in history] == [
        (1, "recorded", None, "wang"),
        (2, "corrected", "型号笔误", "wang"),
        (3, "corrected", "品名补全", "wang"),
    ]
    snapshots = [orjson.loads(h["snapshot"]) for h in history]
    assert [(s["model_spec"], s["product_name"]) for s in snapshots] == [
        ("550mL", "崂山矿泉水"),
        ("600mL", "崂山矿泉水"),
        ("600mL", "崂山矿泉水（含气）"),
    ]


async def test_correcting_the_verdict_changes_the_standing_conclusion(db: Database) -> None:
    rid = await _record(db)
    assert (await _current(db, rid))["conclusion"] == "fail"
    await _correct(db, rid, '"1"', "误判", conclusion="pass", nonconforming_items=[])
    current = await _current(db, rid)
    assert (current["version"], current["conclusion"], current["original_conclusion"]) == (2, "pass", "pass")
    assert [h["change"] for h in await _history(db, rid)] == ["recorded", "corrected"]


async def test_refused_corrections_change_nothing(db: Database) -> None:
    rid = await _record(db)
    refused = {
        "precondition-failed": (OWNER, '"5"', {"model_spec": "600mL"}),
        "precondition-required": (OWNER, None, {"model_spec": "600mL"}),
        "not-owning-agency": (OTHER, '"1"', {"model_spec": "600mL"}),
        "nothing-to-correct": (OWNER, '"1"', {"model_spec": "550mL"}),
        "validation-error": (OWNER, '"1"', {"report_no": "OTHER-1"}),
    }
    for slug, (ctx, if_match, changes) in refused.items():
        async with db.unit_of_work() as uow:
            call = service.correct(uow.session, ctx, rid, if_match, Correction(reason="r", changes=changes))
            assert await problem_slug(call) == slug, changes
    assert (await _current(db, rid))["version"] == 1
    assert await _history(db, rid) == []


async def test_a_retracted_result_cannot_be_corrected(db: Database) -> None:
    rid = await _record(db)
    async with db.unit_of_work() as uow:
        await service.retract(uow.session, OWNER, rid, '"1"', "重复上报")
        await uow.commit()
    async with db.unit_of_work() as uow:
        call = service.correct(uow.session, OWNER, rid, '"2"', Correction(reason="r", changes={"model_spec": "1L"}))
        assert await problem_slug(call) == "result-retracted"
    assert [(h["version"], h["change"]) for h in await _history(db, rid)] == [(1, "recorded"), (2, "retracted")]
