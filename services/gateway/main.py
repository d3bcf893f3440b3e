"""The gateway: one entry point, and the read models built from every service's events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import httpx
from fastapi import APIRouter, FastAPI

from services.gateway import models, openapi
from services.gateway.assessment_router import router as assessment_router
from services.gateway.consumers import HANDLERS, apply_batch
from services.gateway.dashboard import dashboard_router
from services.gateway.dashboard.assessment import assessment_pages
from services.gateway.dashboard.csrf import DashboardHeadersMiddleware
from services.gateway.dashboard.disclosure import disclosure_pages
from services.gateway.dashboard.warnings import warnings_pages
from services.gateway.early_warning.engine import with_warnings
from services.gateway.early_warning.router import router as warnings_router
from services.gateway.early_warning.rules import DEFAULT_RULES, load_rules
from services.gateway.forwarding import AUDIT_PREFIX, FORWARDS, QUARANTINE_PREFIX, forwarding_router
from services.gateway.open_data import router as open_data_router
from services.gateway.plans import PLANS_DIR, load_plans
from services.gateway.repository import FEED_APPENDED
from services.gateway.router import router
from services.gateway.settings import GatewaySettings
from services.gateway.upstream import Upstreams
from services.gateway.webhooks.dispatcher import WebhookDispatcher
from services.gateway.webhooks.router import router as webhooks_router
from shared.audit import install_audit
from shared.bus import Bus
from shared.clock import Clock
from shared.db import UnitOfWork
from shared.quarantine import quarantine_router
from shared.ratelimit import public_limiter
from shared.runtime import ServiceRuntime
from shared.service_app import service_app, service_spec

SPEC = service_spec(
    "gateway", models, handlers=HANDLERS, batch_handler=apply_batch, subscribes_to=("sampling", "credit", "awards")
)


def _routers() -> list[APIRouter]:
    """The gateway's own routes, its pages, and the forwarding table (in the order they match)."""
    api = [router, assessment_router, open_data_router, forwarding_router()]
    pages = [dashboard_router, disclosure_pages, warnings_pages, assessment_pages]
    return [*api, *pages, quarantine_router(QUARANTINE_PREFIX), webhooks_router, warnings_router]


def create_app(
    settings: GatewaySettings | None = None,
    *,
    bus: Bus | None = None,
    clock: Clock | None = None,
    upstream_transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    settings = settings or GatewaySettings()
    # Read now: a malformed plan file stops the gateway at start, naming the file and the line.
    plans = load_plans(Path(settings.plans_dir) if settings.plans_dir else PLANS_DIR)
    # …and the warning rules: the consumer raises warnings from each batch it applies (docs/warnings.md).
    rules = load_rules(Path(settings.warning_rules_file) if settings.warning_rules_file else DEFAULT_RULES)
    runtime = ServiceRuntime(
        replace(SPEC, batch_handler=with_warnings(apply_batch, rules)), settings, bus=bus, clock=clock
    )
    webhooks = WebhookDispatcher(
        runtime.unit_of_work, settings, runtime.supervisor.registry, reader=lambda: runtime.database.reader()
    )

    def wake_webhooks_on_new_events(uow: UnitOfWork) -> None:
        uow.after_commit(lambda: webhooks.notify() if uow.session.info.get(FEED_APPENDED) else None)

    async def open_upstreams(app: FastAPI) -> None:
        app.state.upstreams = Upstreams(
            {"sampling": settings.sampling_url, "credit": settings.credit_url, "awards": settings.awards_url},
            settings.upstream_timeout_s,
            upstream_transports,
        )
        # Embedded: the services are already up, their documents are cached now; distributed: at the
        # first /openapi.json request if a service is not reachable yet.
        await app.state.suite_docs.fetch(app.state.upstreams, timeout_s=2.0)
        runtime.database.on_unit_of_work(wake_webhooks_on_new_events)
        webhooks.start(runtime.supervisor)

    async def close_upstreams(app: FastAPI) -> None:
        await webhooks.stop()
        await app.state.upstreams.aclose()

    app = service_app(
        runtime,
        title="QualityCity gateway",
        description="One entry point: attainment and credit answers built from events; writes forwarded to the "
        "owning service.",
        routers=_routers(),
        on_start=open_upstreams,
        on_stop=close_upstreams,
    )
    install_audit(app, runtime, AUDIT_PREFIX)
    app.state.plans = plans
    app.state.warning_rules = rules
    app.state.webhooks = webhooks
    app.state.public_limiter = public_limiter(runtime, models.rate_limits, settings)  # the open-data bundle
    app.add_middleware(DashboardHeadersMiddleware)
    openapi.install(app, FORWARDS)
    return app
