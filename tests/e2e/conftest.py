"""The suite running: embedded in one process, or distributed over real HTTP, PostgreSQL and Kafka."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from qcity.embedded import create_embedded_app
from shared.settings import PlatformSettings


@pytest.fixture
async def embedded(tmp_path: Path, platform: PlatformSettings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_embedded_app(tmp_path / "data", platform)
    async with LifespanManager(app, startup_timeout=60) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://suite") as client:
            yield app, client


def result(report_no: str = "QD-2014-0001", **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "report_no": report_no,
        "uscc": "91370200163562681G",
        "sector": "food",
        "conclusion": "pass",
    }
    body.update(over)
    return body
