"""What Recommend and SearchItems read from MongoDB: profiles, the catalogue, trends.

Profile reads are bounded by a short timeout; a failed read (or a profile whose item lists
cannot be decoded) degrades its own answer, and
after a few failures in a row the store is treated as down for a few seconds (callers
degrade to trending at once instead of waiting on every call; ``breaker.py``).
The catalogue (titles, categories of live items; the ids of removed ones) and the trending
list are read periodically into memory, so they keep answering while MongoDB is
unreachable. The catalogue is read whole at start and every ``full_refresh_seconds``; in
between only the items changed since the last read (``updatedAt``, indexed) are read, so a
catalogue of 10^5 items does not cost the event loop a full scan every few seconds.

Trending items come from ``shared.trends.top_trending`` (views in the current and the
previous 1-hour window).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.database import Database

from services.inference import metrics
from services.inference.breaker import CircuitBreaker
from services.inference.spans import untraced
from shared.catalogue import CATEGORIES, REMOVED, TITLE, UPDATED_AT
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
CATALOGUE_FIELDS = {TITLE: 1, CATEGORIES: 1, REMOVED: 1, UPDATED_AT: 1}
# An item's updatedAt is its writer's clock when it planned the batch, committed a little
# later (and by several writers): changes are re-read this far behind the newest one seen.
CHANGES_OVERLAP = timedelta(seconds=120)


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
        full_refresh_seconds: float = 600.0,
    ) -> None:
        self.db = client[database]
        self.sync_db = sync_db
        self.timeout = timeout_ms / 1000
        self.breaker = breaker
        self.catalogue: dict[str, CatalogueEntry] = {}
        self.removed: set[str] = set()  # items the product deleted: never served
        self.trending: list[str] = []
        self.full_refresh_seconds = full_refresh_seconds
        self._full_read_at: float | None = None  # monotonic time of the last whole read
        self._changed_after: datetime | None = None  # newest updatedAt seen, for the next read

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
        """Re-read the catalogue (whole, or what changed) and the trending list; keep the old
        copies on failure."""
        try:
            whole = (
                self._full_read_at is None
                or self._changed_after is None
                or time.monotonic() - self._full_read_at >= self.full_refresh_seconds
            )
            if whole:
                started = time.monotonic()
                # Every item (live or removed) in one pass, off the event loop.
                items, removed, newest = await asyncio.to_thread(
                    self._read_catalogue, {}, {}, set()
                )
            else:
                assert self._changed_after is not None
                since = {UPDATED_AT: {"$gt": self._changed_after - CHANGES_OVERLAP}}
                items, removed, newest = await asyncio.to_thread(
                    self._read_catalogue, since, self.catalogue, self.removed
                )
            trending = await asyncio.to_thread(top_trending, self.sync_db, limit=TRENDS_LIMIT)
        except Exception as exc:
            log.warning("catalogue/trends refresh failed", extra={"fields": {"error": repr(exc)}})
            return
        if whole:
            self._full_read_at = started
        if newest is not None and (self._changed_after is None or newest > self._changed_after):
            self._changed_after = newest
        self.catalogue = items
        self.removed = removed
        self.trending = [t.key for t in trending]

    def _read_catalogue(
        self, query: dict[str, Any], items: dict[str, CatalogueEntry], removed: set[str]
    ) -> tuple[dict[str, CatalogueEntry], set[str], datetime | None]:
        """Apply the items ``query`` finds to copies of the catalogue; (items, removed ids,
        the newest updatedAt read). Runs in a worker thread with the synchronous client: a
        large catalogue's documents are decoded (and copied) there, not between Recommend
        calls; the loop only swaps the results in."""
        items, removed = dict(items), set(removed)
        newest: datetime | None = None
        for doc in self.sync_db[ITEMS].find(query, CATALOGUE_FIELDS):
            item_id = str(doc["_id"])
            changed = doc.get(UPDATED_AT)
            if isinstance(changed, datetime) and (newest is None or changed > newest):
                newest = changed
            if doc.get(REMOVED) is True:
                items.pop(item_id, None)
                removed.add(item_id)
                continue
            items[item_id] = CatalogueEntry(
                str(doc.get(TITLE) or ""), [str(c) for c in doc.get(CATEGORIES) or []]
            )
            removed.discard(item_id)
        return items, removed, newest

    async def refresh_forever(self, interval: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with untraced():
                await self.refresh()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
