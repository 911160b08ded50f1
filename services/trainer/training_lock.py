"""One training run per registry at a time, across processes: an advisory file lock.

The trainer takes it (without waiting) around each run; ``make up``'s training from the seeded
events (lumen_cli/seed/train_seeded.py) waits for it. Two runs publishing at once would race
for the same version number. The lock file lives in the registry folder, which every
process that publishes into it shares (a host folder, a Compose volume, a Kubernetes volume).
The kernel releases the lock when its holder dies, so a killed run never leaves it taken.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from shared.model_registry import repository_root


def lock_path(model_name: str) -> Path:
    return repository_root() / f".{model_name}.training.lock"


class TrainingLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; False when another process holds it."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def acquire(self, timeout: float, interval: float = 1.0) -> bool:
        """Wait up to ``timeout`` seconds for the lock."""
        deadline = time.monotonic() + timeout
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
