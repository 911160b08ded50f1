"""The size budget of one profile: a cap on every structure that grows with a user's events.

Whatever a write key sends, a profile stays far below MongoDB's 16 MB document limit (with
the defaults, under 1 MB even with every id at its longest; ``worst_case_bytes``).
What a cap refuses is dropped by a fixed rule and counted
(``lumen_profiles_limited_total{limit}``); the rest of the event is applied:

* ``traits``: a new trait name beyond the count is refused (existing names can still change);
* ``trait_bytes``: a trait whose name + JSON value is larger is refused;
* ``traits_bytes``: a trait that would take the sum of all traits past it is refused;
* ``event_names``: events with a name beyond the count are counted under ``(other)``;
* ``anonymous_ids``: a link beyond the count is refused (no merge either);
* ``purchased_items``: bought or rated items beyond the count are not added to the set;
* ``trend_events`` (``LUMEN_PROFILES_MAX_TREND_EVENTS_PER_HOUR``): a user's interactions beyond
  it in one hour still update their profile but are not counted in trending (this bounds the
  user's ``trend_contributions`` document, kept for erasure, and one user's weight in trending).

The other growing fields have fixed bounds: ``recentItems`` (``recent_items_max``),
``activeDays`` (``active_days_max``), ``affinity`` (32 categories), ``counts.byType`` (the six
call types), ids (256 characters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from shared.events import MAX_ID_LENGTH

# Counter of event names past the ``event_names`` cap.
OTHER_EVENT_NAME = "(other)"
# Limit labels (lumen_profiles_limited_total{limit}).
TRAITS, TRAIT_BYTES, TRAITS_BYTES = "traits", "trait_bytes", "traits_bytes"
EVENT_NAMES, ANONYMOUS_IDS, PURCHASED_ITEMS = "event_names", "anonymous_ids", "purchased_items"
TREND_EVENTS = "trend_events"
# Revenue in a currency the rates table (LUMEN_CURRENCY_RATES) does not list: kept out.
REVENUE_CURRENCY = "revenue_currency"
ALL = (
    TRAITS,
    TRAIT_BYTES,
    TRAITS_BYTES,
    EVENT_NAMES,
    ANONYMOUS_IDS,
    PURCHASED_ITEMS,
    TREND_EVENTS,
    REVENUE_CURRENCY,
)


@dataclass(frozen=True)
class Limits:
    traits: int = 200
    trait_bytes: int = 8192
    traits_bytes: int = 65536
    event_names: int = 500
    anonymous_ids: int = 100
    purchased_items: int = 2000

    def worst_case_bytes(self, id_length: int = MAX_ID_LENGTH) -> int:
        """A generous upper bound of a profile's BSON size under these caps."""
        per_id = id_length + 16  # element header, index key, string length
        return (
            self.traits_bytes
            + self.traits * 16  # BSON framing per trait
            + (self.event_names + 1) * (per_id + 8)
            + self.anonymous_ids * per_id
            + self.purchased_items * (id_length + 2)  # packed: length prefix + bytes
            + 50 * (id_length + 2)
            + 366 * 16
            + 32 * (per_id + 8)  # recent, days, affinity
            + 4096  # scalars, byType counters, rfm, field names
        )


def trait_size(name: str, value: Any) -> int:
    """Bytes a trait counts against the budget: its name plus its value as JSON."""
    return len(name.encode()) + len(orjson.dumps(value, default=str))
