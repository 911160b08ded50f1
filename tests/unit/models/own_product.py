"""A small product with its own string ids (``sku-…``) and habits a recommender can learn.

Items come in four categories of ten; each shopper stays in one category and walks it in
catalogue order (``sku-c3`` after ``sku-c2``...), starting somewhere and wrapping around. The
next item is therefore predictable from the last one, and popularity is nearly uniform: a
model that learns the walks beats popularity by far, one trained on shuffled data does not.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from shared import interactions
from shared.catalogue import CatalogueItem

CATEGORIES = ("garden", "kitchen", "games", "books")
PER_CATEGORY = 10


def sku(category: int, position: int) -> str:
    return f"sku-{CATEGORIES[category]}-{position % PER_CATEGORY:02d}"


def catalogue() -> list[CatalogueItem]:
    return [
        CatalogueItem(sku(c, p), title=f"{name.title()} thing {p}", categories=(name,))
        for c, name in enumerate(CATEGORIES)
        for p in range(PER_CATEGORY)
    ]


def walks(n_users: int, length: int = 8, seed: int = 0, noise: float = 0.0) -> dict[str, list[str]]:
    """User id -> items in time order; ``noise``: the share of steps that are a random item
    instead (drawn after the walks, so the walks are the same with or without)."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[str]] = {}
    for u in range(n_users):
        category = int(rng.integers(len(CATEGORIES)))
        start = int(rng.integers(PER_CATEGORY))
        n = int(rng.integers(length - 2, length + 1))
        out[f"shopper-{u:03d}"] = [sku(category, start + step) for step in range(n)]
    if noise:
        stray = np.random.default_rng(seed + 1)
        for items in out.values():
            for step in range(len(items)):
                if stray.random() < noise:
                    items[step] = sku(
                        int(stray.integers(len(CATEGORIES))), int(stray.integers(PER_CATEGORY))
                    )
    return out


def documents(
    histories: dict[str, list[str]], start: datetime | None = None
) -> list[dict[str, Any]]:
    """Interaction documents, one minute apart per user, users interleaved in time."""
    start = start or datetime(2026, 1, 1, tzinfo=UTC)
    docs = []
    for u, (user, items) in enumerate(sorted(histories.items())):
        for step, item in enumerate(items):
            docs.append(
                interactions.StoredInteraction(
                    f"m-{user}-{step}:0",
                    user,
                    item,
                    "view",
                    start + timedelta(minutes=step, seconds=u),
                    1.0,
                ).to_document()
            )
    return sorted(docs, key=lambda d: (d[interactions.AT], d[interactions.ID]))
