"""A per-client token bucket for the unauthenticated public lists (公示).

shared/ has no rate limiter yet; this one is local to the service and per process (each replica
limits on its own), which is enough to stop one client from draining a replica.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from shared.problems import Problem


@dataclass
class TokenBuckets:
    rate_per_s: float
    burst: int
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def take(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate_per_s)
        if tokens < 1.0:
            retry = max(1, int((1.0 - tokens) / self.rate_per_s + 0.999))
            raise Problem(
                429,
                "too-many-requests",
                "Too many requests",
                f"Retry in {retry} s",
                headers={"Retry-After": str(retry)},
            )
        self._buckets[client] = (tokens - 1.0, now)
        if len(self._buckets) > 100_000:  # forget idle clients rather than grow without bound
            self._buckets.clear()
