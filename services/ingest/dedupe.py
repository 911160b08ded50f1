"""Remembers recently stored messageIds per source, so that a client's retry is written once.

In-process and bounded: entries expire after the window, and the oldest go first when the
store is full. A second ingest replica has its own store (see docs/ingest.md for what a
duplicate that reaches another replica does). Only ids that Kafka acknowledged are remembered,
so a request answered 503 can be retried without being mistaken for a duplicate.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class DedupeStore:
    def __init__(
        self, window_seconds: float, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window = window_seconds
        self.max_entries = max_entries
        self._clock = clock
        # key -> expiry; every entry has the same window, so insertion order is expiry order.
        self._expiry: OrderedDict[tuple[str, str], float] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.window > 0

    def __len__(self) -> int:
        return len(self._expiry)

    def seen(self, source: str, message_id: str) -> bool:
        if not self.enabled:
            return False
        expiry = self._expiry.get((source, message_id))
        return expiry is not None and expiry > self._clock()

    def remember(self, source: str, keys: list[str]) -> None:
        """Record message ids that Kafka has acknowledged."""
        if not self.enabled or not keys:
            return
        now = self._clock()
        expiry = now + self.window
        for message_id in keys:
            key = (source, message_id)
            self._expiry.pop(key, None)
            self._expiry[key] = expiry
        self._evict(now)

    def _evict(self, now: float) -> None:
        entries = self._expiry
        while entries and (len(entries) > self.max_entries or next(iter(entries.values())) <= now):
            entries.popitem(last=False)
