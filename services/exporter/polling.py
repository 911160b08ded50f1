"""Run a reader on a timer in a background thread and keep its last result for scrapes.

Scrapes never wait on Kafka or MongoDB: they read the cached result. A failed read marks the
dependency down and drops the cached figures (stale lag is worse than none); the next
successful read brings both back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class PollState(Generic[T]):
    up: bool
    value: T | None
    last_success: float | None
    last_duration: float
    errors: int


class Poller(Generic[T]):
    def __init__(self, name: str, read: Callable[[], T], interval: float) -> None:
        self.name = name
        self._read = read
        self.interval = interval
        self._lock = threading.Lock()
        self._state: PollState[T] = PollState(False, None, None, 0.0, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"poll-{name}", daemon=True)

    def state(self) -> PollState[T]:
        with self._lock:
            return self._state

    def poll_once(self) -> None:
        started = time.monotonic()
        try:
            value = self._read()
        except Exception as exc:  # any failure of a dependency: report it down, keep serving
            duration = time.monotonic() - started
            with self._lock:
                was_up = self._state.up
                self._state = PollState(
                    False, None, self._state.last_success, duration, self._state.errors + 1
                )
            if was_up or self._state.errors == 1:
                log.warning(
                    "dependency unavailable",
                    extra={"fields": {"dependency": self.name, "error": repr(exc)[:300]}},
                )
            return
        duration = time.monotonic() - started
        with self._lock:
            if not self._state.up and self._state.errors:
                log.info("dependency available again", extra={"fields": {"dependency": self.name}})
            self._state = PollState(True, value, time.time(), duration, self._state.errors)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.poll_once()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
