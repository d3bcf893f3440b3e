"""The moving parts of one running service, built in its lifespan and torn down after it.

A service's `main.create_app` builds a `ServiceRuntime` with its settings, tables and consumer
handlers; the lifespan calls `start()` (database, migrations, bus, outbox relay, consumers) and
`stop()`. Routes reach it through `request.app.state.runtime`.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

import structlog
from fastapi import Depends, Request, Response
from sqlalchemy import Table

from shared.audit import audit_hook
from shared.auth import TokenService
from shared.bus import Bus, InProcessBus, KafkaBus, Subscription
from shared.clock import Clock, SystemClock
from shared.consumer import Handler, IdempotentConsumer
from shared.db import Database, UnitOfWork
from shared.errors import UncommittedWrites
from shared.migrations import upgrade
from shared.outbox import OutboxRelay
from shared.scheduler import ScheduledJob, Scheduler
from shared.settings import ServiceSettings
from shared.supervisor import Supervisor

log = structlog.get_logger("runtime")


@dataclass
class ServiceSpec:
    """What a service is, independent of how it is deployed."""

    name: str
    package_dir: Path
    outbox: Table
    inbox: Table
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    subscribes_to: Sequence[str] = ()  # names of the services whose topics it consumes
    jobs: Sequence[ScheduledJob] = ()
    batch_handler: Handler | None = None  # see IdempotentConsumer: all of a batch's events at once
    audit: Table | None = None  # the audit_log table (shared/audit.py): each write request's record


T = TypeVar("T")


def _started(part: T | None, name: str) -> T:
    """A part the runtime builds in `start()`: asking for it before then is a programming error."""
    if part is None:
        raise RuntimeError(f"{name} not started")
    return part


class ServiceRuntime:
    def __init__(
        self,
        spec: ServiceSpec,
        settings: ServiceSettings,
        *,
        bus: Bus | None = None,
        clock: Clock | None = None,
        auto_migrate: bool = True,
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.platform = settings.platform
        self._bus = bus
        self._owns_bus = bus is None
        self.auto_migrate = auto_migrate
        self.tokens = TokenService(self.platform)
        self.db: Database | None = None
        self.relay: OutboxRelay | None = None
        self.consumer: IdempotentConsumer | None = None
        self._subscription: Subscription | None = None
        self.clock: Clock = clock or SystemClock()
        #: Every background task of the service (relay, consumer, jobs) runs under it.
        self.supervisor = Supervisor()
        self.scheduler = Scheduler(self.unit_of_work, self.clock, list(spec.jobs))

    @property
    def topic(self) -> str:
        return self.platform.topic(self.spec.name)

    @property
    def bus(self) -> Bus:
        return _started(self._bus, "bus")

    def _build_bus(self) -> Bus:
        if self.platform.bus == "kafka":
            topics = [self.topic, *(self.platform.topic(s) for s in self.spec.subscribes_to)]
            return KafkaBus(self.platform.kafka_bootstrap, topics=topics, partitions=self.platform.topic_partitions)
        return InProcessBus()

    async def start(self) -> None:
        if self.auto_migrate:
            await upgrade(self.settings.database_url, self.spec.package_dir)
        self.db = Database(
            self.settings.database_url,
            sqlite_cache_mb=self.settings.sqlite_cache_mb,
            sqlite_mmap_mb=self.settings.sqlite_mmap_mb,
        )
        if self.spec.audit is not None:
            self.db.on_unit_of_work(audit_hook(self.spec.audit, self.db))
        if self._bus is None:
            self._bus = self._build_bus()
        if self._owns_bus:
            await self._bus.start()
        self.relay = OutboxRelay(
            self.db,
            self.spec.outbox,
            self._bus,
            self.topic,
            batch_size=self.settings.relay_batch_size,
            interval_s=self.settings.relay_sqlite_interval_s if self.db.is_sqlite else self.settings.relay_interval_s,
            lock_key=zlib.crc32(self.topic.encode()),
        )
        # Every commit through this database wakes the relay: a request's, a consumer's, a job's,
        # a quarantine replay's (the consumers' commits are how events travel on in embedded mode).
        relay = self.relay
        self.db.on_unit_of_work(lambda uow: uow.after_commit(relay.notify))
        self.relay.start(self.supervisor)
        if self.spec.handlers:
            self.consumer = IdempotentConsumer(
                self.spec.name,
                self.db,
                self.spec.inbox,
                self.spec.handlers,
                batch_handler=self.spec.batch_handler,
                max_attempts=self.settings.consumer_max_attempts,
                dead_letter=self._bus.dead_letter if isinstance(self._bus, KafkaBus) else None,
            )
            await self.consumer.quarantine.refresh()
            self._subscription = self._bus.subscription(
                f"{self.platform.topic_prefix}{self.spec.name}",
                [self.platform.topic(s) for s in self.spec.subscribes_to],
                self.consumer.handle_batch,
            )
            await self._subscription.start(self.supervisor)
        if self.settings.run_jobs:
            self.scheduler.start(self.supervisor)
        log.info(
            "service started",
            service=self.spec.name,
            bus=type(self._bus).__name__,
            database=self.db.engine.url.render_as_string(hide_password=True),
        )

    async def stop(self) -> None:
        await self.scheduler.stop()
        if self._subscription is not None:
            await self._subscription.stop()
            self._subscription = None
        if self.relay is not None:
            await self.relay.stop()
        await self.supervisor.stop()
        if self._bus is not None and self._owns_bus:
            await self._bus.stop()
        if self.db is not None:
            await self.db.dispose()

    @property
    def database(self) -> Database:
        return _started(self.db, "database")

    def unit_of_work(self) -> UnitOfWork:
        return self.database.unit_of_work()

    async def ping_db(self) -> None:
        await self.database.ping()

    async def ping_bus(self) -> None:
        await self.bus.ping()

    async def readiness_details(self) -> dict[str, Any]:
        """What `/readyz` adds to its body: the events waiting to be published and the tasks."""
        return {
            "outbox_backlog": await self.relay.backlog() if self.relay is not None else 0,
            "tasks": self.supervisor.status(),
        }


# async: FastAPI runs a plain `def` dependency in its thread pool, a hand-off on every request.
async def _runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


async def _uow(
    request: Request, response: Response, runtime: Annotated[ServiceRuntime, Depends(_runtime)]
) -> AsyncIterator[UnitOfWork]:
    async with runtime.unit_of_work() as uow:
        yield uow
        # Reached only when the route returned (an exception rolls back, as it should). A success
        # answer over writes that no commit kept would tell the client something was stored that
        # is about to be rolled back: a route that forgot `await uow.commit()`. `response` is the
        # route's own status when it set one; routes returning an error status set it there too.
        if (response.status_code or 200) < 400 and await uow.has_uncommitted_writes():
            log.error("write route answered without committing", method=request.method, path=request.url.path)
            if runtime.platform.env != "production":
                raise UncommittedWrites(
                    "The route changed data but did not commit its unit of work; nothing was stored."
                )


#: The running service, for routes.
Runtime = Annotated[ServiceRuntime, Depends(_runtime)]
#: The request's unit of work: the route commits it; leaving without commit rolls back. Closed
#: when the route returns (scope "function"), before the answer is sent, so a route that wrote and
#: forgot to commit answers 500 instead of a success over rolled-back writes.
UoW = Annotated[UnitOfWork, Depends(_uow, scope="function")]
