"""What Recommend and SearchItems read from MongoDB: profiles, the catalogue, trends.

Profile reads are bounded by a short timeout; a failed read (or a profile whose item lists
cannot be decoded) degrades its own answer, and
after a few failures in a row the store is treated as down for a few seconds (callers
degrade to trending at once instead of waiting on every call; ``breaker.py``).
The catalogue (titles, categories of live items; the ids of removed ones) and the trending
list are small and read periodically into memory, so they keep answering while MongoDB is
unreachable.

Trending items come from ``shared.trends.top_trending`` (views in the current and the
previous 1-hour window).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.database import Database

from services.inference import metrics
from services.inference.breaker import CircuitBreaker
from services.inference.spans import untraced
from shared.catalogue import LIVE, REMOVED
from shared.mongo import ITEMS, PROFILES, client_options
from shared.profile_document import (
    ID,
    PURCHASED_ITEMS,
    RATED_ITEMS,
    RECENT_ITEMS,
    SEEN_ITEMS,
    MalformedProfile,
    ProfileDocument,
)
from shared.settings import MongoSettings
from shared.trends import top_trending

log = logging.getLogger(__name__)

PROFILE_FIELDS = {name: 1 for name in (RECENT_ITEMS, PURCHASED_ITEMS, RATED_ITEMS, SEEN_ITEMS)}
TRENDS_LIMIT = 500


@dataclass(frozen=True)
class ProfileView:
    recent_items: list[str]  # oldest first
    seen_items: set[str]  # bought, rated or otherwise consumed


@dataclass
class CatalogueEntry:
    title: str = ""
    categories: list[str] = field(default_factory=list)


def async_client(settings: MongoSettings) -> AsyncMongoClient[dict[str, Any]]:
    return AsyncMongoClient(settings.uri, **client_options(settings))


def profile_view(doc: dict[str, Any]) -> ProfileView:
    """What Recommend needs of a stored profile (``MalformedProfile`` if it cannot be read)."""
    decoded = ProfileDocument.decode(doc)
    return ProfileView(decoded.recent_items, decoded.seen_items)


class ProfileStore:
    def __init__(
        self,
        client: AsyncMongoClient[dict[str, Any]],
        sync_db: Database[Any],
        database: str,
        timeout_ms: int,
        breaker: CircuitBreaker,
    ) -> None:
        self.db = client[database]
        self.sync_db = sync_db
        self.timeout = timeout_ms / 1000
        self.breaker = breaker
        self.catalogue: dict[str, CatalogueEntry] = {}
        self.removed: set[str] = set()  # items the product deleted: never served
        self.trending: list[str] = []

    async def profile(self, key: str, anonymous: bool) -> tuple[ProfileView | None, bool]:
        """(profile or None, store_ok). Never raises for store failures."""
        if self.breaker.is_open:
            return None, False
        query: dict[str, Any] = (
            {"$or": [{"_id": key}, {"anonymousIds": key}]} if anonymous else {"_id": key}
        )
        try:
            doc = await asyncio.wait_for(
                self.db[PROFILES].find_one(query, PROFILE_FIELDS), self.timeout
            )
        except Exception as exc:  # timeout, network, server selection: all degrade
            self.breaker.failed()
            metrics.PROFILE_STORE_ERRORS.inc()
            metrics.PROFILE_STORE_UP.set(0)
            log.warning("profile store unavailable", extra={"fields": {"error": repr(exc)}})
            return None, False
        self.breaker.succeeded()
        metrics.PROFILE_STORE_UP.set(1)
        if not doc:
            return None, True
        try:
            return profile_view(doc), True
        except MalformedProfile as exc:  # a field another writer left undecodable
            metrics.PROFILE_UNREADABLE.inc()
            log.warning(
                "profile unreadable", extra={"fields": {"profile": doc.get(ID), "error": str(exc)}}
            )
            return None, False

    async def refresh(self) -> None:
        """Re-read the catalogue and the trending list; keep the old copies on failure."""
        try:
            items: dict[str, CatalogueEntry] = {}
            async for doc in self.db[ITEMS].find(LIVE, {"title": 1, "categories": 1}):
                items[str(doc["_id"])] = CatalogueEntry(
                    str(doc.get("title") or ""), [str(c) for c in doc.get("categories") or []]
                )
            removed = {
                str(doc["_id"]) async for doc in self.db[ITEMS].find({REMOVED: True}, {"_id": 1})
            }
            trending = await asyncio.to_thread(top_trending, self.sync_db, limit=TRENDS_LIMIT)
        except Exception as exc:
            log.warning("catalogue/trends refresh failed", extra={"fields": {"error": repr(exc)}})
            return
        self.catalogue = items
        self.removed = removed
        self.trending = [t.key for t in trending]

    async def refresh_forever(self, interval: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with untraced():
                await self.refresh()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
