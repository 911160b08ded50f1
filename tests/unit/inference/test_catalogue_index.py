"""The live search index: upserts, updates, swap-delete removals, category rows, and the
HNSW graph agreeing with exact scoring."""

from __future__ import annotations

import numpy as np
import pytest
from usearch.index import Index as HnswIndex

from services.inference.catalogue_index import (
    CatalogueIndex,
    IndexedItem,
    build,
    expansion_for,
    normalised,
)
from services.inference.catalogue_watcher import LiveCatalogue

DIM = 16


def vector(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


def item(item_id: str, seed: int, *categories: str, title: str = "") -> IndexedItem:
    return IndexedItem(item_id, vector(seed), title or item_id.upper(), categories, f"h{seed}")


def ids(matches: list) -> list[str]:
    return [m.item_id for m in matches]


def test_an_upserted_item_is_its_own_nearest_neighbour_with_its_title() -> None:
    index = CatalogueIndex(DIM, exact_max_items=1000, capacity=2)  # grows past 2
    index.upsert([item(f"i{n}", n, "c") for n in range(10)])
    [best] = index.search(vector(7), k=1)
    assert best.item_id == "i7" and best.title == "I7" and best.categories == ("c",)
    assert best.score == pytest.approx(1.0, abs=1e-5)
    assert len(index) == 10


def test_scores_are_cosine_and_results_best_first() -> None:
    index = CatalogueIndex(DIM, exact_max_items=1000)
    index.upsert([item(f"i{n}", n) for n in range(20)])
    query = vector(99)
    found = index.search(query, k=5)
    every = normalised(np.stack([vector(n) for n in range(20)])) @ normalised(query)
    assert ids(found) == [f"i{n}" for n in np.argsort(-every)[:5]]
    assert [m.score for m in found] == pytest.approx(sorted(every, reverse=True)[:5], abs=1e-5)


def test_an_update_replaces_the_vector_and_metadata_in_place() -> None:
    index = CatalogueIndex(DIM, exact_max_items=1000)
    index.upsert([item("a", 1, "old"), item("b", 2, "old")])
    index.upsert([item("a", 3, "new", title="Renamed")])
    assert len(index) == 2
    [best] = index.search(vector(3), k=1)
    assert best.item_id == "a" and best.title == "Renamed"
    assert ids(index.search(vector(3), k=5, categories=["old"])) == ["b"]
    assert ids(index.search(vector(3), k=5, categories=["new"])) == ["a"]
    assert index.text_hash("a") == "h3"


def test_removal_swaps_the_last_row_in_and_never_returns_the_item() -> None:
    index = CatalogueIndex(DIM, exact_max_items=1000)
    index.upsert([item(f"i{n}", n, "even" if n % 2 == 0 else "odd") for n in range(6)])
    assert index.remove(["i1", "i1", "unknown"]) == 1
    assert "i1" not in index and len(index) == 5
    # i5 (the last row) moved into i1's row: its vector, title and categories follow it.
    [best] = index.search(vector(5), k=1)
    assert best.item_id == "i5" and best.title == "I5" and best.categories == ("odd",)
    assert ids(index.search(vector(5), k=10, categories=["odd"])) == ["i5", "i3"]
    assert "i1" not in ids(index.search(vector(1), k=10))
    index.remove([f"i{n}" for n in range(6)])
    assert len(index) == 0 and index.search(vector(1), k=3) == []
    assert index.stats()["categories"] == 0


def test_a_category_filter_scores_only_that_categorys_rows() -> None:
    index = CatalogueIndex(DIM, exact_max_items=1000)
    index.upsert(
        [item(f"s{n}", n, "shoes") for n in range(5)]
        + [item(f"h{n}", 100 + n, "hats", "sale") for n in range(5)]
    )
    assert set(ids(index.search(vector(0), k=10, categories=["hats"]))) == {
        f"h{n}" for n in range(5)
    }
    both = ids(index.search(vector(0), k=20, categories=["shoes", "sale"]))
    assert len(both) == 10 == len(set(both))  # an item in two wanted categories comes once
    assert index.search(vector(0), k=5, categories=["none"]) == []


def test_a_query_of_the_wrong_size_is_refused() -> None:
    index = CatalogueIndex(DIM, exact_max_items=10)
    index.upsert([item("a", 1)])
    with pytest.raises(ValueError, match="dimensions"):
        index.search(np.ones(DIM + 1, dtype=np.float32), k=1)


def clustered(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((20, dim)).astype(np.float32)
    noise = rng.standard_normal((n, dim)).astype(np.float32)
    return normalised(centers[rng.integers(0, 20, n)] + 0.6 * noise)


def test_the_graph_agrees_with_exact_scoring_and_follows_updates_and_removals() -> None:
    dim, n = 32, 3000
    vectors = clustered(n, dim)
    items = [IndexedItem(f"i{r}", vectors[r], f"t{r}", (f"c{r % 7}",)) for r in range(n)]
    index = build(dim, items, exact_max_items=1000)
    assert index.uses_ann
    queries = clustered(50, dim, seed=1)
    recall = np.mean(
        [
            len(set(ids(index.search(q, k=10))) & set(ids(index.search(q, k=10, exact=True)))) / 10
            for q in queries
        ]
    )
    assert recall >= 0.95
    # Removals and moves are seen by the graph too.
    gone = [f"i{r}" for r in range(0, n, 3)]
    index.remove(gone)
    target = vectors[1] * -1.0  # far from everything: only a new vector matches it
    index.upsert([IndexedItem("i1", target, "moved", ("c1",))])
    for q in queries[:10]:
        assert not set(ids(index.search(q, k=10))) & set(gone)
    [best] = index.search(target, k=1)
    assert best.item_id == "i1" and best.title == "moved"


def test_crossing_the_exact_limit_builds_the_graph_when_asked() -> None:
    index = CatalogueIndex(DIM, exact_max_items=5)
    index.upsert([item(f"i{n}", n) for n in range(5)])
    assert not index.needs_graph and not index.ensure_graph()
    index.upsert([item("i5", 5)])
    assert index.needs_graph and not index.uses_ann  # exact until the graph is built
    assert index.ensure_graph() and index.uses_ann and not index.needs_graph
    assert index.search(vector(5), k=1)[0].item_id == "i5"


class ChangedDuringBuild(CatalogueIndex):
    """Changes itself between the copy of the rows and the catch-up, like an update the
    watcher applies while the graph is built in a thread."""

    def _new_graph(self) -> HnswIndex:
        self.remove(["i3"])
        self.upsert([item("i4", 44), item("new", 50)])
        return super()._new_graph()


def test_the_graph_catches_up_with_changes_made_while_it_was_built() -> None:
    index = ChangedDuringBuild(DIM, exact_max_items=5)
    index.upsert([item(f"i{n}", n) for n in range(10)])
    assert index.ensure_graph()
    assert "i3" not in ids(index.search(vector(3), k=10))
    assert index.search(vector(44), k=1)[0].item_id == "i4"
    assert index.search(vector(50), k=1)[0].item_id == "new"
    assert index.graph_size() == len(index) == 10  # i3 and i4's old vector left the graph


def test_search_reads_the_live_index_only_when_it_holds_items_of_the_querys_encoder() -> None:
    live = LiveCatalogue()
    assert live.searchable("enc-1") is None  # not loaded yet: the search model answers
    live.index, live.encoder = CatalogueIndex(DIM, exact_max_items=10), "enc-1"
    assert live.searchable("enc-1") is None  # an empty catalogue
    live.index.upsert([item("a", 1)])
    assert live.searchable("enc-1") is live.index
    assert live.searchable("enc-2") is None  # a new encoder serves queries: not comparable


def test_a_larger_index_searches_its_graph_more_broadly(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.inference import catalogue_index

    assert expansion_for(1_000) == catalogue_index.HNSW_EXPANSION_SEARCH
    assert expansion_for(1_000_000) > expansion_for(300_000)
    monkeypatch.setattr(catalogue_index, "EXPANSION_BY_SIZE", ((500, 256), (1500, 512)))
    dim, n = 16, 1000
    vectors = clustered(n, dim)
    index = build(dim, [IndexedItem(f"i{r}", vectors[r]) for r in range(n)], exact_max_items=10)
    assert index.uses_ann and index._ann is not None
    index.search(vectors[0], k=5)
    assert index._ann.expansion_search == 256  # 1,000 items: the breadth above 500
    index.search_expansion = 64  # a caller measuring breadths
    index.search(vectors[0], k=5)
    assert index._ann.expansion_search == 64
