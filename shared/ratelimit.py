"""A per-client rate limit for the unauthenticated public endpoints (公示 lists), shared by replicas.

The client is `request.client`: the peer, or the address a trusted proxy (the gateway, the ingress;
`QC_TRUSTED_PROXIES`) forwarded in X-Forwarded-For (uvicorn's ProxyHeadersMiddleware, installed by
shared/service_app.py). A spoofed header from anyone else is ignored.

The limit is GCRA (the token bucket as one timestamp per client: the "theoretical arrival time"),
kept in the service's own database, in the shared `rate_limits` table: every replica reads and moves
the same row, so the limit holds across replicas. The database rather than Redis because the stack
has no Redis, each service already has its database, and the decision is one atomic upsert per
request (`INSERT … ON CONFLICT DO UPDATE … RETURNING`, the same on PostgreSQL and SQLite).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request
from sqlalchemy import Boolean, Column, Float, MetaData, String, Table, case, delete, literal
from sqlalchemy.dialects import postgresql, sqlite

from shared.db import Database
from shared.errors import RateLimited
from shared.settings import PublicRateLimitSettings

if TYPE_CHECKING:
    from shared.runtime import ServiceRuntime

#: Rows of clients idle this long (their bucket is full again) are deleted, at most this often.
_PRUNE_EVERY_S = 60.0


def rate_limit_table(metadata: MetaData) -> Table:
    """One row per client: when its bucket is next empty (`tat`) and whether its last request passed."""
    return Table(
        "rate_limits",
        metadata,
        Column("client", String(128), primary_key=True),
        Column("tat", Float, nullable=False),
        Column("allowed", Boolean, nullable=False),
    )


@dataclass(eq=False)
class RateLimiter:
    """`burst` requests at once, then `rate_per_s`, per client, counted in the service's database."""

    table: Table
    database: Callable[[], Database | None]
    rate_per_s: float
    burst: int
    clock: Callable[[], float] = time.time
    _pruned_at: float = field(default=0.0, init=False, repr=False)

    def __post_init__(self) -> None:
        self._interval = 1.0 / self.rate_per_s
        self._tolerance = (self.burst - 1) * self._interval

    async def wait(self, client: str) -> float:
        """Take a token: 0 when allowed, else the seconds until one is free."""
        now = self.clock()
        t = self.table
        db = self.database()
        if db is None:
            raise RuntimeError("database not started")
        insert = postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert
        # GCRA: the request passes when the bucket's theoretical arrival time is at most `tolerance`
        # ahead of now; passing moves it one interval on. SET sees the old row in both expressions.
        start = case((t.c.tat > now, t.c.tat), else_=literal(now))
        passes = start - now <= self._tolerance
        stmt = (
            insert(t)
            .values(client=client[:128], tat=now + self._interval, allowed=True)
            .on_conflict_do_update(
                index_elements=[t.c.client],
                set_={"tat": case((passes, start + self._interval), else_=t.c.tat), "allowed": passes},
            )
            .returning(t.c.tat, t.c.allowed)
        )
        async with db.engine.begin() as conn:
            tat, allowed = (await conn.execute(stmt)).one()
            if now - self._pruned_at > _PRUNE_EVERY_S:
                self._pruned_at = now
                await conn.execute(delete(t).where(t.c.tat < now))
        return 0.0 if allowed else max(0.0, tat - now - self._tolerance)

    async def take(self, client: str) -> None:
        """Take a token or raise the 429 problem with Retry-After."""
        wait = await self.wait(client)
        if wait:
            raise RateLimited(max(1, math.ceil(wait)))


def public_limiter(runtime: ServiceRuntime, table: Table, settings: PublicRateLimitSettings) -> RateLimiter:
    """The limiter of a service's public lists, in its own database (started with the runtime)."""
    return RateLimiter(table, lambda: runtime.db, settings.public_rate_per_s, settings.public_burst)


async def public_rate_limit(request: Request) -> None:
    """The route dependency of the public lists: `app.state.public_limiter` per client address."""
    limiter: RateLimiter = request.app.state.public_limiter
    await limiter.take(request.client.host if request.client else "unknown")
