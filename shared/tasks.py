"""Stopping the background loops (relays, consumers, jobs) the same way everywhere."""

from __future__ import annotations

import asyncio

from shared.supervisor import Supervisor, cancel_and_wait


class BackgroundLoop:
    """A long-running `run()` (a relay, a consumer), started under a supervisor when one is given
    (restarted if it ends) or as a bare task (tests, tools), and stopped the same way either way."""

    _task: asyncio.Task[None] | None = None
    _supervisor: Supervisor | None = None

    @property
    def task_name(self) -> str:
        raise NotImplementedError

    async def run(self) -> None:
        raise NotImplementedError

    def start_loop(self, supervisor: Supervisor | None = None) -> None:
        self._supervisor = supervisor
        if supervisor is not None:
            supervisor.start(self.task_name, self.run)
        else:
            self._task = asyncio.create_task(self.run(), name=self.task_name)

    async def stop_loop(self) -> None:
        if self._supervisor is not None:
            await self._supervisor.stop(self.task_name)
            self._supervisor = None
        await cancel_and_wait(self._task)
        self._task = None
