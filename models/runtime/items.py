"""Item id <-> row index mapping for the recommender and item-search graphs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

PAD = -1  # padding value for ``recent_items``; the graphs ignore it


class ItemIndex:
    """Catalogue order used by a model version (``items.json`` beside ``model.onnx``).

    ``items.json`` is ``{"item_ids": [...], "titles": [...], "categories": [[...], ...],
    "cold": [...]}`` (all but ``item_ids`` optional); row ``i`` of every item-sized array in
    the graph belongs to ``item_ids[i]``. ``cold`` lists the items that had no interactions
    when the model was trained: the model reaches them through content similarity only, and
    a recommendation of one says so.
    """

    def __init__(
        self,
        item_ids: Sequence[str],
        titles: Sequence[str] | None = None,
        categories: Sequence[Sequence[str]] | None = None,
        cold: Iterable[str] = (),
    ) -> None:
        self.item_ids = [str(i) for i in item_ids]
        self.titles = list(titles) if titles is not None else None
        self.categories = [list(c) for c in categories] if categories is not None else None
        self.cold = frozenset(str(i) for i in cold)
        self._row = {item: row for row, item in enumerate(self.item_ids)}
        if len(self._row) != len(self.item_ids):
            raise ValueError("duplicate item ids in catalogue")

    @classmethod
    def load(cls, path: str | Path) -> ItemIndex:
        data = json.loads(Path(path).read_text())
        return cls(
            data["item_ids"], data.get("titles"), data.get("categories"), data.get("cold", ())
        )

    def save(self, path: str | Path) -> None:
        data: dict[str, object] = {"item_ids": self.item_ids}
        if self.titles is not None:
            data["titles"] = self.titles
        if self.categories is not None:
            data["categories"] = self.categories
        if self.cold:
            data["cold"] = sorted(self.cold)
        Path(path).write_text(json.dumps(data))

    def __len__(self) -> int:
        return len(self.item_ids)

    def row(self, item_id: str) -> int | None:
        """The row of one id, or None when the catalogue does not have it."""
        return self._row.get(item_id)

    def rows(self, item_ids: Iterable[str]) -> list[int]:
        """Rows of the known ids, in order; unknown ids are dropped."""
        return [self._row[i] for i in map(str, item_ids) if i in self._row]

    def recent_items(self, histories: Sequence[Sequence[str]], length: int) -> np.ndarray:
        """``recent_items`` input [B, length]: each user's newest ``length`` rows, newest
        last, left-padded with ``PAD``."""
        out = np.full((len(histories), length), PAD, dtype=np.int64)
        for b, history in enumerate(histories):
            rows = self.rows(history)[-length:]
            if rows:
                out[b, length - len(rows) :] = rows
        return out

    def exclude_mask(self, exclude: Sequence[Iterable[str]]) -> np.ndarray:
        """``exclude_mask`` input [B, N]: True where the item must not be returned."""
        mask = np.zeros((len(exclude), len(self)), dtype=bool)
        for b, items in enumerate(exclude):
            mask[b, self.rows(items)] = True
        return mask

    def ids(self, rows: np.ndarray) -> list[list[str]]:
        """Map a ``top_items`` output [B, k] back to item ids."""
        return [[self.item_ids[int(r)] for r in row] for row in np.asarray(rows)]
