"""A per-client token bucket for the unauthenticated public endpoints (公示 lists).

Per process: each replica limits on its own, which is enough to stop one client from draining a
replica; a cluster-wide quota belongs in front of the gateway.
"""

from __future__ import annotations

import time

from fastapi import Request

from shared.errors import RateLimited


class TokenBuckets:
    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}

    def wait(self, client: str, now: float | None = None) -> float:
        """Take a token: 0 when allowed, else the seconds until one is free."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate_per_s)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / self.rate_per_s
        self._buckets[client] = (tokens - 1.0, now)
        if len(self._buckets) > 100_000:  # forget idle clients rather than grow without bound
            self._buckets.clear()
        return 0.0

    def take(self, client: str, now: float | None = None) -> None:
        """Take a token or raise the 429 problem with Retry-After."""
        wait = self.wait(client, now)
        if wait:
            retry = max(1, int(wait + 0.999))
            raise RateLimited(retry)


async def public_rate_limit(request: Request) -> None:
    """The route dependency of the public lists: `app.state.public_limiter` per client address."""
    buckets: TokenBuckets = request.app.state.public_limiter
    buckets.take(request.client.host if request.client else "unknown")
