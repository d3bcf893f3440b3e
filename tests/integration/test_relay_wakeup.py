"""The outbox relay sleeps while nothing happens and wakes on a commit (an idle suite burns no CPU).

Every commit through the service's database wakes its relay, a consumer's or a job's as well as a
request's; the relay's poll only finds rows another process wrote (a replica on PostgreSQL).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from services.sampling.models import outbox
from shared.db import Database
from shared.events import Envelope
from shared.outbox import add_to_outbox
from shared.runtime import ServiceRuntime
from tests.helpers import eventually, sampling_runtime


def _events(n: int) -> list[Envelope]:
    return [
        Envelope(type="x.thing.made.v1", source="/t", subject="91370200163562681G", data={"i": i}) for i in range(n)
    ]


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(
    request: pytest.FixtureRequest, sqlite_url: Callable[[str], str], pg_database: Callable[[str], Any]
) -> str:
    return sqlite_url("wake") if request.param == "sqlite" else str(await pg_database("wake"))


@pytest.fixture
async def runtime(database_url: str) -> AsyncIterator[ServiceRuntime]:
    # The default poll intervals: 30 s on SQLite, 0.2 s on PostgreSQL (shared/settings.py).
    async with sampling_runtime(database_url) as rt:
        yield rt


def _count_statements(db: Database) -> list[str]:
    seen: list[str] = []

    @event.listens_for(db.engine.sync_engine, "before_cursor_execute")
    def _seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    return seen


async def test_an_idle_relay_on_sqlite_sends_no_statement(tmp_path: Path) -> None:
    async with sampling_runtime(f"sqlite+aiosqlite:///{tmp_path}/idle.db") as rt:
        assert rt.db is not None and rt.relay is not None
        await asyncio.sleep(0.5)  # the relay's first round at start
        seen = _count_statements(rt.db)
        await asyncio.sleep(2.0)  # ten polls at the former 0.2 s interval
        assert seen == []


async def test_a_commit_outside_a_request_wakes_the_relay(runtime: ServiceRuntime) -> None:
    # A consumer's or a job's unit of work comes from the database, not from a request.
    assert runtime.db is not None and runtime.relay is not None
    async with runtime.db.unit_of_work() as uow:
        await add_to_outbox(uow.session, outbox, _events(3))
        await uow.commit()
    # Well within the 30 s SQLite poll: the commit woke the relay.
    assert await eventually(runtime.relay.backlog, lambda n: n == 0, timeout=15) == 0
    assert runtime.relay.published_total == 3


async def test_rows_another_process_wrote_are_published_by_the_poll(database_url: str) -> None:
    poll = {"relay_interval_s": 0.2, "relay_sqlite_interval_s": 0.5}
    async with sampling_runtime(database_url, **poll) as rt:
        other = Database(database_url)  # another process's engine: its commits do not wake this relay
        try:
            assert rt.relay is not None
            async with other.unit_of_work() as uow:
                await add_to_outbox(uow.session, outbox, _events(2))
                await uow.commit()
            assert await eventually(rt.relay.backlog, lambda n: n == 0, timeout=25) == 0
            assert rt.relay.published_total == 2
        finally:
            await other.dispose()
