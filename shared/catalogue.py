"""The product's catalogue as stored in MongoDB (``items``): one document per item id.

``Item Upserted`` events write it (the profile updater, in the batch's transaction) and
``Item Deleted`` marks an item removed; readers (Recommend, SearchItems, the trainer, the live
search index) skip removed items. Removal is a mark, not a delete, so that an interaction that
arrives late does not bring the item back and the live index can see the removal in the
collection's change stream.

Document::

    {_id: item id (the product's own string), title, categories: [..], description,
     attributes: {price, currency, available, ...}, removed: bool, updatedAt: datetime}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.mongo import ITEMS

COLLECTION = ITEMS
TITLE = "title"
CATEGORIES = "categories"
DESCRIPTION = "description"
ATTRIBUTES = "attributes"  # scalar extras the product sends: price, currency, available, ...
REMOVED = "removed"
UPDATED_AT = "updatedAt"

MAX_TITLE_CHARS = 500
MAX_DESCRIPTION_CHARS = 4_000
MAX_ATTRIBUTES = 32

# Readers' filter for items that may be served.
LIVE: dict[str, Any] = {REMOVED: {"$ne": True}}


@dataclass(frozen=True)
class CatalogueItem:
    item_id: str
    title: str = ""
    categories: tuple[str, ...] = ()
    description: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)
    removed: bool = False
    updated_at: datetime | None = None

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> CatalogueItem:
        attributes = doc.get(ATTRIBUTES)
        return cls(
            item_id=str(doc["_id"]),
            title=str(doc.get(TITLE) or ""),
            categories=tuple(str(c) for c in doc.get(CATEGORIES) or ()),
            description=str(doc.get(DESCRIPTION) or ""),
            attributes=dict(attributes) if isinstance(attributes, Mapping) else {},
            removed=bool(doc.get(REMOVED, False)),
            updated_at=doc.get(UPDATED_AT),
        )

    def text(self) -> str:
        return item_text(self.title, self.categories, self.description)


def item_text(title: str, categories: Sequence[str] = (), description: str = "") -> str:
    """What the text encoder embeds for an item (search index, cold-start similarity).
    Every embedder uses this one function, so stored vectors and queries stay comparable."""
    parts = [title.strip()] if title.strip() else []
    if categories:
        parts.append(f"Categories: {', '.join(categories)}.")
    if description.strip():
        parts.append(description.strip())
    return " ".join(parts)
