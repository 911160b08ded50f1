"""Retries of UNAVAILABLE through gRPC's own retry policy (service config ``retryPolicy``).

UNAVAILABLE means the call did not reach a server that acted on it (connection refused,
server draining, Kafka not acknowledging), so repeating it is safe for reads. Writes are
repeated only when the caller marks them idempotent (events with client-chosen messageIds,
which ingest deduplicates). gRPC waits a random time in [0, capped exponential] before each
retry (full jitter), and the call's deadline covers every attempt.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass

RETRYABLE = ("UNAVAILABLE",)
# gRPC caps a retry policy at this many attempts (a larger maxAttempts counts as 5).
GRPC_MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` counts the first try: 1 means never retry (at most 5, gRPC's cap)."""

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
        """The pause gRPC takes before retry number ``retry`` (1-based): uniform in
        [0, capped exponential]. Shown here for reference and tests; gRPC draws its own."""
        ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier ** (retry - 1))
        return rng.uniform(0, ceiling)

    def service_config(self, services: Sequence[str]) -> str:
        """The JSON service config that applies this policy to every method of ``services``."""
        config: dict[str, object] = {"name": [{"service": s} for s in services]}
        if self.max_attempts > 1:
            config["retryPolicy"] = {
                "maxAttempts": min(self.max_attempts, GRPC_MAX_ATTEMPTS),
                # gRPC needs a positive duration; "0s" is refused.
                "initialBackoff": _duration(max(self.initial_backoff, 0.001)),
                "maxBackoff": _duration(max(self.max_backoff, 0.001)),
                "backoffMultiplier": self.multiplier,
                "retryableStatusCodes": list(RETRYABLE),
            }
        return json.dumps({"methodConfig": [config]})


NO_RETRY = RetryPolicy(max_attempts=1)


def _duration(seconds: float) -> str:
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"
