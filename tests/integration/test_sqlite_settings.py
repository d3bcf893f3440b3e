"""A service's SQLite connections take their page cache and memory map from its settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from services.sampling.settings import SamplingSettings
from shared.settings import PlatformSettings
from tests.helpers import sampling_runtime


async def test_a_services_sqlite_memory_settings_reach_its_connections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The page cache and memory map are per connection and per file: the embedded suite's memory.
    monkeypatch.setenv("QC_SAMPLING_SQLITE_CACHE_MB", "3")
    monkeypatch.setenv("QC_SAMPLING_SQLITE_MMAP_MB", "5")
    url = f"sqlite+aiosqlite:///{tmp_path}/memory.db"
    async with sampling_runtime(url) as rt, rt.database.unit_of_work() as uow:
        cache = await uow.session.scalar(text("PRAGMA cache_size"))
        mmap = await uow.session.scalar(text("PRAGMA mmap_size"))
    assert (cache, mmap) == (-3 * 1024, 5 * 1024 * 1024)
    # The defaults: a 16 MB cache and no map (shared/settings.py says why).
    monkeypatch.delenv("QC_SAMPLING_SQLITE_CACHE_MB")
    monkeypatch.delenv("QC_SAMPLING_SQLITE_MMAP_MB")
    defaults = SamplingSettings(database_url=url, platform=PlatformSettings(log_json=False))
    assert (defaults.sqlite_cache_mb, defaults.sqlite_mmap_mb) == (16, 0)
