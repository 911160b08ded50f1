"""The live catalogue's vectors in memory, searchable while they change.

Rows are L2-normalised float32 vectors (cosine = dot product) with id<->row maps; a removal
moves the last row into the freed one (swap-delete), so nothing is rebuilt. Each category
keeps its own row list, so a category-filtered query scores only that category's rows.
Unfiltered queries are exact (one matmul + argpartition) up to ``exact_max_items`` rows;
above it an HNSW graph (usearch) answers them, kept current by the same upserts and removals.

One lock guards every read and write: the watcher updates the index from its task while
queries read it, and a query sees either the state before an update or after it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from usearch.index import Index as HnswIndex

# HNSW knobs chosen by bench/search_scale.py (recall@10 >= 0.95 on clustered 384-d vectors).
HNSW_CONNECTIVITY = 16
HNSW_EXPANSION_ADD = 64
HNSW_EXPANSION_SEARCH = 128  # the graph's search breadth up to EXPANSION_BY_SIZE's sizes
# Larger graphs need a broader search for the same recall (docs/benchmarks.md, Search at
# scale): (items above which, breadth). At 10^6 items breadth 128 reached recall@10 0.877,
# 512 0.946, 1,024 0.952 (p50 3.4 ms against 357 ms exact); up to 3·10^5, 128 reached 0.96+.
EXPANSION_BY_SIZE: tuple[tuple[int, int], ...] = ((300_000, 1024),)
# The graph is asked for more than k so that a few misses near the boundary still leave k.
ANN_OVERSAMPLE = 2


@dataclass(frozen=True)
class IndexedItem:
    item_id: str
    vector: np.ndarray  # [dim] float32, any norm (normalised on the way in)
    title: str = ""
    categories: tuple[str, ...] = ()
    text_hash: str = ""  # of the text the vector was embedded from


@dataclass(frozen=True)
class Match:
    item_id: str
    title: str
    categories: tuple[str, ...]
    score: float


class _RowList:
    """Rows of one category: append and remove in O(1); a cached array for scoring."""

    __slots__ = ("_array", "pos", "rows")

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.pos: dict[int, int] = {}
        self._array: np.ndarray | None = None

    def add(self, row: int) -> None:
        self.pos[row] = len(self.rows)
        self.rows.append(row)
        self._array = None

    def remove(self, row: int) -> None:
        at = self.pos.pop(row)
        last = self.rows.pop()
        if last != row:
            self.rows[at] = last
            self.pos[last] = at
        self._array = None

    def array(self) -> np.ndarray:
        if self._array is None:
            self._array = np.asarray(self.rows, dtype=np.int64)
        return self._array


def normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def top_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` highest scores, best first."""
    if k >= len(scores):
        return np.argsort(-scores, kind="stable")
    best = np.argpartition(-scores, k - 1)[:k]
    return best[np.argsort(-scores[best], kind="stable")]


def expansion_for(items: int) -> int:
    """The graph's search breadth for an index of ``items``."""
    breadth = HNSW_EXPANSION_SEARCH
    for above, wider in EXPANSION_BY_SIZE:
        if items > above:
            breadth = wider
    return breadth


