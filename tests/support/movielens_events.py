"""MovieLens 100k as Lumen events: every rating becomes an ``Item Rated`` track event.

The data come from the ``recbole==1.2.1`` wheel through ``models.sources`` (downloaded once into
the cache, never committed: the MovieLens licence forbids redistribution).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def movielens_folder() -> Path:
    from models.sources import movielens_100k

    return movielens_100k()


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = [h.split(":")[0] for h in next(reader)]
        return [dict(zip(header, row, strict=False)) for row in reader]


def genres(folder: Path) -> dict[str, list[str]]:
    return {r["item_id"]: r.get("class", "").split() for r in _rows(folder / "ml-100k.item")}


def interactions(folder: Path) -> list[tuple[str, str, float, int]]:
    """(user, item, rating, unix time) in the file's order."""
    return [
        (r["user_id"], r["item_id"], float(r["rating"]), int(float(r["timestamp"])))
        for r in _rows(folder / "ml-100k.inter")
    ]


def rating_events(
    folder: Path, prefix: str, users: Iterable[str] | None = None, with_categories: bool = True
) -> list[dict[str, Any]]:
    """Events of ``users`` (all by default) in time order (file order breaks ties); user ids
    are ``<prefix>-<MovieLens user id>`` so that runs never mix."""
    wanted = set(users) if users is not None else None
    categories = genres(folder) if with_categories else {}
    rows = [r for r in interactions(folder) if wanted is None or r[0] in wanted]
    rows.sort(key=lambda r: r[3])  # stable: ties keep the file order
    events = []
    for n, (user, item, rating, epoch) in enumerate(rows):
        props: dict[str, Any] = {"itemId": item, "rating": rating}
        if with_categories:
            props["categories"] = categories.get(item, [])
        events.append(
            {
                "type": "track",
                "userId": f"{prefix}-{user}",
                "event": "Item Rated",
                "messageId": f"{prefix}-{n}",
                "properties": props,
                "timestamp": datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z"),
            }
        )
    return events
