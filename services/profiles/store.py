"""Writes profile updates to MongoDB in bulk."""

from __future__ import annotations

import time

from pymongo import UpdateOne
from pymongo.database import Database

from services.profiles import metrics
from shared.mongo import PROFILES


class ProfileStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def apply(self, updates: list[UpdateOne]) -> None:
        if not updates:
            return
        started = time.perf_counter()
        # Ordered: two updates of the same user must apply in event order.
        self.db[PROFILES].bulk_write(updates, ordered=True)
        metrics.MONGO_WRITE_SECONDS.observe(time.perf_counter() - started)
