"""Reads bounded, index-backed figures from MongoDB: counts, active users, sizes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pymongo.database import Database
from pymongo.errors import OperationFailure

from shared.mongo import ITEMS, OFFSETS, PROFILES, TRENDS

COLLECTIONS = (PROFILES, ITEMS, TRENDS, OFFSETS)
ACTIVE_WINDOWS = {"5m": timedelta(minutes=5), "1h": timedelta(hours=1), "24h": timedelta(hours=24)}


@dataclass(frozen=True)
class CollectionStats:
    documents: int
    size_bytes: int
    storage_bytes: int
    index_bytes: int


@dataclass(frozen=True)
class MongoSnapshot:
    collections: dict[str, CollectionStats] = field(default_factory=dict)
    active_users: dict[str, int] = field(default_factory=dict)


class MongoSource:
    def __init__(self, db: Database) -> None:
        self.db = db

    def read(self) -> MongoSnapshot:
        self.db.client.admin.command("ping")
        now = datetime.now(UTC)
        # Counted on the lastSeen index (shared.mongo.ensure_indexes): a range scan of the index.
        active = {
            window: self.db[PROFILES].count_documents({"lastSeen": {"$gte": now - span}})
            for window, span in ACTIVE_WINDOWS.items()
        }
        return MongoSnapshot({name: self._stats(name) for name in COLLECTIONS}, active)

    def _stats(self, name: str) -> CollectionStats:
        try:
            rows = list(self.db[name].aggregate([{"$collStats": {"storageStats": {}}}]))
        except OperationFailure as exc:
            if exc.code == 26:  # NamespaceNotFound: the collection does not exist yet
                return CollectionStats(0, 0, 0, 0)
            raise
        if not rows:
            return CollectionStats(0, 0, 0, 0)
        stats = rows[0]["storageStats"]
        return CollectionStats(
            documents=int(stats.get("count", 0)),
            size_bytes=int(stats.get("size", 0)),
            storage_bytes=int(stats.get("storageSize", 0)),
            index_bytes=int(stats.get("totalIndexSize", 0)),
        )
