"""MongoDB access shared by the services: one client per process, collection names, indexes."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, MongoClient
from pymongo.database import Database

from shared.settings import MongoSettings

PROFILES = "profiles"
ITEMS = "items"
TRENDS = "trends"
# Per-partition applied offsets, stored with the profile writes (see services/profiles).
OFFSETS = "stream_offsets"


def client_options(settings: MongoSettings) -> dict[str, Any]:
    """Timeouts and time zones every Lumen MongoDB client uses, sync or async."""
    return {
        "serverSelectionTimeoutMS": settings.timeout_ms,
        "connectTimeoutMS": settings.timeout_ms,
        "socketTimeoutMS": max(settings.timeout_ms, 10_000),
        "tz_aware": True,
    }


def mongo_client(settings: MongoSettings, **kwargs: Any) -> MongoClient:
    return MongoClient(settings.uri, **{**client_options(settings), **kwargs})


def database(client: MongoClient, settings: MongoSettings) -> Database:
    return client[settings.database]


# Profiles are read by ``_id`` (the user key), by a linked anonymous id (Recommend and
# GetProfile for visitors) and counted by ``lastSeen`` (active users). ``anonymousIds`` is
# sparse: most profiles never had one, and a dense multikey index holds a null entry for each.
PROFILE_INDEXES = (
    IndexModel([("anonymousIds", ASCENDING)], sparse=True, name="anonymousIds"),
    IndexModel([("lastSeen", DESCENDING)], name="lastSeen"),
)


def ensure_indexes(db: Database) -> None:
    """Create the indexes every reader relies on. Idempotent; cheap when they exist."""
    db[PROFILES].create_indexes(list(PROFILE_INDEXES))
    db[ITEMS].create_indexes([IndexModel([("categories", ASCENDING)], name="categories")])
