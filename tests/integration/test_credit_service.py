"""The credit service's use cases called directly (no HTTP) on an in-memory SQLite migrated by
Alembic: four eyes on every decision, and the proposal's transitions. See docs/credit-rules.md."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import services.credit
from services.credit import repository, service
from services.credit.domain import RuleBook
from services.credit.models import outbox
from services.credit.schemas import Approval, Proposal, Rejection
from shared.clock import FixedClock
from shared.db import Database
from tests.helpers import problem_slug

SERVICE_DIR = Path(services.credit.__file__).parent
A, B = "91370200163562681G", "91370200MA3C00001N"
CLOCK = FixedClock(datetime(2014, 7, 1, 2, 0, tzinfo=UTC))
BOOK = RuleBook.load()
ALICE = service.Context(actor="alice", clock=CLOCK, book=BOOK)  # the proposing officer
BOB = service.Context(actor="bob", clock=CLOCK, book=BOOK)  # the reviewer


def proposal(uscc: str) -> Proposal:
    return Proposal.model_validate(
        {
            "uscc": uscc,
            "enterprise_name": "青岛某食品有限公司",
            "reason_category": "fake_or_shoddy_products",
            "facts": "以次充好",
            "legal_basis": "《产品质量法》第五十条",
            "deciding_authority": "青岛市质量技术监督局",
            "decision_no": "青质监罚〔2014〕12号",
            "appeal_route": "行政复议",
            "appeal_deadline": "2014-08-31",
        }
    )


@pytest.fixture
async def db(memory_db: Callable[[Path], Awaitable[Database]]) -> AsyncIterator[Database]:
    yield await memory_db(SERVICE_DIR)


async def _propose(db: Database, uscc: str) -> dict[str, Any]:
    async with db.unit_of_work() as uow:
        entry = await service.propose(uow.session, ALICE, proposal(uscc))
        await uow.commit()
    return entry


async def _entry(db: Database, entry_id: str) -> dict[str, Any]:
    async with db.sessions() as session:
        entry = await repository.get_entry(session, entry_id)
    assert entry is not None
    return entry


async def _actions(db: Database, entry_id: str) -> list[tuple[str, str, int, str]]:
    async with db.sessions() as session:
        rows = await repository.history_of(session, entry_id=entry_id)
    return [(r["action"], r["actor"], r["version"], r["status"]) for r in rows]


async def _entry_events(db: Database, uscc: str) -> list[str]:
    """The verbs of the entry events in the outbox (`credit.blacklist_entry.listed.v1` → `listed`)."""
    async with db.sessions() as session:
        rows = await session.execute(select(outbox.c.type).where(outbox.c.subject == uscc).order_by(outbox.c.id))
    return [t.split(".")[-2] for t in rows.scalars() if "entry" in t]


async def test_the_proposer_can_neither_approve_nor_reject(db: Database) -> None:
    entry = await _propose(db, A)
    assert (entry["status"], entry["version"], entry["proposed_by"]) == ("proposed", 1, "alice")
    async with db.unit_of_work() as uow:
        assert await problem_slug(service.approve(uow.session, ALICE, entry["entry_id"], '"1"', Approval())) == (
            "own-proposal"
        )
        assert await problem_slug(
            service.reject(uow.session, ALICE, entry["entry_id"], '"1"', Rejection(reason="r"))
        ) == ("own-proposal")
    stored = await _entry(db, entry["entry_id"])
    assert (stored["status"], stored["version"], stored["decided_by"]) == ("proposed", 1, None)
    assert await _actions(db, entry["entry_id"]) == [("proposed", "alice", 1, "proposed")]


async def test_another_reviewer_approves_and_the_entry_is_listed(db: Database) -> None:
    entry = await _propose(db, A)
    async with db.unit_of_work() as uow:
        listed = await service.approve(uow.session, BOB, entry["entry_id"], '"1"', Approval(comment="ok"))
        await uow.commit()
    stored = await _entry(db, entry["entry_id"])
    assert (stored["status"], stored["version"], stored["decided_by"]) == ("listed", 2, "bob")
    assert stored["listed_on"] == CLOCK.today() == date(2014, 7, 1)
    assert stored["publish_until"] is not None and stored["publish_until"] > stored["listed_on"]
    assert listed["version"] == stored["version"]
    assert await _actions(db, entry["entry_id"]) == [
        ("proposed", "alice", 1, "proposed"),
        ("listed", "bob", 2, "listed"),
    ]
    assert await _entry_events(db, A) == ["proposed", "listed"]
    # A decided entry is not pending any more: neither decision can be taken twice.
    async with db.unit_of_work() as uow:
        assert await problem_slug(service.approve(uow.session, BOB, entry["entry_id"], '"2"', Approval())) == (
            "entry-not-pending"
        )
        assert await problem_slug(
            service.reject(uow.session, BOB, entry["entry_id"], '"2"', Rejection(reason="r"))
        ) == ("entry-not-pending")


async def test_another_reviewer_rejects_and_the_entry_closes(db: Database) -> None:
    entry = await _propose(db, B)
    async with db.unit_of_work() as uow:
        await service.reject(uow.session, BOB, entry["entry_id"], '"1"', Rejection(reason="证据不足"))
        await uow.commit()
    stored = await _entry(db, entry["entry_id"])
    assert (stored["status"], stored["version"], stored["decided_by"]) == ("rejected", 2, "bob")
    assert stored["decision_comment"] == "证据不足"
    assert stored["listed_on"] is None
    assert await _actions(db, entry["entry_id"]) == [
        ("proposed", "alice", 1, "proposed"),
        ("rejected", "bob", 2, "rejected"),
    ]
    assert await _entry_events(db, B) == ["proposed", "rejected"]
    async with db.unit_of_work() as uow:
        assert await problem_slug(service.approve(uow.session, BOB, entry["entry_id"], '"2"', Approval())) == (
            "entry-not-pending"
        )
    # The rejected entry no longer blocks a new proposal for the enterprise.
    assert (await _propose(db, B))["status"] == "proposed"


async def test_a_decision_needs_the_current_version(db: Database) -> None:
    entry = await _propose(db, A)
    async with db.unit_of_work() as uow:
        assert await problem_slug(service.approve(uow.session, BOB, entry["entry_id"], None, Approval())) == (
            "precondition-required"
        )
        assert await problem_slug(service.approve(uow.session, BOB, entry["entry_id"], '"7"', Approval())) == (
            "precondition-failed"
        )
    assert (await _entry(db, entry["entry_id"]))["status"] == "proposed"


async def test_one_open_entry_per_enterprise(db: Database) -> None:
    await _propose(db, A)
    async with db.unit_of_work() as uow:
        assert await problem_slug(service.propose(uow.session, ALICE, proposal(A))) == "entry-already-open"
