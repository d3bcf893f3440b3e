"""The sampling service: where inspection agencies push their results."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from services.sampling import models, service
from services.sampling.domain import Rules
from services.sampling.router import router
from services.sampling.settings import SamplingSettings
from shared.audit import install_audit
from shared.bus import Bus
from shared.clock import Clock
from shared.regions import load_regions
from shared.runtime import ServiceRuntime
from shared.scheduler import ScheduledJob
from shared.service_app import service_app, service_spec


async def _finalise(uow: Any, clock: Clock) -> int:
    return await service.finalise_due(uow.session, clock)


SPEC = service_spec(
    "sampling",
    models,
    jobs=[
        ScheduledJob(
            "finalise-results",
            _finalise,
            every_s=600,
            does="Make final every provisional fail whose objection window closed before today",
        )
    ],
)


def create_app(
    settings: SamplingSettings | None = None, *, bus: Bus | None = None, clock: Clock | None = None
) -> FastAPI:
    runtime = ServiceRuntime(SPEC, settings or SamplingSettings(), bus=bus, clock=clock)
    app = service_app(
        runtime,
        title="QualityCity sampling",
        description="抽检 results: inspection agencies push, correct and retract sampling-inspection results; "
        "pass rates and agency scorecards.",
        routers=[router],
    )
    install_audit(app, runtime)
    # Rules and regions are data files, read once here (cheap, no I/O beyond two small files).
    app.state.rules = Rules.load()
    app.state.regions = load_regions()
    return app
