"""Integration tests run on a real database built by Alembic: SQLite and PostgreSQL both."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from shared.db import Database
from shared.migrations import upgrade


@pytest.fixture(params=["sqlite", "postgres"])
async def migrated(
    request: pytest.FixtureRequest, sqlite_url: Callable[[str], str], pg_database: Callable[[str], Any]
) -> AsyncIterator[Callable[..., Any]]:
    """A factory: migrate a fresh database for a service package and return a `Database` on it."""
    made: list[Database] = []

    async def make(service_dir: Any, label: str) -> Database:
        if request.param == "sqlite":
            url = sqlite_url(label)
        else:
            url = await pg_database(label)
        await upgrade(url, service_dir)
        db = Database(url)
        made.append(db)
        return db

    yield make
    for db in made:
        await db.dispose()
