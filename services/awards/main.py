"""The awards service: The registry of quality awards, brands, trademarks, GI products and standards."""

from __future__ import annotations

from fastapi import FastAPI

from services.awards import models
from services.awards.consumers import HANDLERS
from services.awards.domain import load_catalog
from services.awards.models import rate_limits
from services.awards.router import router
from services.awards.service import expiry_job
from services.awards.settings import AwardsSettings
from shared.audit import install_audit
from shared.bus import Bus
from shared.clock import Clock
from shared.quarantine import quarantine_router
from shared.ratelimit import public_limiter
from shared.regions import load_regions
from shared.runtime import ServiceRuntime, ServiceSpec
from shared.scheduler import ScheduledJob
from shared.service_app import service_app, service_spec

EXPIRY_JOB = "expire-honours"


def spec(expiry_every_s: float = 3600.0) -> ServiceSpec:
    return service_spec(
        "awards",
        models,
        handlers=HANDLERS,
        subscribes_to=("credit",),  # blacklist listings and removals suspend and reinstate honours
        jobs=(
            ScheduledJob(
                EXPIRY_JOB,
                expiry_job,
                expiry_every_s,
                does="Expire every active or suspended honour whose last valid day is before today",
            ),
        ),
    )


SPEC = spec()


def create_app(
    settings: AwardsSettings | None = None, *, bus: Bus | None = None, clock: Clock | None = None
) -> FastAPI:
    settings = settings or AwardsSettings()
    # Load the data files now: a malformed catalog or region table stops the service at start.
    load_catalog()
    load_regions()
    runtime = ServiceRuntime(spec(settings.expiry_every_s), settings, bus=bus, clock=clock)
    app = service_app(
        runtime,
        title="QualityCity awards",
        description="The registry of quality awards, brands, trademarks, GI products and standards: 名牌, 质量奖, "
        "标准化. Honours are suspended while their holder is blacklisted (learned from credit events).",
        routers=[router, quarantine_router()],
    )
    install_audit(app, runtime)
    app.state.public_limiter = public_limiter(runtime, rate_limits, settings)
    return app
