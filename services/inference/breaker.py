"""When to stop asking a failing dependency, and when to ask again.

Recommend reads a profile from MongoDB on every call. One slow read (a checkpoint, a pause
on a shared machine) should degrade that one answer, not every answer for seconds; a store
that keeps failing should stop costing each request its read timeout. So the breaker opens
after ``threshold`` failures in a row, stays open for ``cool_down`` seconds, then lets reads
through again: one more failure opens it at once, one success closes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class CircuitBreaker:
    def __init__(
        self, threshold: int, cool_down: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = threshold
        self.cool_down = cool_down
        self._clock = clock
        self._failures = 0  # in a row
        self._open_until = 0.0

    @property
    def is_open(self) -> bool:
        return self._clock() < self._open_until

    def failed(self) -> None:
        self._failures += 1
        if self._failures >= self.threshold:
            self._open_until = self._clock() + self.cool_down

    def succeeded(self) -> None:
        self._failures = 0
        self._open_until = 0.0
