"""Inference's in-memory catalogue on a real mongod: read whole at start, then only the items
whose ``updatedAt`` moved, and whole again every ``full_refresh_seconds``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import AsyncMongoClient, MongoClient

from services.inference.breaker import CircuitBreaker
from services.inference.store import ProfileStore
from shared.mongo import ITEMS, ensure_indexes
from tests.support.stack import Stack

Doc = dict[str, Any]


def item(item_id: str, title: str, at: datetime, removed: bool = False) -> Doc:
    return {
        "_id": item_id,
        "title": title,
        "categories": ["shoes"],
        "removed": removed,
        "updatedAt": at,
    }


async def test_the_catalogue_follows_changes_without_reading_every_item(stack: Stack) -> None:
    name = f"lumen_catalogue_{uuid.uuid4().hex[:6]}"
    sync: MongoClient[Doc] = MongoClient(stack.mongo_uri, tz_aware=True)
    client: AsyncMongoClient[Doc] = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
    db = sync[name]
    ensure_indexes(db)
    start = datetime.now(UTC) - timedelta(hours=1)
    db[ITEMS].insert_many(
        [
            item("sku-1", "Trail shoe", start),
            item("sku-2", "Road shoe", start),
            item("sku-3", "Gone", start, removed=True),
        ]
    )
    store = ProfileStore(client, db, name, 100, CircuitBreaker(3, 1.0), full_refresh_seconds=3600)
    try:
        await store.refresh()
        assert {i: e.title for i, e in store.catalogue.items()} == {
            "sku-1": "Trail shoe",
            "sku-2": "Road shoe",
        }
        assert store.removed == {"sku-3"}

        # Changes the planner makes (updatedAt moves): picked up by the next, partial read.
        later = start + timedelta(minutes=30)
        db[ITEMS].replace_one({"_id": "sku-1"}, item("sku-1", "Trail shoe v2", later))
        db[ITEMS].replace_one({"_id": "sku-2"}, item("sku-2", "Road shoe", later, removed=True))
        db[ITEMS].replace_one({"_id": "sku-3"}, item("sku-3", "Back again", later))
        db[ITEMS].insert_one(item("sku-4", "Sandal", later))
        # A change that left updatedAt where it was: invisible to a partial read...
        db[ITEMS].update_one({"_id": "sku-4"}, {"$set": {"categories": ["summer"]}})
        db[ITEMS].insert_one(item("sku-5", "Old stock", start - timedelta(days=1)))
        await store.refresh()
        assert {i: e.title for i, e in store.catalogue.items()} == {
            "sku-1": "Trail shoe v2",
            "sku-3": "Back again",
            "sku-4": "Sandal",
        }
        assert store.removed == {"sku-2"}
        assert "sku-5" not in store.catalogue  # older than everything read: not re-read

        # ...and found by the next whole read.
        store.full_refresh_seconds = 0.0
        await store.refresh()
        assert set(store.catalogue) == {"sku-1", "sku-3", "sku-4", "sku-5"}
        assert store.catalogue["sku-4"].categories == ["summer"]
        assert store.removed == {"sku-2"}
    finally:
        sync.drop_database(name)
        sync.close()
        await client.close()
