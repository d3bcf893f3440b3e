"""A real HTTP receiver for webhook tests, and the Standard Webhooks check written from the spec."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI, Request, Response

from qcity.embedded import create_embedded_app
from shared.clock import Clock
from shared.settings import PlatformSettings
from tests.helpers import Served, running

#: Fast retries for tests; loopback allowed (the receiver runs on 127.0.0.1).
FAST = {
    "QC_GATEWAY_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
    "QC_GATEWAY_WEBHOOK_POLL_S": "0.1",
    "QC_GATEWAY_WEBHOOK_RETRY_BASE_S": "0.05",
    "QC_GATEWAY_WEBHOOK_RETRY_MAX_S": "0.2",
    "QC_GATEWAY_WEBHOOK_DISABLE_AFTER_S": "600",
}


@dataclass
class Hit:
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = orjson.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """Records every request; answers `status` with `body` (tests change them while running)."""

    status: int = 200
    body: bytes = b""
    hits: list[Hit] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            self.hits.append(Hit(dict(request.headers), await request.body(), self.status))
            return Response(content=self.body, status_code=self.status)

        return app

    def delivered(self) -> list[Hit]:
        """The requests answered 2xx, in arrival order."""
        return [h for h in self.hits if 200 <= h.answered < 300]


@asynccontextmanager
async def receiving() -> AsyncIterator[tuple[Receiver, str]]:
    receiver = Receiver()
    served = await Served(receiver.app()).start()
    try:
        yield receiver, served.url + "/hook"
    finally:
        await served.stop()


@asynccontextmanager
async def embedded_suite(
    data: Path, platform: PlatformSettings, clock: Clock, monkeypatch: pytest.MonkeyPatch, **env: str
) -> AsyncIterator[httpx.AsyncClient]:
    for name, value in {**FAST, **env}.items():
        monkeypatch.setenv(name, value)
    app = create_embedded_app(data, platform, clock=clock)
    async with running(app) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://suite") as client:
            yield client


def spec_verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The Standard Webhooks check as the specification writes it, independent of any package:
    HMAC-SHA256 over `id.timestamp.body` with the base64-decoded secret, any `v1,` signature matching."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        version == "v1" and hmac.compare_digest(sig, expected)
        for version, _, sig in (s.partition(",") for s in headers["webhook-signature"].split())
    )


Auth = Callable[..., dict[str, str]]
