"""Scheduled jobs (finalising results, expiring listings and honours) with an injectable clock.

A job is `async def job(uow, clock) -> int` (rows changed); the runner calls it periodically in
its own unit of work. Tests call `run_now` with a moved clock instead of waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from shared.clock import Clock
from shared.tasks import cancel

log = structlog.get_logger("scheduler")

Job = Callable[[Any, Clock], Awaitable[int]]


@dataclass
class ScheduledJob:
    name: str
    job: Job
    every_s: float


class Scheduler:
    def __init__(self, unit_of_work: Callable[[], Any], clock: Clock, jobs: list[ScheduledJob]) -> None:
        self.unit_of_work = unit_of_work
        self.clock = clock
        self.jobs = {j.name: j for j in jobs}
        self._tasks: list[asyncio.Task[None]] = []

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
                log.error("job failed", job=job.name, error=repr(exc))

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop(j), name=f"job:{j.name}") for j in self.jobs.values()]

    async def stop(self) -> None:
        await cancel(*self._tasks)
        self._tasks = []
