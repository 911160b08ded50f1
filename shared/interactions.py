"""The interaction store: what recommender training reads of the product's own events.

The profile updater writes one document per interaction (a view, a cart add, a purchase, a
rating: ``services/profiles``), in the same transaction as the profile it changes, so a replay
or a killed worker neither loses nor doubles one: the ``_id`` comes from the event's
``messageId`` and the product's position in it. A TTL index on ``t`` bounds the store by
``LUMEN_INTERACTIONS_RETENTION_DAYS``. The trainer (``models/recommender``) reads it in time
order; erasing a user deletes theirs.

Document (short field names: the collection is the largest Lumen keeps)::

    {_id: "<messageId>:<product index>", u: profile key, i: item id, k: kind,
     t: event time (datetime), w: interaction weight}
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

COLLECTION = "interactions"
ID, USER, ITEM, KIND, AT, WEIGHT = "_id", "u", "i", "k", "t", "w"

RETENTION_ENV = "LUMEN_INTERACTIONS_RETENTION_DAYS"  # shared.settings.InteractionSettings
DEFAULT_RETENTION_DAYS = 365
TTL_INDEX = "retention"
USER_TIME_INDEX = "user_time"  # one user's interactions in time order (and moves, erasure)


def interaction_id(message_id: str, product_index: int = 0) -> str:
    return f"{message_id}:{product_index}"


@dataclass(frozen=True)
class StoredInteraction:
    interaction_id: str
    user: str
    item: str
    kind: str
    at: datetime
    weight: float

    def to_document(self) -> dict[str, Any]:
        return {
            ID: self.interaction_id,
            USER: self.user,
            ITEM: self.item,
            KIND: self.kind,
            AT: self.at,
            WEIGHT: self.weight,
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> StoredInteraction:
        return cls(
            str(doc[ID]),
            str(doc[USER]),
            str(doc[ITEM]),
            str(doc.get(KIND, "")),
            doc[AT],
            float(doc.get(WEIGHT, 1.0)),
        )
