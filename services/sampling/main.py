"""The sampling service: where inspection agencies push their results."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.sampling import events as _events  # noqa: F401  (registers the event types)
from services.sampling.models import inbox, outbox
from services.sampling.router import router
from services.sampling.settings import SamplingSettings
from shared.bus import Bus
from shared.clock import Clock
from shared.runtime import ServiceRuntime, ServiceSpec
from shared.web import service_app

SPEC = ServiceSpec(name="sampling", package_dir=Path(__file__).parent, outbox=outbox, inbox=inbox)


def create_app(
    settings: SamplingSettings | None = None, *, bus: Bus | None = None, clock: Clock | None = None
) -> FastAPI:
    runtime = ServiceRuntime(SPEC, settings or SamplingSettings(), bus=bus, clock=clock)
    return service_app(
        runtime,
        title="QualityCity sampling",
        description="抽检 results: inspection agencies push, correct and retract sampling-inspection results.",
        routers=[router],
    )
