"""MongoDB access shared by the services: one client per process, collection names, indexes."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, MongoClient
from pymongo.database import Database

from shared import interactions
from shared.settings import InteractionSettings, MongoSettings

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


def ensure_indexes(db: Database, interactions_retention_days: float | None = None) -> None:
    """Create the indexes every reader relies on. Idempotent; cheap when they exist.
    ``interactions_retention_days``: None reads ``LUMEN_INTERACTIONS_RETENTION_DAYS``."""
    db[PROFILES].create_indexes(list(PROFILE_INDEXES))
    db[ITEMS].create_indexes(
        [
            IndexModel([("categories", ASCENDING)], name="categories"),
            # Inference re-reads only the items changed since its last read.
            IndexModel([("updatedAt", ASCENDING)], name="updatedAt"),
        ]
    )
    days = interactions_retention_days or InteractionSettings().retention_days
    ensure_interaction_indexes(db, days)


def ensure_interaction_indexes(db: Database, retention_days: float) -> None:
    """The interaction store's indexes: (user, time) for the trainer's per-user reads, merges
    and erasure, and a TTL index on the time. A changed retention is applied to the existing
    TTL index in place (collMod), without rebuilding it."""
    collection = db[interactions.COLLECTION]
    seconds = max(1, round(retention_days * 86400))
    ttl = next((i for i in collection.list_indexes() if i["name"] == interactions.TTL_INDEX), None)
    if ttl is not None and ttl.get("expireAfterSeconds") != seconds:
        db.command(
            "collMod",
            interactions.COLLECTION,
            index={"name": interactions.TTL_INDEX, "expireAfterSeconds": seconds},
        )
    collection.create_indexes(
        [
            IndexModel(
                [(interactions.USER, ASCENDING), (interactions.AT, ASCENDING)],
                name=interactions.USER_TIME_INDEX,
            ),
            IndexModel(
                [(interactions.AT, ASCENDING)],
                expireAfterSeconds=seconds,
                name=interactions.TTL_INDEX,
            ),
        ]
    )
