"""The ``trends`` collection: what is trending now, per item and per category.

The profile updater writes one document per (window, kind, window start, key)::

    {"_id": "1h|item|1717232400|42",   # trend_id(window, kind, start, key)
     "window": "1h",                   # "1m" or "1h": tumbling windows
     "kind": "item",                   # "item", "category" or "channel"
     "key": "42",                      # the item id, the category or the acquisition channel
     "start": ISODate(...),            # window start (UTC); the end is start + window
     "views": 17,                      # interactions counted as views (views, clicks, ratings)
     "purchases": 2,                   # ... and as purchases: see shared/vocabulary.py
     "expiresAt": ISODate(...)}        # TTL: window end + retention (2 h for 1m, 48 h for 1h)

A ``channel`` window counts each interaction under the acquisition channel of its user's last
touch once the event is applied (``shared.attribution``; interactions of users without one are
not counted there), so views and purchases can be split by channel.

``top_trending`` reads "top N now": the current window plus the one before it, so the list
does not empty itself at every window boundary. Any service may import this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from pymongo.database import Database

from shared.vocabulary import PURCHASES, VIEWS

TRENDS = "trends"
TREND_CONTRIBUTIONS = "trend_contributions"
ITEM: Literal["item"] = "item"
CATEGORY: Literal["category"] = "category"
CHANNEL: Literal["channel"] = "channel"
KIND_CODES = {ITEM: "i", CATEGORY: "c", CHANNEL: "h"}
WINDOWS = {"1m": 60, "1h": 3600}
MEASURES = (VIEWS, PURCHASES)  # the two counters of a window document


@dataclass(frozen=True)
class Trending:
    key: str
    views: int
    purchases: int


def trend_id(window: str, kind: str, start: int, key: str) -> str:
    """Document id of one window's counter (``start`` in epoch seconds)."""
    return f"{window}|{kind}|{start}|{key}"


def top_trending(
    db: Database,
    kind: Literal["item", "category", "channel"] = "item",
    window: Literal["1m", "1h"] = "1h",
    by: Literal["views", "purchases"] = "views",
    limit: int = 10,
    now: datetime | None = None,
) -> list[Trending]:
    """The ``limit`` keys with the most ``by`` in the current and the previous window."""
    if window not in WINDOWS or kind not in KIND_CODES or by not in MEASURES:
        raise ValueError("unknown window, kind or measure")
    size = WINDOWS[window]
    now = now or datetime.now(UTC)
    epoch = int(now.timestamp())
    since = datetime.fromtimestamp(epoch - epoch % size, UTC) - timedelta(seconds=size)
    other = PURCHASES if by == VIEWS else VIEWS
    rows = db[TRENDS].aggregate(
        [
            {"$match": {"window": window, "kind": kind, "start": {"$gte": since}}},
            {"$group": {"_id": "$key", by: {"$sum": f"${by}"}, other: {"$sum": f"${other}"}}},
            {"$match": {by: {"$gt": 0}}},
            {"$sort": {by: -1, "_id": 1}},
            {"$limit": int(limit)},
        ]
    )
    return [Trending(str(r["_id"]), int(r["views"]), int(r["purchases"])) for r in rows]
