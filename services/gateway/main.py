"""The gateway: one entry point, and the read models built from every service's events."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import httpx
from fastapi import FastAPI

from services.gateway.consumers import HANDLERS
from services.gateway.models import inbox, outbox
from services.gateway.router import router
from services.gateway.routes import forwarding_router
from services.gateway.settings import GatewaySettings
from services.gateway.upstream import Upstreams
from shared.bus import Bus
from shared.clock import Clock
from shared.runtime import ServiceRuntime, ServiceSpec
from shared.web import service_app

SPEC = ServiceSpec(
    name="gateway",
    package_dir=Path(__file__).parent,
    outbox=outbox,
    inbox=inbox,
    handlers=HANDLERS,
    subscribes_to=("sampling", "credit", "awards"),
)


def create_app(
    settings: GatewaySettings | None = None,
    *,
    bus: Bus | None = None,
    clock: Clock | None = None,
    upstream_transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    settings = settings or GatewaySettings()
    runtime = ServiceRuntime(SPEC, settings, bus=bus, clock=clock)

    async def open_upstreams(app: FastAPI) -> None:
        app.state.upstreams = Upstreams(
            {"sampling": settings.sampling_url, "credit": settings.credit_url, "awards": settings.awards_url},
            settings.upstream_timeout_s,
            upstream_transports,
        )

    async def close_upstreams(app: FastAPI) -> None:
        await app.state.upstreams.aclose()

    return service_app(
        runtime,
        title="QualityCity gateway",
        description="One entry point: attainment and credit answers built from events; writes forwarded to the "
        "owning service.",
        routers=[router, forwarding_router()],
        on_start=open_upstreams,
        on_stop=close_upstreams,
    )
