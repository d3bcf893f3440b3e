"""The public lists' rate limit (shared/ratelimit.py) on SQLite: GCRA per client, one upsert each."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.db import Database, new_metadata
from shared.errors import RateLimited
from shared.ratelimit import RateLimiter, rate_limit_table


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/limits.db")
    metadata = new_metadata()
    rate_limit_table(metadata)
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield database
    await database.dispose()


async def test_burst_then_rate_per_client(db: Database) -> None:
    clock = Clock()
    limiter = RateLimiter(rate_limit_table(new_metadata()), lambda: db, rate_per_s=1.0, burst=2, clock=clock)
    await limiter.take("a")
    await limiter.take("a")
    with pytest.raises(RateLimited) as info:
        await limiter.take("a")
    assert info.value.status == 429 and info.value.headers == {"Retry-After": "1"}
    await limiter.take("b")  # per client
    clock.now += 1.0
    await limiter.take("a")  # one token back after 1/rate s
    with pytest.raises(RateLimited):
        await limiter.take("a")


async def test_refused_requests_do_not_push_the_client_further_back(db: Database) -> None:
    clock = Clock()
    limiter = RateLimiter(rate_limit_table(new_metadata()), lambda: db, rate_per_s=2.0, burst=1, clock=clock)
    await limiter.take("a")
    for _ in range(5):
        assert await limiter.wait("a") == pytest.approx(0.5)
    clock.now += 0.5
    assert await limiter.wait("a") == 0.0
