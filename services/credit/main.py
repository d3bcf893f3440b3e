"""The credit service: Quality credit records, ratings and the four-eyes blacklist."""

from __future__ import annotations

import dataclasses
from typing import Any

import structlog
from fastapi import FastAPI

from services.credit import consumers, models, service
from services.credit.domain import RuleBook
from services.credit.models import rate_limits
from services.credit.router import router
from services.credit.settings import CreditSettings
from services.credit.working_days import WorkingDays
from shared.audit import install_audit
from shared.bus import Bus
from shared.clock import Clock, SystemClock
from shared.quarantine import quarantine_router
from shared.ratelimit import public_limiter
from shared.runtime import ServiceRuntime, ServiceSpec
from shared.scheduler import ScheduledJob
from shared.service_app import service_app, service_spec

SPEC = service_spec("credit", models, subscribes_to=("sampling", "awards"))

EXPIRY_JOB = "expire-listings"
NOTICE_JOB = "list-after-notice"

log = structlog.get_logger("credit")


def build_spec(clock: Clock, book: RuleBook, expiry_every_s: float) -> ServiceSpec:
    """The spec with handlers and jobs bound to this app's clock and rules."""

    async def expire(uow: Any, job_clock: Clock) -> int:
        return await service.expire_due(uow.session, job_clock, book)

    async def after_notice(uow: Any, job_clock: Clock) -> int:
        return await service.list_after_notice(uow.session, job_clock, book)

    return dataclasses.replace(
        SPEC,
        handlers=consumers.handlers(clock, book),
        batch_handler=consumers.batch_handler(clock, book),
        jobs=(
            ScheduledJob(
                EXPIRY_JOB,
                expire,
                every_s=expiry_every_s,
                does="Remove every listing whose publication period ended before today (removed the day after)",
            ),
            ScheduledJob(
                NOTICE_JOB,
                after_notice,
                every_s=expiry_every_s,
                does="List every noticed entry whose statement period ended without a statement (from the day after)",
            ),
        ),
    )


def create_app(
    settings: CreditSettings | None = None, *, bus: Bus | None = None, clock: Clock | None = None
) -> FastAPI:
    settings = settings or CreditSettings()
    clock = clock or SystemClock()
    book = RuleBook.load(working_days=WorkingDays.from_file(settings.holiday_file))
    today = clock.today()
    if today.month >= 11 and book.working_days.covered_through() <= today.year:
        # Notices given from mid-December count into next year: said at every start until it is loaded.
        log.warning(
            "next year's holiday arrangement is not loaded: statement deadlines into it will be refused",
            covered_through=book.working_days.covered_through(),
            setting="QC_CREDIT_HOLIDAY_FILE",
        )
    runtime = ServiceRuntime(build_spec(clock, book, settings.expiry_every_s), settings, bus=bus, clock=clock)
    app = service_app(
        runtime,
        title="QualityCity credit",
        description="Quality credit records (质量信用), transparent ratings and the four-eyes blacklist (黑名单): "
        "proposal, approval by another reviewer, publication, removal by expiry, credit repair or as wrongful; "
        "checks and screenings of up to 1,000 enterprises on any date.",
        routers=[router, quarantine_router()],
    )
    install_audit(app, runtime)
    app.state.rules = book
    app.state.register_index = service.RegisterIndex()
    app.state.public_limiter = public_limiter(runtime, rate_limits, settings)
    return app
