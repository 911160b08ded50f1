"""MovieLens 100k (from the recbole wheel, cache only) and the leave-last-out split."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.sources import movielens_100k


@dataclass
class Catalogue:
    item_ids: list[str]  # row order of every item-sized array
    titles: list[str]
    genres: list[list[str]]
    years: list[str]


@dataclass
class Sequences:
    """Per-user item rows in time order, split leave-last-out."""

    users: list[str]
    train: list[np.ndarray]  # everything but the last two
    valid: np.ndarray  # second to last item, per user
    test: np.ndarray  # last item, per user
    train_times: list[np.ndarray]
    n_items: int

    def history(self, stage: str) -> list[np.ndarray]:
        """Items a model may see when predicting ``stage`` ("valid" or "test")."""
        if stage == "valid":
            return self.train
        return [np.append(t, v) for t, v in zip(self.train, self.valid, strict=True)]

    def targets(self, stage: str) -> np.ndarray:
        return self.valid if stage == "valid" else self.test


def _read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = [h.split(":")[0] for h in next(reader)]
        return [dict(zip(header, row, strict=False)) for row in reader]


def load_catalogue(folder: Path | None = None) -> Catalogue:
    folder = folder or movielens_100k()
    rows = sorted(_read_tsv(folder / "ml-100k.item"), key=lambda r: int(r["item_id"]))
    return Catalogue(
        item_ids=[r["item_id"] for r in rows],
        titles=[r.get("movie_title", "") for r in rows],
        genres=[r.get("class", "").split() for r in rows],
        years=[r.get("release_year", "") for r in rows],
    )


def load_sequences(
    catalogue: Catalogue, folder: Path | None = None, max_users: int | None = None
) -> Sequences:
    """Leave-last-out by timestamp: per user, the last interaction is the test target,
    the one before it the validation target. Ties keep the file order (stable sort),
    as RecBole does. Every rating counts as an implicit interaction."""
    folder = folder or movielens_100k()
    row_of = {item: i for i, item in enumerate(catalogue.item_ids)}
    per_user: dict[str, list[tuple[float, int, int]]] = {}
    for n, r in enumerate(_read_tsv(folder / "ml-100k.inter")):
        per_user.setdefault(r["user_id"], []).append(
            (float(r["timestamp"]), n, row_of[r["item_id"]])
        )
    users = sorted(per_user, key=int)[:max_users]
    train, valid, test, times = [], [], [], []
    for user in users:
        events = sorted(per_user[user])
        items = np.array([e[2] for e in events], dtype=np.int64)
        train.append(items[:-2])
        times.append(np.array([e[0] for e in events[:-2]]))
        valid.append(items[-2])
        test.append(items[-1])
    return Sequences(users, train, np.array(valid), np.array(test), times, len(catalogue.item_ids))
