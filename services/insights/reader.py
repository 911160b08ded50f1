"""Reads hourly demand series from the ``trends`` collection (document shape in shared/trends.py).

A series runs from the oldest kept hourly window of its kind (any key) up to, not including,
the current hour, which is still being counted. Hours without a window for the key had no
views or purchases: they count as zero. Reads use the ``(window, kind, start)`` index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from pymongo.database import Database

from shared.trends import TRENDS, WINDOWS

HOUR = WINDOWS["1h"]


@dataclass(frozen=True)
class HourlySeries:
    """``values[i]`` is the count of the hour starting at ``first_hour + i`` hours."""

    first_hour: datetime
    values: np.ndarray

    @property
    def end(self) -> datetime:
        """Start of the hour after the last one: the first hour to forecast."""
        return self.first_hour + timedelta(seconds=HOUR * len(self.values))


def current_hour(now: datetime) -> datetime:
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % HOUR, UTC)


def hourly_series(
    db: Database, kind: str, key: str, measure: str, now: datetime, max_hours: int
) -> HourlySeries | None:
    """The key's hourly ``measure`` counts before ``now``'s hour; None when it has no window."""
    end = current_hour(now)
    since = end - timedelta(seconds=HOUR * max_hours)
    windows = list(
        db[TRENDS].find(
            {"window": "1h", "kind": kind, "key": key, "start": {"$gte": since, "$lt": end}},
            {"_id": 0, "start": 1, measure: 1},
        )
    )
    if not windows:
        return None
    oldest = db[TRENDS].find_one(
        {"window": "1h", "kind": kind, "start": {"$gte": since, "$lt": end}},
        {"_id": 0, "start": 1},
        sort=[("start", 1)],
    )
    first = as_utc(oldest["start"]) if oldest else min(as_utc(w["start"]) for w in windows)
    values = np.zeros(int((end - first).total_seconds()) // HOUR)
    for window in windows:
        index = int((as_utc(window["start"]) - first).total_seconds()) // HOUR
        values[index] += float(window.get(measure, 0) or 0)
    return HourlySeries(first, values)


def as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
