"""RFM (recency, frequency, monetary) scores from 1 to 5 and the segment named by them.

Recency is measured from the last purchase to the profile's ``lastSeen`` (the latest thing the
user did), so the scores change only when the user acts; a reader wanting recency against
today's clock calls ``scores`` with its own ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# (lower bound, score), checked from the top.
RECENCY_DAYS = ((7, 5), (30, 4), (90, 3), (180, 2))  # at most this many days -> score
FREQUENCY = ((20, 5), (10, 4), (5, 3), (2, 2), (1, 1))  # at least this many purchases
MONETARY = ((1000.0, 5), (500.0, 4), (200.0, 3), (50.0, 2), (0.0, 1))  # at least this revenue


@dataclass(frozen=True)
class Rfm:
    r: int
    f: int
    m: int
    segment: str

    def as_document(self) -> dict[str, int | str]:
        return {"r": self.r, "f": self.f, "m": self.m, "segment": self.segment}


def recency_score(days: float) -> int:
    for limit, score in RECENCY_DAYS:
        if days <= limit:
            return score
    return 1


def frequency_score(purchases: int) -> int:
    for least, score in FREQUENCY:
        if purchases >= least:
            return score
    return 0


def monetary_score(revenue: float) -> int:
    for least, score in MONETARY:
        if revenue >= least:
            return score
    return 1


def segment(r: int, f: int) -> str:
    if r >= 4 and f >= 4:
        return "champions"
    if f >= 4:
        return "loyal"
    if r >= 4 and f == 1:
        return "new"
    if r >= 3 and f >= 2:
        return "potential_loyalist"
    if r <= 2 and f >= 3:
        return "at_risk"
    if r <= 2:
        return "hibernating"
    return "needs_attention"


def scores(
    purchases: int, revenue: float, last_purchase: datetime | None, now: datetime
) -> Rfm | None:
    """RFM of a buyer; None for someone who never bought (no RFM to speak of)."""
    if purchases <= 0 or last_purchase is None:
        return None
    days = max(0.0, (now - last_purchase).total_seconds() / 86400.0)
    r, f, m = recency_score(days), frequency_score(purchases), monetary_score(revenue)
    return Rfm(r, f, m, segment(r, f))
