"""Outages as clients see them: PostgreSQL unreachable answers 503 database-unavailable with
Retry-After on a connection that stays usable, logs one JSON record per event, and recovers; the
gateway's freshness counts the events it applied, not the sequence numbers rolled-back batches used."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import structlog
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

import services.gateway as gateway_pkg
from services.gateway import attainment, consumers
from services.gateway.models import inbox, rm_changes
from services.sampling.main import create_app as create_sampling
from services.sampling.settings import SamplingSettings
from shared.consumer import IdempotentConsumer, Received
from shared.db import Database
from shared.logging import configure_logging
from shared.migrations import upgrade
from shared.settings import PlatformSettings
from tests.factories import result_body, result_event
from tests.helpers import Served, free_port

pytestmark = [pytest.mark.postgres]

GATEWAY_DIR = Path(gateway_pkg.__file__).parent


class TcpProxy:
    """A TCP relay in front of PostgreSQL that the test can cut (connections refused, live ones
    aborted) and restore, without touching the shared server."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._live: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def cut(self) -> None:
        """New connections are refused and every open one is reset: the server is gone."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._live):
            writer.transport.abort()
        self._live.clear()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.transport.abort()
            return
        self._live.update((client_w, server_w))
        await asyncio.gather(self._pipe(client_r, server_w), self._pipe(server_r, client_w))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._live.discard(writer)
            writer.transport.abort()


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """The service's logs as production writes them (JSON lines), into a buffer the test reads."""
    buffer = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("INFO", json=True, stream=buffer, cache_loggers=False)
    try:
        yield buffer
    finally:
        structlog.reset_defaults()
        root.handlers, root.level = handlers, level


def test_a_library_traceback_is_one_json_record(json_logs: io.StringIO) -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    [line] = json_logs.getvalue().splitlines()
    record = orjson.loads(line)
    assert record["event"] == "Exception in ASGI application" and record["level"] == "error"
    assert record["exception"].startswith("Traceback") and "ValueError: bad" in record["exception"]


def _client_port(response: httpx.Response) -> int:
    """The client side's port of the connection that carried `response`."""
    return int(response.extensions["network_stream"].get_extra_info("client_addr")[1])


async def test_postgresql_unreachable_answers_503_with_retry_after_on_a_usable_connection_then_recovers(
    pg_database: Callable[[str], Any],
    auth: Callable[..., dict[str, str]],
    platform: PlatformSettings,
    json_logs: io.StringIO,
) -> None:
    direct = await pg_database("outage")
    url = make_url(direct)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.open()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    settings = SamplingSettings(database_url=proxied, platform=platform, run_jobs=False, relay_interval_s=0.1)
    served = await Served(create_sampling(settings)).start()
    configure_logging("INFO", json=True, stream=json_logs, cache_loggers=False)  # uvicorn's loggers too
    h = auth("sampling:write", "read")
    try:
        # A generous client timeout: on a loaded machine the first write (migrated pool, cold caches)
        # took over httpx's default 5 s; the outage is answered by the server's own timeouts.
        async with httpx.AsyncClient(base_url=served.url, limits=httpx.Limits(max_connections=1), timeout=60) as client:
            first = await client.post("/v1/results", json=result_body("OUT-1"), headers=h)
            assert first.status_code == 201, first.text
            port = _client_port(first)

            await proxy.cut()
            for call in (
                client.post("/v1/results", json=result_body("OUT-2"), headers=h),
                client.get("/v1/results", headers=h),
            ):
                down = await call
                assert down.status_code == 503, down.text
                assert down.headers["content-type"] == "application/problem+json"
                assert down.json()["type"] == "urn:qualitycity:problem:database-unavailable"
                assert int(down.headers["retry-after"]) > 0
                assert _client_port(down) == port  # the same keep-alive connection, not reset
            ready = await client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("failed")

            await proxy.open()
            again = await client.post("/v1/results", json=result_body("OUT-2"), headers=h)
            assert again.status_code == 201, again.text
            listed = await client.get("/v1/results", headers=h)
            assert listed.status_code == 200 and len(listed.json()["items"]) == 2
            assert _client_port(again) == _client_port(listed) == port
    finally:
        await served.stop()
        await proxy.cut()
    lines = [line for line in json_logs.getvalue().splitlines() if line.strip()]
    records = [orjson.loads(line) for line in lines]  # every line is one JSON record: no raw traceback
    assert sum(r.get("event") == "database unavailable" for r in records) >= 2
    assert not any(r.get("event") == "unhandled error" for r in records)


async def test_events_applied_counts_events_not_the_sequence_numbers_of_rolled_back_batches(
    pg_database: Callable[[str], Any],
) -> None:
    url = await pg_database("fresh")
    await upgrade(url, GATEWAY_DIR)
    db = Database(url)
    try:
        consumer = IdempotentConsumer("gateway", db, inbox, consumers.HANDLERS, batch_handler=consumers.apply_batch)
        await consumer.handle_batch([result_event(result_id=f"a{i}") for i in range(3)])

        async def apply_then_crash(session: AsyncSession, events: Sequence[Received[Any]]) -> None:
            await consumers.apply_batch(session, events)  # the feed rows take their sequence numbers...
            raise ConnectionResetError("connection lost")  # ...and the batch is rolled back (retried later)

        crashing = IdempotentConsumer("gateway", db, inbox, consumers.HANDLERS, batch_handler=apply_then_crash)
        retried = [result_event(result_id=f"b{i}") for i in range(2)]
        with pytest.raises(ConnectionResetError):
            await crashing.handle_batch(retried)
        await consumer.handle_batch(retried)  # redelivered and applied
        async with db.unit_of_work() as uow:
            top = await uow.session.scalar(select(func.max(rm_changes.c.seq)))
            fresh = await attainment.freshness(uow.session, datetime.now(UTC))
    finally:
        await db.dispose()
    assert top == 7  # the rolled-back batch used two sequence numbers
    assert fresh["events_applied"] == 5
