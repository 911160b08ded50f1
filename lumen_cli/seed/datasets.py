"""Public data sets turned into what Lumen ingests: Segment events and support messages.

MovieLens 100k becomes the item catalogue (``Item Upserted``) and one ``Item Rated`` event per
rating, in the original chronological order (the replay keeps the original gaps between them,
shifted so that the newest lands at replay time: ``rated_at``); Banking77 becomes ``support.messages`` records.
Every event has a stable ``messageId`` so that a replay is deduplicated by ingest.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CATALOGUE_USER = "lumen-seed-catalogue"
RATING_ID_PREFIX = "ml100k-rating-"  # messageIds of the ratings: RATING_ID_PREFIX + "<user>-<item>"
LIBRARY = {"library": {"name": "lumen-seed", "version": "1"}}


@dataclass(frozen=True)
class Selection:
    """What to replay: ``users`` None means every MovieLens user, ``support`` None every message."""

    users: int | None = 200
    support: int | None = 500

    def describe(self) -> dict[str, str]:
        return {
            "catalogue": "ml-100k items",
            "ratings": f"ml-100k ratings of users 1..{self.users}"
            if self.users
            else "ml-100k ratings",
            "support": f"banking77 {self.support} messages across intents"
            if self.support
            else "banking77 all",
        }


def _tsv(path: Path) -> Iterator[dict[str, str]]:
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = [h.split(":")[0] for h in next(reader)]
        for row in reader:
            yield dict(zip(header, row, strict=False))


def movie_title(title: str, year: str) -> str:
    return f"{title} ({year})" if year else title


def catalogue_events(folder: Path) -> list[dict[str, Any]]:
    """One ``Item Upserted`` per movie; title "Toy Story (1995)", categories = genres."""
    rows = sorted(_tsv(folder / "ml-100k.item"), key=lambda r: int(r["item_id"]))
    return [
        {
            "type": "track",
            "userId": CATALOGUE_USER,
            "event": "Item Upserted",
            "messageId": f"ml100k-item-{r['item_id']}",
            "properties": {
                "item": {
                    "id": r["item_id"],
                    "title": movie_title(r.get("movie_title", ""), r.get("release_year", "")),
                    "categories": r.get("class", "").split(),
                }
            },
            "context": LIBRARY,
        }
        for r in rows
    ]


def rating_events(folder: Path, users: int | None) -> list[dict[str, Any]]:
    """``Item Rated`` per rating of users 1..``users``, oldest first (ties keep file order)."""
    genres = {r["item_id"]: r.get("class", "").split() for r in _tsv(folder / "ml-100k.item")}
    rows = [
        r for r in _tsv(folder / "ml-100k.inter") if users is None or int(r["user_id"]) <= users
    ]
    rows.sort(key=lambda r: float(r["timestamp"]))
    return [
        {
            "type": "track",
            "userId": r["user_id"],
            "event": "Item Rated",
            "messageId": f"{RATING_ID_PREFIX}{r['user_id']}-{r['item_id']}",
            "properties": {
                "itemId": r["item_id"],
                "rating": float(r["rating"]),
                "categories": genres.get(r["item_id"], []),
                # When it happened in 1997-98; the replay stamps the event this long before
                # its newest rating's replay time.
                "ratedAt": int(float(r["timestamp"])),
            },
            "context": LIBRARY,
        }
        for r in rows
    ]


def rated_at(event: dict[str, Any]) -> float:
    """The original time (Unix seconds) of an ``Item Rated`` event made by ``rating_events``."""
    return float(event["properties"]["ratedAt"])


def support_messages(path: Path, limit: int | None) -> list[dict[str, Any]]:
    """Banking77 queries as support messages; ``limit`` picks rows spread over every intent."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    step = 1 if not limit or limit >= len(rows) else math.ceil(len(rows) / limit)
    picked = [(n, r) for n, r in enumerate(rows) if n % step == 0][: limit or None]
    return [
        {
            "conversationId": f"banking77-{n}",
            "messageId": f"banking77-{n}",
            "text": r["text"],
            "channel": "chat",
            "dataset": {"name": "banking77", "intent": r["category"]},
        }
        for n, r in picked
    ]
