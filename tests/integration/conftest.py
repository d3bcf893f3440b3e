"""Integration tests run on a real database built by Alembic: SQLite and PostgreSQL both."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.pool import StaticPool

from shared.db import Database
from shared.migrations import alembic_config, upgrade


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


def _upgrade(conn: Connection, cfg: Config) -> None:
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "heads")


@pytest.fixture
async def memory_db() -> AsyncIterator[Callable[[Path], Awaitable[Database]]]:
    """A factory: an in-memory SQLite database migrated by Alembic for a service package, for fast
    service-layer tests. One connection (StaticPool) holds the database for the test's length."""
    made: list[Database] = []

    async def make(service_dir: Path) -> Database:
        url = "sqlite+aiosqlite://"
        db = Database(url, poolclass=StaticPool)
        made.append(db)
        async with db.engine.begin() as conn:
            await conn.run_sync(_upgrade, alembic_config(url, service_dir))
        return db

    yield make
    for db in made:
        await db.dispose()
