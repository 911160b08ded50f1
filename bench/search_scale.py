"""The live search index at 10^4..10^6 items: exact scoring against the HNSW graph.

Synthetic clustered 384-d vectors (the text encoder's size): 1,000 items a cluster, unit
norm, queries drawn like the items. For each size: the graph's build time and recall@10
against exact scoring, p50/p99 of one query each way, and the index's memory (RSS growth).
Exact latency is also measured at sizes between. The default of
LUMEN_INFERENCE_SEARCH_EXACT_MAX_ITEMS is where exact scoring would become 10x slower than
the graph (``switch_point``, the median over the measured sizes; exact and graph latency of
each size measured in the same run).

    python -m bench.search_scale                 # 10^4, 10^5, 10^6 (~20 min on 2 cores)
    python -m bench.search_scale --sizes 10000   # one size
    python -m bench.search_scale --compare 100000  # usearch vs hnswlib vs faiss-cpu, if installed
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import machine, percentile
from services.inference.catalogue_index import (
    HNSW_CONNECTIVITY,
    HNSW_EXPANSION_ADD,
    HNSW_EXPANSION_SEARCH,
    CatalogueIndex,
    IndexedItem,
    build,
    expansion_for,
    normalised,
)

DIM = 384
SEARCH_BREADTHS = (128, 256, 512, 1024)  # expansion_search values measured on each graph
CLUSTER_ITEMS = 1000
NOISE = 0.6  # within-cluster spread: neighbours are close but not duplicates
QUERIES = 200
K = 10
# Exact scoring is kept until the graph would answer this many times faster: below it the
# exact ranking is a small share of a query (the encoder run dominates), needs no graph
# build or second copy of the vectors, and is exactly right.
GRAPH_SPEEDUP = 10.0
EXACT_ONLY_SIZES = (20_000, 50_000, 200_000)
OUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks" / "search_scale.json"


def clustered(n: int, rng: np.random.Generator, centers: np.ndarray) -> np.ndarray:
    picks = rng.integers(0, len(centers), n)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):  # bounded temporaries at 10^6
        end = min(n, start + 100_000)
        noise = rng.standard_normal((end - start, DIM), dtype=np.float32)
        out[start:end] = normalised(centers[picks[start:end]] + NOISE * noise)
    return out


def dataset(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((max(n // CLUSTER_ITEMS, 10), DIM), dtype=np.float32)
    return clustered(n, rng, centers), clustered(QUERIES, rng, centers)


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * 4096 / 2**20


def timed(queries: np.ndarray, run: Callable[[np.ndarray], list[Any]]) -> tuple[list, list]:
    found, seconds = [], []
    for q in queries:
        began = time.perf_counter()
        found.append(run(q))
        seconds.append(time.perf_counter() - began)
    return found, sorted(seconds)


def latency(seconds: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(seconds, 0.50) * 1e3, 3),
        "p99_ms": round(percentile(seconds, 0.99) * 1e3, 3),
    }


def recall(found: list[list[str]], truth: list[list[str]]) -> float:
    return float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth, strict=True)]))


def measure_exact(
    items: list[IndexedItem], queries: np.ndarray
) -> tuple[list[list[str]], dict[str, Any]]:
    gc.collect()
    before = rss_mib()
    began = time.perf_counter()
    index = build(DIM, items, exact_max_items=len(items))  # no graph
    build_s = time.perf_counter() - began
    memory = rss_mib() - before
    truth, seconds = timed(queries, lambda q: [m.item_id for m in index.search(q, K, exact=True)])
    _, filtered = timed(
        queries, lambda q: [m.item_id for m in index.search(q, K, categories=("c7",))]
    )
    return truth, {
        "exact": {**latency(seconds), "build_s": round(build_s, 2), "memory_mib": round(memory, 1)},
        "exact_one_category": {**latency(filtered), "category_items": len(items) // 50},
    }


def measure(n: int) -> dict[str, Any]:
    vectors, queries = dataset(n)
    items = [IndexedItem(f"i{r}", vectors[r], categories=(f"c{r % 50}",)) for r in range(n)]
    truth, exact = measure_exact(items, queries)
    gc.collect()
    before = rss_mib()
    began = time.perf_counter()
    ann_index = build(DIM, items, exact_max_items=0)
    ann_build = time.perf_counter() - began
    ann_mib = rss_mib() - before
    found, ann_seconds = timed(queries, lambda q: [m.item_id for m in ann_index.search(q, K)])
    # The same graph searched more broadly: recall bought with latency, per breadth.
    by_breadth = []
    for breadth in SEARCH_BREADTHS:
        ann_index.search_expansion = breadth
        wide, wide_seconds = timed(queries, lambda q: [m.item_id for m in ann_index.search(q, K)])
        by_breadth.append(
            {
                "expansion_search": breadth,
                **latency(wide_seconds),
                "recall_at_10": round(recall(wide, truth), 4),
            }
        )
    ann_index.search_expansion = None
    # Removals and re-adds in place: the graph keeps answering without a rebuild.
    churn = [f"i{r}" for r in range(0, n, 100)]
    began = time.perf_counter()
    ann_index.remove(churn)
    ann_index.upsert([items[int(i[1:])] for i in churn])
    churn_seconds = time.perf_counter() - began
    after_churn, _ = timed(queries, lambda q: [m.item_id for m in ann_index.search(q, K)])
    row = {
        "items": n,
        **exact,
        "ann": {
            **latency(ann_seconds),
            "recall_at_10": round(recall(found, truth), 4),
            "build_s": round(ann_build, 2),
            "memory_mib": round(ann_mib, 1),
            "churn_1pct_s": round(churn_seconds, 2),
            "recall_at_10_after_churn": round(recall(after_churn, truth), 4),
            "expansion_search": expansion_for(n),
            "by_expansion_search": by_breadth,
        },
    }
    print(json.dumps(row), flush=True)
    return row


def exact_only(n: int) -> dict[str, Any]:
    vectors, queries = dataset(n)
    index = CatalogueIndex(DIM, exact_max_items=n, capacity=n)
    index.upsert([IndexedItem(f"i{r}", vectors[r]) for r in range(n)])
    _, seconds = timed(queries, lambda q: [m.item_id for m in index.search(q, K)])
    row = {"items": n, "exact": latency(seconds)}
    print(json.dumps(row), flush=True)
    return row


def compare(n: int) -> list[dict[str, Any]]:
    """The same graph parameters in each library that is installed (hnswlib and faiss-cpu
    are not dependencies: install them in a scratch environment to repeat the choice)."""
    vectors, queries = dataset(n)
    truth = [list(np.argpartition(-(vectors @ q), K)[:K]) for q in queries]
    builders: dict[str, Callable[[], Callable[[np.ndarray], list[int]]]] = {}

    def usearch_() -> Callable[[np.ndarray], list[int]]:
        from usearch.index import Index

        index = Index(
            ndim=DIM,
            metric="ip",
            dtype="f32",
            connectivity=HNSW_CONNECTIVITY,
            expansion_add=HNSW_EXPANSION_ADD,
            expansion_search=HNSW_EXPANSION_SEARCH,
        )
        index.add(np.arange(n), vectors)
        return lambda q: [int(x) for x in index.search(q, K).keys]

    def hnswlib_() -> Callable[[np.ndarray], list[int]]:
        import hnswlib

        index = hnswlib.Index(space="ip", dim=DIM)
        index.init_index(n, M=HNSW_CONNECTIVITY, ef_construction=HNSW_EXPANSION_ADD)
        index.add_items(vectors, np.arange(n))
        index.set_ef(HNSW_EXPANSION_SEARCH)
        return lambda q: [int(x) for x in index.knn_query(q, k=K)[0][0]]

    def faiss_() -> Callable[[np.ndarray], list[int]]:
        import faiss

        index = faiss.IndexHNSWFlat(DIM, HNSW_CONNECTIVITY, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EXPANSION_ADD
        index.add(vectors)
        index.hnsw.efSearch = HNSW_EXPANSION_SEARCH
        return lambda q: [int(x) for x in index.search(q[None, :], K)[1][0]]

    builders.update({"usearch": usearch_, "hnswlib": hnswlib_, "faiss-cpu": faiss_})
    rows = []
    for name, make in builders.items():
        try:
            began = time.perf_counter()
            run = make()
        except ImportError:
            print(f"{name}: not installed, skipped", flush=True)
            continue
        build_s = time.perf_counter() - began
        found, seconds = timed(queries, run)
        hits = [len(set(f) & {int(t) for t in tr}) / K for f, tr in zip(found, truth, strict=True)]
        row = {
            "library": name,
            "items": n,
            "build_s": round(build_s, 2),
            "recall_at_10": round(float(np.mean(hits)), 4),
            **latency(seconds),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--compare", type=int, metavar="N", help="compare libraries at N items")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--summarise", action="store_true", help="recompute the switch point of a saved run"
    )
    parser.add_argument(
        "--add", action="store_true", help="add the sizes measured to the rows already in --out"
    )
    parser.add_argument(
        "--exact-only",
        action="store_true",
        help="measure exact scoring only (no graph build) and add the rows to --out",
    )
    args = parser.parse_args()
    if args.summarise:
        saved = json.loads(args.out.read_text())
        measured = {k: saved[k] for k in ("finished_at", "machine")}
        switch = save(args.out, saved["sizes"], saved["exact_only"], measured)
        print(f"exact until {switch} items")
        return
    if args.compare:
        libraries = compare(args.compare)
        path = args.out.with_name("search_ann_libraries.json")
        path.write_text(json.dumps({"machine": machine(), "libraries": libraries}, indent=2) + "\n")
        print(f"saved {path}")
        return
    sizes = sorted(args.sizes)
    if args.exact_only:
        saved = json.loads(args.out.read_text())
        for n in sizes:
            vectors, queries = dataset(n)
            items = [IndexedItem(f"i{r}", vectors[r], categories=(f"c{r % 50}",)) for r in range(n)]
            del vectors
            _, exact = measure_exact(items, queries)
            row = {"items": n, **exact}
            print(json.dumps(row), flush=True)
            saved["exact_only"] = [r for r in saved["exact_only"] if r["items"] != n] + [row]
            measured = {k: saved[k] for k in ("finished_at", "machine")}
            save(args.out, saved["sizes"], saved["exact_only"], measured)
        return
    rows: list[dict[str, Any]] = []
    between: list[dict[str, Any]] = []
    if args.add:
        saved = json.loads(args.out.read_text())
        rows = [r for r in saved["sizes"] if r["items"] not in sizes]
        between = saved["exact_only"]
    for n in sizes:  # saved after each size: the largest takes longest
        rows.append(measure(n))
        between += [
            exact_only(m)
            for m in EXACT_ONLY_SIZES
            if rows[-1]["items"] > m >= sizes[0] and m not in [b["items"] for b in between]
        ]
        switch = save(args.out, rows, between)
    print(f"exact until {switch} items ({GRAPH_SPEEDUP:g}x the graph's p50); saved {args.out}")


def switch_point(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Per measured size, the catalogue size at which exact scoring becomes GRAPH_SPEEDUP
    times slower than the graph: exact costs (p50 / items) per item, the graph's p50 is
    taken as flat. Both come from the same run, so the machine's load cancels out."""
    points = {}
    for row in rows:
        per_item = row["exact"]["p50_ms"] / row["items"]
        if per_item > 0 and "ann" in row:
            points[str(row["items"])] = int(GRAPH_SPEEDUP * row["ann"]["p50_ms"] / per_item)
    return points


def save(
    out: Path,
    rows: list[dict[str, Any]],
    between: list[dict[str, Any]],
    measured: dict[str, Any] | None = None,
) -> int:
    """Write the run; ``measured``: when and where the rows were measured (a re-summary)."""
    rows = sorted(rows, key=lambda r: int(r["items"]))
    points = switch_point(rows)
    # The median over the measured sizes: one size's graph p50 moves with the machine's load.
    switch = int(np.median(list(points.values()))) if points else 0
    document = {
        "benchmark": "search_scale",
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        **(measured or {}),
        "setup": {
            "dim": DIM,
            "items_per_cluster": CLUSTER_ITEMS,
            "noise": NOISE,
            "queries": QUERIES,
            "k": K,
            "hnsw": {
                "library": "usearch",
                "connectivity": HNSW_CONNECTIVITY,
                "expansion_add": HNSW_EXPANSION_ADD,
                "expansion_search": HNSW_EXPANSION_SEARCH,
            },
        },
        "sizes": rows,
        "exact_only": between,
        "graph_speedup_at_switch": GRAPH_SPEEDUP,
        "switch_items_by_measured_size": points,
        "exact_max_items_from_this_run": switch,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")
    return switch


if __name__ == "__main__":
    main()
