"""Token-bucket rate limiting per write key (source); a request costs one token per event."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Limit:
    rate: float  # tokens per second; 0 means unlimited
    burst: int


def parse_overrides(text: str) -> dict[str, Limit]:
    """``"sourceA=100/200,sourceB=5/10"`` -> per-source limits."""
    limits: dict[str, Limit] = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        source, sep, spec = entry.partition("=")
        rate, slash, burst = spec.partition("/")
        if not sep or not slash:
            raise ValueError(f"rate limit override {entry!r} must be sourceId=<rate>/<burst>")
        limits[source.strip()] = Limit(float(rate), int(burst))
    return limits


class TokenBucket:
    def __init__(self, limit: Limit, now: float) -> None:
        self.limit = limit
        self.tokens = float(limit.burst)
        self.updated = now

    def take(self, cost: int, now: float) -> float:
        """Take ``cost`` tokens and return 0, or return the seconds until they would be there."""
        rate, burst = self.limit.rate, self.limit.burst
        self.tokens = min(float(burst), self.tokens + (now - self.updated) * rate)
        self.updated = now
        # A request larger than the bucket could never pass: it needs a full bucket instead,
        # and still pays for every event (the bucket goes into debt), so that one large
        # request costs as much as the same events sent one by one.
        needed = min(cost, burst)
        if self.tokens >= needed:
            self.tokens -= cost
            return 0.0
        return (needed - self.tokens) / rate


class RateLimiter:
    def __init__(
        self,
        default: Limit,
        overrides: dict[str, Limit] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.default = default
        self.overrides = overrides or {}
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def check(self, source: str, cost: int) -> int:
        """0 when allowed, else the whole seconds a client should wait (for Retry-After)."""
        limit = self.overrides.get(source, self.default)
        if limit.rate <= 0:
            return 0
        now = self._clock()
        bucket = self._buckets.get(source)
        if bucket is None:
            bucket = self._buckets[source] = TokenBucket(limit, now)
        wait = bucket.take(max(cost, 1), now)
        return 0 if wait == 0 else max(1, math.ceil(wait))
