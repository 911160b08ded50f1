"""Seeded synthetic interactions of a product, for benchmarks at catalogue sizes no public
data set here has.

- Items belong to categories (``items_per_category`` on average, each item in one primary
  category and sometimes a second); item popularity is Zipf-like (``p(rank r) ~ r^-a``).
- Each user has a few sessions; a session picks one category (by the popularity of its
  items) and its items are drawn mostly from that category (``locality``), otherwise from
  the whole catalogue, so items of a session co-occur and follow each other.
- Timestamps increase within a session (seconds apart) and sessions are hours to days
  apart, within ``days`` days.

``generate`` returns numpy arrays (one row per interaction, sorted by user then time);
``histories`` turns them into the per-user item-row histories the trainers take; and
``write_to_mongo`` writes ``items`` and ``interactions`` documents of ``shared/catalogue.py``
and ``shared/interactions.py`` in bulk.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

DAY_SECONDS = 86_400
START = 1_767_225_600  # 2026-01-01T00:00:00Z: fixed, so a seed gives the same data


@dataclass(frozen=True)
class SyntheticSpec:
    n_items: int
    n_users: int
    n_interactions: int
    zipf_exponent: float = 1.0
    items_per_category: int = 200
    session_length: float = 6.0  # mean items per session
    locality: float = 0.8  # share of a session's items from its category
    days: int = 90
    seed: int = 0


@dataclass
class SyntheticData:
    users: np.ndarray  # int64 user row per interaction
    items: np.ndarray  # int64 item row
    timestamps: np.ndarray  # int64 epoch seconds
    sessions: np.ndarray  # int64 global session number
    item_category: np.ndarray  # int64 [n_items]: primary category of each item
    item_second_category: np.ndarray  # int64 [n_items]: second category or -1
    item_popularity: np.ndarray  # float64 [n_items]: the drawing probability


def _catalogue(spec: SyntheticSpec, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    n_categories = max(1, spec.n_items // spec.items_per_category)
    rank = rng.permutation(spec.n_items) + 1  # item i has popularity rank rank[i]
    popularity = rank.astype(np.float64) ** -spec.zipf_exponent
    popularity /= popularity.sum()
    category = rng.integers(0, n_categories, spec.n_items)
    second = np.where(
        rng.random(spec.n_items) < 0.2, rng.integers(0, n_categories, spec.n_items), -1
    )
    second[second == category] = -1
    return popularity, category, second


def generate(spec: SyntheticSpec) -> SyntheticData:
    rng = np.random.default_rng(spec.seed)
    popularity, category, second = _catalogue(spec, rng)
    n_categories = int(category.max()) + 1
    # Sessions: lengths >= 1 (geometric), until the interaction budget is spent.
    n_sessions_guess = int(spec.n_interactions / spec.session_length * 1.2) + 1
    lengths = rng.geometric(1.0 / spec.session_length, n_sessions_guess)
    total = np.cumsum(lengths)
    n_sessions = int(np.searchsorted(total, spec.n_interactions)) + 1
    lengths = lengths[:n_sessions].copy()
    lengths[-1] -= int(total[n_sessions - 1] - spec.n_interactions)
    # Users: every user gets a session first, the rest go to users at random.
    session_user = np.concatenate(
        [
            rng.permutation(spec.n_users)[: min(spec.n_users, n_sessions)],
            rng.integers(0, spec.n_users, max(0, n_sessions - spec.n_users)),
        ]
    )
    session_of = np.repeat(np.arange(n_sessions), lengths)
    # Per-category item lists, each sorted by popularity, with its cumulative weights.
    by_category = np.argsort(category, kind="stable")
    bounds = np.searchsorted(category[by_category], np.arange(n_categories + 1))
    category_weight = np.bincount(category, weights=popularity, minlength=n_categories)
    session_category = rng.choice(n_categories, n_sessions, p=category_weight)
    n = spec.n_interactions
    items = np.empty(n, dtype=np.int64)
    local = rng.random(n) < spec.locality
    # Global draws: inverse CDF on the popularity.
    cdf = np.cumsum(popularity)
    glob = ~local
    items[glob] = np.minimum(np.searchsorted(cdf, rng.random(int(glob.sum()))), spec.n_items - 1)
    # Local draws: inverse CDF within the session's category.
    in_category = by_category
    local_cdf = np.cumsum(popularity[in_category])
    start_mass = np.concatenate([[0.0], local_cdf])[bounds[:-1]]
    cats = session_category[session_of[local]]
    u = start_mass[cats] + rng.random(int(local.sum())) * category_weight[cats]
    pos = np.searchsorted(local_cdf, u)
    pos = np.clip(pos, bounds[cats], bounds[cats + 1] - 1)
    items[local] = in_category[pos]
    # Times: a session starts somewhere in the window, its items 5-120 s apart.
    session_start = START + rng.integers(0, spec.days * DAY_SECONDS, n_sessions)
    gaps = rng.integers(5, 120, n)
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    gaps[first] = 0
    offset = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[first], lengths)
    timestamps = session_start[session_of] + offset
    users = session_user[session_of]
    order = np.lexsort((timestamps, users))
    return SyntheticData(
        users=users[order],
        items=items[order],
        timestamps=timestamps[order],
        sessions=session_of[order],
        item_category=category,
        item_second_category=second,
        item_popularity=popularity,
    )


def histories(data: SyntheticData, n_users: int) -> list[np.ndarray]:
    """Per user (row order), the item rows in time order."""
    starts = np.searchsorted(data.users, np.arange(n_users + 1))
    return [data.items[starts[u] : starts[u + 1]] for u in range(n_users)]


def item_id(row: int) -> str:
    return f"item-{row}"


def user_id(row: int) -> str:
    return f"user-{row}"


def category_name(number: int) -> str:
    return f"category-{number}"


def write_to_mongo(database: Any, data: SyntheticData, batch: int = 50_000) -> None:
    """``items`` (title, categories) and ``interactions`` (views) documents, in bulk."""
    from shared import catalogue, interactions

    def flush(collection: str, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if docs:
            database[collection].insert_many(docs, ordered=False)
        return []

    docs: list[dict[str, Any]] = []
    for row in range(len(data.item_category)):
        categories = [category_name(int(data.item_category[row]))]
        if data.item_second_category[row] >= 0:
            categories.append(category_name(int(data.item_second_category[row])))
        docs.append(
            {"_id": item_id(row), catalogue.TITLE: f"Item {row}", catalogue.CATEGORIES: categories}
        )
        if len(docs) == batch:
            docs = flush(catalogue.COLLECTION, docs)
    docs = flush(catalogue.COLLECTION, docs)
    for n in range(len(data.items)):
        stored = interactions.StoredInteraction(
            interaction_id=interactions.interaction_id(f"synthetic-{n:010d}"),  # sorts as stored
            user=user_id(int(data.users[n])),
            item=item_id(int(data.items[n])),
            kind="view",
            at=datetime.fromtimestamp(int(data.timestamps[n]), tz=UTC),
            weight=1.0,
        )
        docs.append(stored.to_document())
        if len(docs) == batch:
            docs = flush(interactions.COLLECTION, docs)
    flush(interactions.COLLECTION, docs)
