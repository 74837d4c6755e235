"""A token bucket per client: `rate` requests per second sustained, bursts up to `burst`.

The buckets live in the process: behind a load balancer with N instances a client gets at most N x the rate,
which is the usual trade-off (no database round trip per request); docs/deploy.md says how to size it. The
number of buckets is bounded, so a flood of distinct client keys cannot grow memory without limit."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_BUCKETS = 10_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic,
                 max_buckets: int = MAX_BUCKETS) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limiter needs rate > 0 and burst >= 1")
        self.rate, self.burst, self.clock, self.max_buckets = rate, burst, clock, max_buckets
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        """Take one token for `key`: 0.0 when allowed, else the seconds until the next token is available."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                self._make_room(now)
                bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate

    def _make_room(self, now: float) -> None:
        """Forget full buckets (clients idle long enough to be back at `burst`); if all are busy, the oldest."""
        if len(self._buckets) < self.max_buckets:
            return
        refill = self.burst / self.rate
        idle = [key for key, bucket in self._buckets.items() if now - bucket.updated >= refill]
        oldest = sorted(self._buckets, key=lambda k: self._buckets[k].updated)[: len(self._buckets) // 10 + 1]
        for key in idle or oldest:
            del self._buckets[key]


def retry_after_header(wait: float) -> str:
    """`Retry-After` takes whole seconds; round up so a client that obeys it is let through."""
    return str(max(1, math.ceil(wait)))
