"""Scheduled jobs (finalising results, expiring listings and honours) with an injectable clock.

A job is `async def job(uow, clock) -> int` (rows changed); the runner calls it periodically in
its own unit of work. Tests call `run_now` with a moved clock instead of waiting.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from shared.clock import Clock
from shared.supervisor import Supervisor, cancel_and_wait

log = structlog.get_logger("scheduler")

Job = Callable[[Any, Clock], Awaitable[int]]


@dataclass
class ScheduledJob:
    name: str
    job: Job
    every_s: float
    #: What the job does, published by `GET /v1/jobs`.
    does: str = ""


class Scheduler:
    def __init__(self, unit_of_work: Callable[[], Any], clock: Clock, jobs: list[ScheduledJob]) -> None:
        self.unit_of_work = unit_of_work
        self.clock = clock
        self.jobs = {j.name: j for j in jobs}
        self._tasks: list[asyncio.Task[None]] = []
        self._supervisor: Supervisor | None = None

    async def run_now(self, name: str, clock: Clock | None = None) -> int:
        job = self.jobs[name]
        async with self.unit_of_work() as uow:
            changed = await job.job(uow, clock or self.clock)
            await uow.commit()
        if changed:
            log.info("job ran", job=name, changed=changed)
        return changed

    async def _loop(self, job: ScheduledJob) -> None:
        while True:
            await asyncio.sleep(job.every_s)
            try:
                await self.run_now(job.name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # retried at the next tick; nothing half-done was committed
                log.error("job failed", job=job.name, error=repr(exc), exc_info=exc)

    def start(self, supervisor: Supervisor | None = None) -> None:
        """Run every job periodically, each as a task of `supervisor` when given."""
        self._supervisor = supervisor
        for j in self.jobs.values():
            if supervisor is not None:
                supervisor.start(f"job:{j.name}", functools.partial(self._loop, j))
            else:
                self._tasks.append(asyncio.create_task(self._loop(j), name=f"job:{j.name}"))

    async def stop(self) -> None:
        if self._supervisor is not None:
            for name in self.jobs:
                await self._supervisor.stop(f"job:{name}")
            self._supervisor = None
        await cancel_and_wait(*self._tasks)
        self._tasks = []
