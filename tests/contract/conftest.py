"""The embedded suite served over HTTP on this machine, for tools that speak HTTP (schemathesis, a
generated client): uvicorn in a thread of the test process, one suite per test module."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn

from qcity.cli import UVICORN_OPTIONS
from qcity.embedded import create_embedded_app
from shared.auth import SCOPES, TokenService
from shared.clock import FixedClock
from shared.settings import PlatformSettings


@dataclass(frozen=True)
class Served:
    url: str
    tokens: TokenService

    def token(self, *scopes: str, agency: str | None = "QD-CONTRACT", subject: str = "contract-tester") -> str:
        return self.tokens.mint(subject, list(scopes or sorted(SCOPES)), agency=agency)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    platform = PlatformSettings(topic_prefix=f"t{uuid.uuid4().hex[:10]}.", log_json=False)
    data: Path = tmp_path_factory.mktemp("suite")
    port = _free_port()
    # mid-2015, like the e2e suite: the sample data's objection windows and plan years are current
    clock = FixedClock(datetime(2015, 6, 1, 4, 0, tzinfo=UTC))
    app = create_embedded_app(data, platform, clock=clock)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **UVICORN_OPTIONS))
    thread = threading.Thread(target=server.run, name="contract-suite", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the embedded suite did not start")
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    assert httpx.get(url + "/healthz").status_code == 200
    try:
        yield Served(url, TokenService(platform))
    finally:
        server.should_exit = True
        thread.join(30)
