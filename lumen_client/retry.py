"""Retries with exponential backoff and full jitter, for UNAVAILABLE only.

UNAVAILABLE means the call did not reach a server that acted on it (connection refused,
server draining, Kafka not acknowledging), so repeating it is safe for reads. Writes are
repeated only when the caller marks them idempotent (events with client-chosen messageIds,
which ingest deduplicates).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import grpc

T = TypeVar("T")

RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE})


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` counts the first try: 1 means never retry."""

    max_attempts: int = 4
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_backoff < 0 or self.max_backoff < 0 or self.multiplier < 1:
            raise ValueError("backoffs must be >= 0 and multiplier >= 1")

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Sleep before retry number ``retry`` (1-based): uniform in [0, capped exponential]."""
        ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier ** (retry - 1))
        return rng.uniform(0, ceiling)


@dataclass
class Retrier:
    policy: RetryPolicy
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def call(self, attempt: Callable[[float | None], T], deadline: float | None,
             idempotent: bool = True) -> T:  # fmt: skip
        """Run ``attempt(timeout)`` until it succeeds, fails for good, or the deadline passes.

        ``deadline`` is a ``time.monotonic()`` instant shared by every attempt, so retries never
        stretch a call beyond the caller's timeout.
        """
        retry = 0
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            try:
                return attempt(remaining)
            except grpc.RpcError as error:
                code = error.code() if hasattr(error, "code") else None
                retry += 1
                if not idempotent or code not in RETRYABLE or retry >= self.policy.max_attempts:
                    raise
                pause = self.policy.backoff(retry, self.rng)
                if deadline is not None and time.monotonic() + pause >= deadline:
                    raise
                self.sleep(pause)
