"""Fixtures shared by every test: tokens, fresh databases, the real broker's address."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from shared.auth import TokenService
from shared.settings import PlatformSettings

VALID_USCC = "91370200163562681G"
OTHER_USCC = "91370200MA3C00001N"


def _required_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        # Never skip: these tests must run in CI, where `make test` sets the variable.
        pytest.fail(f"{name} is not set: run the suite with `make test`, which starts PostgreSQL and Kafka")
    return value


@pytest.fixture
def platform() -> PlatformSettings:
    """Settings for one test: its own topic prefix, so runs and tests never share topics."""
    return PlatformSettings(topic_prefix=f"t{uuid.uuid4().hex[:10]}.", topic_partitions=3, log_json=False)


@pytest.fixture
def tokens(platform: PlatformSettings) -> TokenService:
    return TokenService(platform)


@pytest.fixture
def auth(tokens: TokenService) -> Callable[..., dict[str, str]]:
    def make(*scopes: str, agency: str | None = "QD-AGENCY-1", subject: str = "tester") -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens.mint(subject, list(scopes), agency=agency)}"}

    return make


@pytest.fixture
def kafka_bootstrap() -> str:
    return _required_env("QC_TEST_KAFKA")


@pytest.fixture
def kafka_ctl() -> str:
    return _required_env("QC_TEST_KAFKA_CTL")


@pytest.fixture
async def pg_database() -> AsyncIterator[Callable[[str], Any]]:
    """A factory of fresh PostgreSQL databases (dropped after the test): each test is isolated."""
    created: list[str] = []

    def admin_dsn() -> str:
        return _required_env("QC_TEST_PG_URL").replace("postgresql+asyncpg://", "postgresql://") + "/postgres"

    async def make(label: str) -> str:
        base = _required_env("QC_TEST_PG_URL")
        name = f"t_{label}_{uuid.uuid4().hex[:10]}"
        conn = await asyncpg.connect(admin_dsn())
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        created.append(name)
        return f"{base}/{name}"

    yield make
    if not created:
        return
    conn = await asyncpg.connect(admin_dsn())
    try:
        for name in created:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Callable[[str], str]:
    def make(label: str) -> str:
        return f"sqlite+aiosqlite:///{tmp_path}/{label}.db"

    return make
