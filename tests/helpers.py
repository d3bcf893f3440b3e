"""Helpers for tests: waiting for an eventually consistent read model, serving apps over real HTTP."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import uvicorn
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from services.sampling.main import SPEC as SAMPLING
from services.sampling.settings import SamplingSettings
from shared.runtime import ServiceRuntime
from shared.settings import PlatformSettings

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]], until: Callable[[T], bool], timeout: float = 30.0, interval: float = 0.1
) -> T:
    """Poll `probe` until `until(value)` holds; fail with the last value seen after `timeout`."""
    deadline = time.monotonic() + timeout
    value = await probe()
    while not until(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in {timeout}s; last value: {value!r}")
        await asyncio.sleep(interval)
        value = await probe()
    return value


def running(app: FastAPI) -> LifespanManager:
    """Run `app`'s lifespan with room for a loaded machine. asgi-lifespan's 5 s default is too short: a
    background task cancelled in the middle of a SQLite write can hold the lock until the next writer's
    busy timeout (10 s) ends, and a CI machine running the whole suite is slow to start four services."""
    return LifespanManager(app, startup_timeout=120, shutdown_timeout=120)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """An app served by uvicorn on a real loopback port inside the test's event loop."""

    def __init__(self, app: FastAPI, port: int | None = None, **options: Any) -> None:
        self.app = app
        self.port = port or free_port()
        options = {"log_level": "warning", **options}
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, lifespan="on", **options))
        self._task: asyncio.Task[Any] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Served:
        self._task = asyncio.create_task(self.server.serve())
        deadline = time.monotonic() + 60
        while not self.server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("server stopped during start-up")
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start in 60 s")
            await asyncio.sleep(0.05)
        return self

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await self._task


async def problem_slug(call: Awaitable[Any]) -> str:
    """The problem slug a use case refuses with (e.g. `own-proposal`): asserted by slug, the contract
    clients see, not by the exception's class."""
    try:
        await call
    except Exception as exc:
        slug = getattr(exc, "slug", None)
        if slug is None:
            raise
        return str(slug)
    raise AssertionError("the call succeeded; a problem was expected")


async def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 30.0) -> list[Any]:
    """The records of a Kafka topic from its start, once at least `expected` have arrived."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    seen: list[Any] = []
    try:

        async def more() -> int:
            for msgs in (await consumer.getmany(timeout_ms=500)).values():
                seen.extend(msgs)
            return len(seen)

        await eventually(more, lambda n: n >= expected, timeout=timeout)
    finally:
        await consumer.stop()
    return seen


@asynccontextmanager
async def sampling_runtime(database_url: str, **settings: Any) -> AsyncIterator[ServiceRuntime]:
    """The sampling service's runtime (database, relay, supervisor) started on `database_url`, without
    its jobs: the platform pieces on their own, below any app."""
    config = SamplingSettings(
        database_url=database_url, run_jobs=False, platform=PlatformSettings(log_json=False), **settings
    )
    runtime = ServiceRuntime(SAMPLING, config)
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()