class CatalogueIndex:
    def __init__(self, dim: int, exact_max_items: int, capacity: int = 1024) -> None:
        self.dim = dim
        self.exact_max_items = exact_max_items
        self.search_expansion: int | None = None  # None: expansion_for(size); set to measure
        self._lock = threading.Lock()
        self._vectors = np.zeros((max(capacity, 1), dim), dtype=np.float32)
        self._ids: list[str] = []
        self._row: dict[str, int] = {}
        self._titles: list[str] = []
        self._categories: list[tuple[str, ...]] = []
        self._text_hashes: list[str] = []
        self._by_category: dict[str, _RowList] = {}
        # The graph is keyed by a label per stored vector (rows move on swap-delete).
        self._ann: HnswIndex | None = None
        self._labels: list[int] = []
        self._label_item: dict[int, str] = {}
        self._next_label = 0

    # -- reads ----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._row

    @property
    def uses_ann(self) -> bool:
        return self._ann is not None

    def text_hash(self, item_id: str) -> str | None:
        with self._lock:
            row = self._row.get(item_id)
            return None if row is None else self._text_hashes[row]

    def search(
        self, query: np.ndarray, k: int, categories: Sequence[str] = (), exact: bool = False
    ) -> list[Match]:
        """The ``k`` items nearest to ``query`` (cosine), in ``categories`` when given.
        ``exact`` forces the matmul even when the graph is in use (benchmarks, tests)."""
        q = normalised(np.asarray(query, dtype=np.float32).reshape(-1))
        if q.shape[0] != self.dim:
            raise ValueError(f"query has {q.shape[0]} dimensions, the index {self.dim}")
        with self._lock:
            if not self._ids or k <= 0:
                return []
            if categories:
                rows = self._category_rows(categories)
                if not len(rows):
                    return []
                scores = self._vectors[rows] @ q
                best = top_rows(scores, k)
                return [self._match(int(rows[i]), float(scores[i])) for i in best]
            if self._ann is not None and not exact:
                return self._ann_search(q, k)
            scores = self._vectors[: len(self._ids)] @ q
            return [self._match(int(i), float(scores[i])) for i in top_rows(scores, k)]

    def _category_rows(self, categories: Sequence[str]) -> np.ndarray:
        lists = [self._by_category[c].array() for c in set(categories) if c in self._by_category]
        if not lists:
            return np.zeros(0, dtype=np.int64)
        return lists[0] if len(lists) == 1 else np.unique(np.concatenate(lists))

    def _ann_search(self, q: np.ndarray, k: int) -> list[Match]:
        assert self._ann is not None
        breadth = self.search_expansion or expansion_for(len(self._ids))
        if self._ann.expansion_search != breadth:
            # usearch has a setter; its typing declares the property read-only.
            self._ann.expansion_search = breadth  # type: ignore[misc]
        found = self._ann.search(q, min(k * ANN_OVERSAMPLE, len(self._ids)))
        matches: list[Match] = []
        for label in np.asarray(found.keys).reshape(-1):
            item = self._label_item.get(int(label))
            if item is None:  # removed or replaced since it was added
                continue
            row = self._row[item]
            matches.append(self._match(row, float(self._vectors[row] @ q)))
        matches.sort(key=lambda m: -m.score)
        return matches[:k]

    def _match(self, row: int, score: float) -> Match:
        return Match(self._ids[row], self._titles[row], self._categories[row], score)

    # -- writes ---------------------------------------------------------------------

    def upsert(self, items: Iterable[IndexedItem]) -> int:
        """Add or replace items; returns how many were written. Crossing
        ``exact_max_items`` does not build the graph: ``ensure_graph`` does (off the event
        loop), and until then queries are exact."""
        batch = list(items)
        if not batch:
            return 0
        vectors = normalised(np.stack([i.vector for i in batch]))
        if vectors.shape[1] != self.dim:
            raise ValueError(f"vectors have {vectors.shape[1]} dimensions, the index {self.dim}")
        with self._lock:
            new_labels: list[int] = []
            new_rows: list[int] = []
            for item, vector in zip(batch, vectors, strict=True):
                row = self._row.get(item.item_id)
                if row is None:
                    row = self._append(item.item_id)
                else:
                    self._forget_categories(row)
                    if self._ann is not None:
                        self._drop_label(row)
                self._vectors[row] = vector
                self._titles[row] = item.title
                self._categories[row] = tuple(item.categories)
                self._text_hashes[row] = item.text_hash
                for category in set(item.categories):
                    self._by_category.setdefault(category, _RowList()).add(row)
                label = self._next_label
                self._next_label += 1
                self._labels[row] = label
                new_labels.append(label)
                new_rows.append(row)
            if self._ann is not None:
                self._ann_add(new_labels, new_rows)
        return len(batch)

    def update_metadata(self, item_id: str, title: str, categories: Sequence[str]) -> bool:
        """New title or categories for an item whose text (so vector) did not change."""
        with self._lock:
            row = self._row.get(item_id)
            if row is None:
                return False
            self._forget_categories(row)
            self._titles[row] = title
            self._categories[row] = tuple(categories)
            for category in set(categories):
                self._by_category.setdefault(category, _RowList()).add(row)
            return True

    def remove(self, item_ids: Iterable[str]) -> int:
        """Remove items (unknown ids are ignored); returns how many were removed."""
        removed = 0
        with self._lock:
            for item_id in item_ids:
                row = self._row.pop(item_id, None)
                if row is None:
                    continue
                removed += 1
                self._forget_categories(row)
                if self._ann is not None:
                    self._drop_label(row)
                last = len(self._ids) - 1
                if row != last:
                    self._move(last, row)
                self._ids.pop()
                self._titles.pop()
                self._categories.pop()
                self._text_hashes.pop()
                self._labels.pop()
        return removed

    def _append(self, item_id: str) -> int:
        row = len(self._ids)
        if row == len(self._vectors):
            grown = np.zeros((2 * len(self._vectors), self.dim), dtype=np.float32)
            grown[:row] = self._vectors[:row]
            self._vectors = grown
        self._ids.append(item_id)
        self._row[item_id] = row
        self._titles.append("")
        self._categories.append(())
        self._text_hashes.append("")
        self._labels.append(-1)
        return row

    def _move(self, source: int, target: int) -> None:
        """Put row ``source`` (the last) at ``target``; its category lists follow."""
        item_id = self._ids[source]
        for category in set(self._categories[source]):
            rows = self._by_category[category]
            rows.remove(source)
            rows.add(target)
        self._vectors[target] = self._vectors[source]
        self._ids[target] = item_id
        self._titles[target] = self._titles[source]
        self._categories[target] = self._categories[source]
        self._text_hashes[target] = self._text_hashes[source]
        self._labels[target] = self._labels[source]
        self._row[item_id] = target

    def _forget_categories(self, row: int) -> None:
        for category in set(self._categories[row]):
            rows = self._by_category[category]
            rows.remove(row)
            if not rows.rows:
                del self._by_category[category]

    # -- the graph ------------------------------------------------------------------

    @property
    def needs_graph(self) -> bool:
        return self._ann is None and len(self._ids) > self.exact_max_items

    def ensure_graph(self) -> bool:
        """Build the graph if the index holds more than ``exact_max_items``; True if in use.

        The build (seconds to minutes) runs outside the lock on a copy of the rows, so
        queries and updates go on meanwhile (exact); then, under the lock, the graph catches
        up with what changed during the build. Each stored vector has its own label, so a
        label in the copy but no longer stored is removed and a stored one missing is added.
        """
        with self._lock:
            if not self.needs_graph:
                return self._ann is not None
            count = len(self._ids)
            labels = np.asarray(self._labels[:count], dtype=np.uint64)
            vectors = self._vectors[:count].copy()
        graph = self._new_graph()
        graph.add(labels, vectors)
        with self._lock:
            if self._ann is not None:  # another caller finished first
                return True
            stored = {label: row for row, label in enumerate(self._labels)}
            built = {int(label) for label in labels}
            for label in built - stored.keys():
                graph.remove(label)
            missing = [label for label in stored if label not in built]
            if missing:
                graph.add(
                    np.asarray(missing, dtype=np.uint64),
                    self._vectors[[stored[label] for label in missing]],
                )
            self._ann = graph
            self._label_item = {label: self._ids[row] for label, row in stored.items()}
            return True

    def _new_graph(self) -> HnswIndex:
        return HnswIndex(
            ndim=self.dim,
            metric="ip",
            dtype="f32",
            connectivity=HNSW_CONNECTIVITY,
            expansion_add=HNSW_EXPANSION_ADD,
            expansion_search=HNSW_EXPANSION_SEARCH,
        )

    def _ann_add(self, labels: list[int], rows: list[int]) -> None:
        assert self._ann is not None
        self._ann.add(np.asarray(labels, dtype=np.uint64), self._vectors[rows])
        for label, row in zip(labels, rows, strict=True):
            self._label_item[label] = self._ids[row]

    def _drop_label(self, row: int) -> None:
        assert self._ann is not None
        label = self._labels[row]
        if label >= 0 and self._label_item.pop(label, None) is not None:
            self._ann.remove(label)

    def graph_size(self) -> int:
        """Vectors the graph holds (0 without a graph)."""
        with self._lock:
            return 0 if self._ann is None else len(self._ann)

    def stats(self) -> dict[str, int | bool]:
        with self._lock:
            return {
                "items": len(self._ids),
                "categories": len(self._by_category),
                "ann": self._ann is not None,
            }


def build(
    dim: int, items: Sequence[IndexedItem], exact_max_items: int, chunk: int = 50_000
) -> CatalogueIndex:
    """A new index holding ``items`` (the graph, if needed, is built once at the end)."""
    index = CatalogueIndex(dim, exact_max_items, capacity=len(items))
    for start in range(0, len(items), chunk):
        index.upsert(items[start : start + chunk])
    index.ensure_graph()
    return index
