"""Liveness and readiness of the updater.

* Alive (``/healthz`` 200) while the process serves and its stream agent runs. A MongoDB outage
  does not make it dead: restarting the worker would not bring MongoDB back, and every replica
  would restart into the same batch.
* Ready (``/readyz`` 200) when MongoDB answers and no batch write is failing; during an outage
  it answers 503 with the reason, and the worker keeps retrying the batch it holds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Health:
    """One worker's state as its probes report it."""

    started: float = field(default_factory=time.time)
    last_commit: float | None = None
    failures: int = 0  # consecutive failed attempts of the batch being written
    last_error: str | None = None
    agent_error: str | None = None  # set when the stream agent stopped on an error

    def committed(self) -> None:
        self.last_commit = time.time()
        self.failures = 0
        self.last_error = None

    def failed(self, error: str) -> None:
        self.failures += 1
        self.last_error = error

    def agent_stopped(self, error: str) -> None:
        self.agent_error = error

    @property
    def alive(self) -> bool:
        return self.agent_error is None

    def not_ready_reason(self) -> str | None:
        if self.agent_error is not None:
            return f"stream agent stopped: {self.agent_error}"
        if self.failures:
            return f"batch write failing ({self.failures} attempts): {self.last_error}"
        return None

    def as_dict(self) -> dict[str, object]:
        return {
            "status": "failing" if not self.alive else "degraded" if self.failures else "ok",
            "consecutiveFailures": self.failures,
            "lastError": self.last_error or self.agent_error,
            "lastCommitAgeSeconds": None
            if self.last_commit is None
            else round(time.time() - self.last_commit, 3),
        }
