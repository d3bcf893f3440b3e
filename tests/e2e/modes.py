"""The suite in either mode behind one client based at the gateway, for tests run in both: embedded
(one process, SQLite) and distributed (four apps over HTTP, PostgreSQL, Kafka)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from qcity.embedded import create_embedded_app
from shared.clock import FixedClock
from shared.settings import PlatformSettings
from tests.e2e.distributed_helpers import four_apps
from tests.helpers import running


async def gateway_client(
    mode: str,
    started: datetime,
    tmp_path: Path,
    platform: PlatformSettings,
    kafka_bootstrap: str,
    pg_database: Callable[[str], Any],
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the gateway of the suite started at `started` (its clock stands there)."""
    if mode == "embedded":
        app = create_embedded_app(tmp_path / "data", platform, clock=FixedClock(started))
        async with running(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://suite", timeout=120) as c:
                yield c
        return
    async with four_apps(platform, kafka_bootstrap, pg_database, FixedClock(started)) as apps:
        async with httpx.AsyncClient(base_url=apps.gateway.url, timeout=120) as c:
            yield c
