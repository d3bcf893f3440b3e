"""The awards service: The registry of quality awards, brands, trademarks, GI products and standards."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.awards.models import inbox, outbox
from services.awards.settings import AwardsSettings
from shared.bus import Bus
from shared.clock import Clock
from shared.runtime import ServiceRuntime, ServiceSpec
from shared.web import service_app

SPEC = ServiceSpec(name="awards", package_dir=Path(__file__).parent, outbox=outbox, inbox=inbox)


def create_app(
    settings: AwardsSettings | None = None, *, bus: Bus | None = None, clock: Clock | None = None
) -> FastAPI:
    runtime = ServiceRuntime(SPEC, settings or AwardsSettings(), bus=bus, clock=clock)
    return service_app(
        runtime,
        title="QualityCity awards",
        description="The registry of quality awards, brands, trademarks, GI products and standards.",
    )
