"""The credit service: Quality credit records, ratings and the four-eyes blacklist."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.credit_blacklist.models import inbox, outbox
from services.credit_blacklist.settings import CreditBlacklistSettings
from shared.bus import Bus
from shared.clock import Clock
from shared.runtime import ServiceRuntime, ServiceSpec
from shared.web import service_app

SPEC = ServiceSpec(name="credit", package_dir=Path(__file__).parent, outbox=outbox, inbox=inbox)


def create_app(
    settings: CreditBlacklistSettings | None = None, *, bus: Bus | None = None, clock: Clock | None = None
) -> FastAPI:
    runtime = ServiceRuntime(SPEC, settings or CreditBlacklistSettings(), bus=bus, clock=clock)
    return service_app(
        runtime, title="QualityCity credit", description="Quality credit records, ratings and the four-eyes blacklist."
    )
