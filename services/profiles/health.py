"""Liveness of the updater: failing MongoDB writes make /healthz answer 503."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# Consecutive failed batch writes after which the worker reports itself unhealthy.
UNHEALTHY_AFTER = 5


@dataclass
class Health:
    started: float = field(default_factory=time.time)
    last_commit: float | None = None
    failures: int = 0
    last_error: str | None = None

    def committed(self) -> None:
        self.last_commit = time.time()
        self.failures = 0
        self.last_error = None

    def failed(self, error: str) -> None:
        self.failures += 1
        self.last_error = error

    @property
    def healthy(self) -> bool:
        return self.failures < UNHEALTHY_AFTER

    def as_dict(self) -> dict[str, object]:
        return {
            "status": "ok" if self.healthy else "failing",
            "consecutiveFailures": self.failures,
            "lastError": self.last_error,
            "lastCommitAgeSeconds": None
            if self.last_commit is None
            else round(time.time() - self.last_commit, 3),
        }


HEALTH = Health()
