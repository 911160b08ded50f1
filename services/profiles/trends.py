"""Tumbling-window counts of views and purchases per item and per category.

Pure: the store turns the deltas into ``$inc`` upserts of the ``trends`` collection (document
shape in ``shared/trends.py``), written in the same transaction as the profiles so a replay
counts nothing twice. Each user's share is also kept, per hour, in ``trend_contributions``
so that an erasure can take it back out while the windows are still kept.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from services.profiles.parsing import Interaction
from shared.profile_document import escape, unescape
from shared.trends import CHANNEL, ITEM, KIND_CODES, WINDOWS, trend_id
from shared.vocabulary import PURCHASES, VIEWS, kinds_counted_as

# Interaction kinds that count as a view (attention) and as a purchase, from the vocabulary.
VIEW_KINDS = kinds_counted_as(VIEWS)
PURCHASE_KINDS = kinds_counted_as(PURCHASES)
MINUTE = 60
HOUR = 3600


@dataclass(frozen=True)
class Retention:
    """How long windows are kept after they close (the TTL of their documents)."""

    minute_seconds: float = 2 * HOUR
    hour_seconds: float = 48 * HOUR

    def of(self, window: str) -> float:
        return self.minute_seconds if window == "1m" else self.hour_seconds


def window_start(moment: datetime, seconds: int) -> int:
    epoch = int(moment.timestamp())
    return epoch - epoch % seconds


@lru_cache(maxsize=4096)  # a batch has few distinct windows but asks for each many times
def expires_at(start: int, window: str, retention: Retention) -> datetime:
    return datetime.fromtimestamp(start + WINDOWS[window] + retention.of(window), UTC)


def counted(interaction: Interaction) -> tuple[int, int]:
    """(views, purchases) that one interaction adds."""
    return int(interaction.kind in VIEW_KINDS), int(interaction.kind in PURCHASE_KINDS)


@dataclass
class TrendDeltas:
    """Per user, per minute window, per (kind, key): [views, purchases] of one batch.

    At most ``per_hour`` interactions of one user are counted per hour (``stored`` holds what
    earlier batches counted, by (user, hour start)): that bounds one user's weight in trending
    and the size of their ``trend_contributions`` document.
    """

    retention: Retention
    per_hour: int = 1000

    def __post_init__(self) -> None:
        self.by_user: dict[str, dict[tuple[int, str, str], list[int]]] = defaultdict(dict)
        self.stored: dict[tuple[str, int], int] = {}
        self.events: dict[tuple[str, int], int] = defaultdict(int)  # counted in this batch

    def add(
        self,
        user: str,
        moment: datetime,
        interaction: Interaction,
        categories: tuple[str, ...],
        now: datetime,
        channel: str | None = None,
    ) -> bool:
        """Count one interaction (under its item, its categories and the user's acquisition
        ``channel``, if any); False when the user's hourly budget refused it."""
        views, purchases = counted(interaction)
        if not (views or purchases):
            return True
        minute = window_start(moment, MINUTE)
        hour = minute - minute % HOUR
        # Windows past their retention would be deleted by the TTL at once: not counted.
        if expires_at(hour, "1h", self.retention) <= now:
            return True
        slot = (user, hour)
        if self.stored.get(slot, 0) + self.events[slot] >= self.per_hour:
            return False
        self.events[slot] += 1
        cells = self.by_user[user]
        keys = [(ITEM, interaction.item_id), *(("category", c) for c in categories)]
        if channel:
            keys.append((CHANNEL, channel))
        for kind, key in keys:
            cell = cells.setdefault((minute, kind, key), [0, 0])
            cell[0] += views
            cell[1] += purchases
        return True

    def forget(self, user: str) -> None:
        self.by_user.pop(user, None)
        for slot in [s for s in self.events if s[0] == user]:
            del self.events[slot]

    def move(self, source: str, target: str) -> None:
        for cell, counts in self.by_user.pop(source, {}).items():
            mine = self.by_user[target].setdefault(cell, [0, 0])
            mine[0] += counts[0]
            mine[1] += counts[1]
        for user, hour in [s for s in self.events if s[0] == source]:
            self.events[(target, hour)] += self.events.pop((user, hour))

    def window_totals(self, now: datetime) -> dict[tuple[str, str, int, str], list[int]]:
        """(window, kind, start, key) -> [views, purchases], minute windows past retention
        left out."""
        totals: dict[tuple[str, str, int, str], list[int]] = defaultdict(lambda: [0, 0])
        retention = self.retention
        for cells in self.by_user.values():
            for (minute, kind, key), (views, purchases) in cells.items():
                for window, start in (("1m", minute), ("1h", minute - minute % HOUR)):
                    if expires_at(start, window, retention) <= now:
                        continue
                    cell = totals[(window, kind, start, key)]
                    cell[0] += views
                    cell[1] += purchases
        return totals

    def contributions(self) -> dict[tuple[str, int], dict[str, list[int]]]:
        """(user, hour start) -> {contribution field name: [views, purchases]}."""
        out: dict[tuple[str, int], dict[str, list[int]]] = defaultdict(dict)
        for user, cells in self.by_user.items():
            for (minute, kind, key), counts in cells.items():
                out[(user, minute - minute % HOUR)][contribution_field(minute, kind, key)] = counts
        return out


def contribution_id(user: str, hour: int) -> str:
    return f"{user}|{hour}"


def contribution_field(minute: int, kind: str, key: str) -> str:
    return f"{minute}~{KIND_CODES[kind]}~{escape(key)}"


def parse_contribution_field(name: str) -> tuple[int, str, str]:
    minute, code, key = name.split("~", 2)
    kind = next(k for k, c in KIND_CODES.items() if c == code)
    return int(minute), kind, unescape(key)


def reversal(
    contributions: dict[str, dict[str, int]], now: datetime, retention: Retention
) -> dict[str, list[int]]:
    """Trend document id -> [views, purchases] to subtract for stored contributions."""
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for name, counts in contributions.items():
        minute, kind, key = parse_contribution_field(name)
        for window, start in (("1m", minute), ("1h", minute - minute % HOUR)):
            if expires_at(start, window, retention) <= now:
                continue
            cell = out[trend_id(window, kind, start, key)]
            cell[0] += int(counts.get("v", 0))
            cell[1] += int(counts.get("p", 0))
    return out


def hour_expiry(hour: int, retention: Retention) -> datetime:
    return expires_at(hour, "1h", retention)


def as_datetime(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def retention_cutoff(now: datetime, retention: Retention) -> datetime:
    return now - timedelta(seconds=retention.hour_seconds + HOUR)
