"""The embedded deployment: all four services in one process, SQLite files, the in-process bus.

The gateway app is the process's app on :8000. The three other services are mounted under
`/services/<name>` for direct access, the gateway reaches them through httpx's ASGI transport,
and each service's outbox still feeds the bus, so a crash loses nothing.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from services.awards.main import create_app as create_awards
from services.awards.settings import AwardsSettings
from services.credit.main import create_app as create_credit
from services.credit.settings import CreditSettings
from services.gateway.main import create_app as create_gateway
from services.gateway.settings import GatewaySettings
from services.sampling.main import create_app as create_sampling
from services.sampling.settings import SamplingSettings
from shared.bus import InProcessBus
from shared.clock import Clock
from shared.settings import PlatformSettings


class FromGateway:
    """The in-process path from the gateway to a service (only the gateway holds it): the client address
    the gateway forwards in X-Forwarded-For becomes the request's client, as a trusted proxy's would."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            forwarded = dict(scope["headers"]).get(b"x-forwarded-for")
            if forwarded:
                scope = {**scope, "client": (forwarded.decode("latin-1").strip(), 0)}
        await self.app(scope, receive, send)


#: The cyclic collector's first threshold while the suite runs (CPython's default is 700). Every
#: allocation-heavy batch (ingest requests, event projection) otherwise triggers a collection every
#: few hundred events, and every tenth of those scans the four services' long-lived objects: a fifth
#: of the projection's CPU, measured (issue 18). Cycles are still collected, in larger steps.
GC_GEN0_THRESHOLD = 10_000


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the collector's first threshold for the suite's run; the process's own afterwards."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], GC_GEN0_THRESHOLD), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def sqlite_url(data_dir: Path, name: str) -> str:
    return f"sqlite+aiosqlite:///{data_dir.resolve()}/{name}.db"


def create_embedded_app(
    data_dir: Path, platform: PlatformSettings | None = None, *, clock: Clock | None = None
) -> FastAPI:
    platform = (platform or PlatformSettings()).model_copy(update={"bus": "inprocess"})
    bus = InProcessBus()
    services: dict[str, FastAPI] = {
        "sampling": create_sampling(
            SamplingSettings(database_url=sqlite_url(data_dir, "sampling"), platform=platform), bus=bus, clock=clock
        ),
        "credit": create_credit(
            CreditSettings(database_url=sqlite_url(data_dir, "credit"), platform=platform),
            bus=bus,
            clock=clock,
        ),
        "awards": create_awards(
            AwardsSettings(database_url=sqlite_url(data_dir, "awards"), platform=platform), bus=bus, clock=clock
        ),
    }
    gateway = create_gateway(
        GatewaySettings(
            database_url=sqlite_url(data_dir, "gateway"),
            platform=platform,
            sampling_url="http://sampling.embedded",
            credit_url="http://credit.embedded",
            awards_url="http://awards.embedded",
        ),
        bus=bus,
        clock=clock,
        upstream_transports={name: httpx.ASGITransport(app=FromGateway(app)) for name, app in services.items()},
    )
    gateway_lifespan = gateway.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            stack.enter_context(fewer_collections())
            # Mounted apps' lifespans are not run by Starlette: run them here, services first.
            for service in services.values():
                await stack.enter_async_context(service.router.lifespan_context(service))
            await stack.enter_async_context(gateway_lifespan(app))
            await bus.start()  # every subscriber is registered: let the relays deliver
            yield

    gateway.router.lifespan_context = lifespan
    for name, service in services.items():
        gateway.mount(f"/services/{name}", service)
    gateway.state.embedded_services = services
    gateway.state.bus = bus
    return gateway
