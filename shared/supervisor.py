"""One supervisor for a service's background tasks (consumers, outbox relays, scheduled jobs).

A background task is meant to run until the service stops. If one returns or raises anyway, the
supervisor logs it as an error (with the traceback, in one JSON record), marks it down, waits an
exponential backoff and starts it again. `/metrics` counts the restarts and shows which tasks are
up (`qc_task_restarts_total{task}`, `qc_task_up{task}`), and `/readyz` names a task that is down,
so a stopped consumer can no longer freeze a read model while the service looks healthy.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

log = structlog.get_logger("supervisor")

TaskFactory = Callable[[], Awaitable[None]]


#: How long a cancelled task may take to end before it is cancelled again: longer than SQLite's busy
#: timeout (10 s), so a rollback under way when the cancel came is let finish.
CANCEL_GRACE_S = 15.0


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None, grace_s: float = CANCEL_GRACE_S) -> None:
    """Cancel these tasks and wait until each has ended, cancelling again any still running after
    `grace_s`. A cancellation can be swallowed: in Python 3.11, `asyncio.wait_for` returns the result
    of an awaitable that finished just as the cancel came (CPython gh-86296, fixed in 3.12), and
    libraries call it in loops; a task that swallowed its one cancel never ended, and the service's
    shutdown waited for it for ever."""
    running = [t for t in tasks if t is not None]
    for task in running:
        task.cancel()
    while pending := [t for t in running if not t.done()]:
        await asyncio.wait(pending, timeout=grace_s)
        for task in pending:
            if not task.done():
                log.warning("background task still running after a cancel; cancelling again", task=task.get_name())
                task.cancel()
    for task in running:  # retrieved, so asyncio does not log "exception was never retrieved"
        if not task.cancelled() and task.exception() is not None:
            log.info("background task ended with an error at stop", task=task.get_name(), error=repr(task.exception()))


class TasksDown(RuntimeError):
    """Raised by the readiness check while a supervised task is down."""


@dataclass
class _Supervised:
    name: str
    factory: TaskFactory
    up: bool = False
    restarts: int = 0
    last_error: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class Supervisor:
    """Runs named background tasks and restarts any that ends, with exponential backoff."""

    def __init__(
        self,
        *,
        registry: CollectorRegistry | None = None,
        initial_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        healthy_after_s: float = 60.0,
    ) -> None:
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        # A run that lasted this long resets the backoff: it was a new failure, not a crash loop.
        self.healthy_after_s = healthy_after_s
        self._tasks: dict[str, _Supervised] = {}
        self.registry = registry or CollectorRegistry()
        self._restarts = Counter(
            "qc_task_restarts", "Restarts of a background task after it ended", ["task"], registry=self.registry
        )
        self._up = Gauge(
            "qc_task_up", "1 while a background task runs, 0 while it is down", ["task"], registry=self.registry
        )

    def start(self, name: str, factory: TaskFactory) -> None:
        """Run `factory()` as the task `name` until `stop()`; every call of the factory is a new run."""
        if name in self._tasks:
            raise ValueError(f"task {name!r} is already supervised")
        entry = _Supervised(name, factory)
        self._tasks[name] = entry
        self._restarts.labels(task=name)  # shown as 0 from the start
        entry.task = asyncio.create_task(self._watch(entry), name=f"supervised:{name}")

    async def _watch(self, entry: _Supervised) -> None:
        backoff = self.initial_backoff_s
        while True:
            started = time.monotonic()
            entry.up = True
            self._up.labels(task=entry.name).set(1)
            try:
                await entry.factory()
            except asyncio.CancelledError:
                entry.up = False
                self._up.labels(task=entry.name).set(0)
                raise
            except Exception as exc:
                entry.last_error = f"{type(exc).__name__}: {exc}"[:300]
                failure: BaseException | None = exc
            else:
                entry.last_error = "returned"
                failure = None
            entry.up = False
            self._up.labels(task=entry.name).set(0)
            if time.monotonic() - started >= self.healthy_after_s:
                backoff = self.initial_backoff_s
            log.error(
                "background task stopped; restarting",
                task=entry.name,
                error=entry.last_error,
                restart_in=backoff,
                exc_info=failure,
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)
            entry.restarts += 1
            self._restarts.labels(task=entry.name).inc()

    def status(self) -> dict[str, dict[str, object]]:
        return {
            name: {"up": e.up, "restarts": e.restarts, **({"last_error": e.last_error} if e.last_error else {})}
            for name, e in self._tasks.items()
        }

    def down(self) -> list[str]:
        return sorted(name for name, e in self._tasks.items() if not e.up)

    async def check(self) -> None:
        """Readiness: raises `TasksDown` naming every task that is down."""
        down = self.down()
        if down:
            raise TasksDown(
                "; ".join(f"{n} ({self._tasks[n].last_error}, restarts {self._tasks[n].restarts})" for n in down)
            )

    async def stop(self, name: str | None = None) -> None:
        """Cancel one task (or all of them) and wait for it to end."""
        names = [name] if name is not None else list(self._tasks)
        entries = [self._tasks.pop(n) for n in names if n in self._tasks]
        await cancel_and_wait(*(e.task for e in entries))
