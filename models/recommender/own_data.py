"""The product's own training data: its catalogue and interaction store, and their split.

``read_store`` reads MongoDB (``items`` and ``interactions``, see shared/catalogue.py and
shared/interactions.py) into the product's item axis and per-user histories; ``split_histories``
is the time-ordered leave-last-out split, pure and testable without a database.

The item axis is the product's own string ids: live catalogue items plus items seen in
interactions, minus removed ones, sorted. Items of the catalogue that no interaction in the
window names are *cold*: the model can reach them through content similarity only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from pymongo.database import Database

from shared import catalogue, interactions
from shared.catalogue import CatalogueItem, item_text

MIN_HISTORY_TO_EVALUATE = 3  # train, tuning and test items


@dataclass(frozen=True)
class OwnData:
    """Catalogue and histories read from the store, on one item axis."""

    item_ids: list[str]  # row order of every item-sized array
    titles: list[str]
    categories: list[list[str]]
    cold: frozenset[str]  # live catalogue items without interactions in the window
    users: list[str]
    histories: list[np.ndarray]  # per user, item rows, oldest first
    first: datetime | None  # the window's first and last interaction times
    last: datetime | None
    database: str = ""
    descriptions: list[str] = field(default_factory=list)  # per row, "" when none

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def item_texts(self) -> list[str]:
        """Per row, what the text encoder embeds for the item (``shared.catalogue.item_text``)."""
        descriptions = self.descriptions or [""] * self.n_items
        return [
            item_text(title, categories, description)
            for title, categories, description in zip(
                self.titles, self.categories, descriptions, strict=True
            )
        ]

    @property
    def n_interactions(self) -> int:
        return int(sum(len(h) for h in self.histories))


@dataclass(frozen=True)
class Split:
    """Per user: all but the last two interactions train; the second to last is the tuning
    (validation) item, the last the held-out test item. Users with fewer than three
    interactions only train (``eval_users`` indexes the others)."""

    train: list[np.ndarray]  # per user (every user)
    eval_users: np.ndarray  # user indices with a tuning and a test item
    tuning: np.ndarray  # item row per eval user
    test: np.ndarray  # item row per eval user
    n_items: int
    users: list[str] = field(default_factory=list)
    eval_candidates: int = 0  # users with 3 or more interactions, sampled or not

    def fit_histories(self, stage: str) -> list[np.ndarray]:
        """What a model may be fitted on before predicting ``stage`` ("tuning" or "test")."""
        if stage == "tuning":
            return self.train
        out = list(self.train)
        for u, item in zip(self.eval_users.tolist(), self.tuning.tolist(), strict=True):
            out[u] = np.append(out[u], item)
        return out

    def histories(self, stage: str) -> list[np.ndarray]:
        """The eval users' histories when predicting ``stage``, in ``eval_users`` order."""
        fitted = self.fit_histories(stage)
        return [fitted[u] for u in self.eval_users.tolist()]

    def targets(self, stage: str) -> np.ndarray:
        return self.tuning if stage == "tuning" else self.test


def split_histories(
    histories: Sequence[np.ndarray],
    n_items: int,
    users: Sequence[str] = (),
    max_eval_users: int | None = None,
    seed: int = 0,
) -> Split:
    """The time-ordered split of per-user histories (each oldest first). With more than
    ``max_eval_users`` eligible users, a seeded sample of them is held out and the others
    train on their whole history."""
    eligible = [u for u, h in enumerate(histories) if len(h) >= MIN_HISTORY_TO_EVALUATE]
    held_out = set(eligible)
    if max_eval_users is not None and len(eligible) > max_eval_users:
        rng = np.random.default_rng(seed)
        held_out = set(rng.choice(eligible, size=max_eval_users, replace=False).tolist())
    train: list[np.ndarray] = []
    eval_users: list[int] = []
    tuning: list[int] = []
    test: list[int] = []
    for u, history in enumerate(histories):
        h = np.asarray(history, dtype=np.int64)
        if u not in held_out:
            train.append(h)
            continue
        train.append(h[:-2])
        eval_users.append(u)
        tuning.append(int(h[-2]))
        test.append(int(h[-1]))
    return Split(
        train,
        np.array(eval_users, dtype=np.int64),
        np.array(tuning, dtype=np.int64),
        np.array(test, dtype=np.int64),
        n_items,
        list(users),
        len(eligible),
    )


def build(
    items: Iterable[CatalogueItem],
    rows: Iterable[Mapping[str, Any]],
    database: str = "",
) -> OwnData:
    """The item axis and histories from catalogue items and interaction documents already
    in time order (``t``, then ``_id``). Interactions with removed items are dropped."""
    live: dict[str, CatalogueItem] = {}
    removed: set[str] = set()
    for item in items:
        if item.removed:
            removed.add(item.item_id)
        else:
            live[item.item_id] = item
    per_user: dict[str, list[str]] = {}
    seen: set[str] = set()
    first: datetime | None = None
    last: datetime | None = None
    for doc in rows:
        item_id = str(doc[interactions.ITEM])
        if item_id in removed:
            continue
        per_user.setdefault(str(doc[interactions.USER]), []).append(item_id)
        seen.add(item_id)
        at = doc[interactions.AT]
        first = at if first is None else first
        last = at
    item_ids = sorted(set(live) | seen)
    row_of = {item: r for r, item in enumerate(item_ids)}
    users = sorted(per_user)
    return OwnData(
        item_ids=item_ids,
        titles=[live[i].title if i in live else "" for i in item_ids],
        categories=[list(live[i].categories) if i in live else [] for i in item_ids],
        cold=frozenset(set(live) - seen),
        users=users,
        histories=[np.array([row_of[i] for i in per_user[u]], dtype=np.int64) for u in users],
        first=first,
        last=last,
        database=database,
        descriptions=[live[i].description if i in live else "" for i in item_ids],
    )


def window_start(since_days: float | None, now: datetime | None = None) -> datetime | None:
    """The first interaction time a ``since_days`` window keeps (None: everything)."""
    if since_days is None:
        return None
    if since_days <= 0:
        raise ValueError(f"since_days must be positive ({since_days} given)")
    return (now or datetime.now(UTC)) - timedelta(days=since_days)


def read_store(
    db: Database, since_days: float | None = None, now: datetime | None = None
) -> OwnData:
    """Read the catalogue and the interactions (the last ``since_days`` only, when given)."""
    query: dict[str, Any] = {}
    since = window_start(since_days, now)
    if since is not None:
        query[interactions.AT] = {"$gte": since}
    items = (
        CatalogueItem.from_document(d)
        for d in db[catalogue.COLLECTION].find(
            {},
            {
                catalogue.TITLE: 1,
                catalogue.CATEGORIES: 1,
                catalogue.DESCRIPTION: 1,
                catalogue.REMOVED: 1,
            },
        )
    )
    rows = db[interactions.COLLECTION].find(
        query,
        {interactions.USER: 1, interactions.ITEM: 1, interactions.AT: 1},
        sort=[(interactions.AT, 1), (interactions.ID, 1)],
        batch_size=10_000,
        allow_disk_use=True,  # a large store's sort outgrows mongod's in-memory limit
    )
    return build(items, rows, db.name)
