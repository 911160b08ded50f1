"""Publish ``item-search``: the MovieLens catalogue embedded with ``text-encoder``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx

from models.cards import render_card
from models.encoder.embed import run_text_graph
from models.evaluation import measure_latency, session, table
from models.publish import current_if_unchanged, fingerprint, publish, serving
from models.recommender.data import load_catalogue
from models.recommender.register import MOVIELENS
from models.runtime.items import ItemIndex
from models.runtime.text import TextTokenizer
from models.search.graph import build_search_graph
from models.search.index import GENRE_QUERIES, catalogue_texts, genre_precision
from shared.model_registry import ModelConfig, TensorSpec, get_version

CODE_VERSION = 1
NAME = "item-search"
ENCODER = "text-encoder"


def register_search(small: bool = False, force: bool = False) -> dict[str, Any]:
    encoder = get_version(ENCODER, verify=True)  # the index must match the served encoder
    fp = fingerprint({"code": CODE_VERSION, "encoder": encoder.config.sha256, "small": small})
    kept = current_if_unchanged(NAME, fp)
    if kept is not None and not force:
        return {"skipped": True, **kept.metrics}
    catalogue = load_catalogue()
    tok = TextTokenizer(encoder.file("tokenizer.json"))
    enc_sess = session(encoder.model_path)
    texts = catalogue_texts(catalogue)
    (embeddings,) = run_text_graph(enc_sess, tok, texts, desc="embedding catalogue")
    graph = build_search_graph()
    sess = session(graph.SerializeToString())
    queries = enc_sess.run(["embedding"], tok.encode([q for q, _ in GENRE_QUERIES]))[0]
    k = np.array([10], dtype=np.int64)
    top, scores = sess.run(None, {"query_embedding": queries, "catalogue": embeddings, "k": k})
    # Parity: the graph's top-k equals numpy's brute-force cosine top-k.
    ref = np.sort(queries @ embeddings.T, axis=1)[:, ::-1][:, :10]
    max_diff = float(abs(scores - ref).max())
    rows = genre_precision(top, catalogue)
    mean_p = float(np.mean([r["precision@10"] for r in rows]))
    mean_base = float(np.mean([r["random baseline"] for r in rows]))
    latency = measure_latency(
        sess,
        lambda b: {
            "query_embedding": np.tile(queries[:1], (b, 1)),
            "catalogue": embeddings,
            "k": k,
        },
    )
    examples = {
        q: [catalogue.titles[int(i)] for i in t[:3]]
        for (q, _), t in zip(GENRE_QUERIES, top, strict=True)
    }
    metrics = {
        "genre_precision@10_mean": mean_p,
        "random_baseline_mean": mean_base,
        "per_query": rows,
        "onnx_vs_numpy_max_abs_diff": max_diff,
        "catalogue_size": len(texts),
        "examples_top3": examples,
    }
    config = ModelConfig(
        name=NAME,
        version=1,
        task="semantic-search",
        sha256="",
        description="Cosine top-k over catalogue embeddings made by text-encoder "
        f"v{encoder.version} (two steps: text-encoder, then this graph).",
        inputs=[
            TensorSpec(
                name="query_embedding",
                dtype="float32",
                shape=["batch", 384],
                description="text-encoder output for the query",
            ),
            TensorSpec(
                name="catalogue",
                dtype="float32",
                shape=["items", 384],
                description="embeddings.npy (+ rows for items added by events)",
            ),
            TensorSpec(name="k", dtype="int64", shape=[1]),
        ],
        outputs=[
            TensorSpec(
                name="top_items",
                dtype="int64",
                shape=["batch", "k"],
                description="catalogue rows (items.json)",
            ),
            TensorSpec(
                name="top_scores",
                dtype="float32",
                shape=["batch", "k"],
                description="cosine similarity",
            ),
        ],
        preprocessing={
            "query": f"{ENCODER} v{encoder.version}: TextTokenizer -> embedding",
            "item_text": "models.search.index.item_text(title, year, genres)",
            "catalogue": "np.load(embeddings.npy); ItemIndex.load(items.json)",
        },
        postprocessing={"ids": "ItemIndex.ids(top_items)"},
        training_data=[MOVIELENS],
        metrics=metrics,
        latency_ms=latency,
        inputs_fingerprint=fp,
        extra={
            "encoder": {
                "name": ENCODER,
                "version": encoder.version,
                "sha256": encoder.config.sha256,
            },
            "small_build": small,
        },
        output_roles={"items": "top_items", "scores": "top_scores"},
        **serving(),
    )

    def write(folder: Path) -> None:
        onnx.save(graph, str(folder / "model.onnx"))
        np.save(folder / "embeddings.npy", embeddings.astype(np.float32))
        ItemIndex(catalogue.item_ids, catalogue.titles).save(folder / "items.json")

    sections = [
        (
            "Relevance check: genre precision@10",
            "Descriptive queries that avoid the genre's name; an item is relevant when it has "
            "the genre. Baseline: the genre's share of the catalogue (random ranking).\n\n"
            + table(rows, ["query", "genre", "precision@10", "random baseline"])
            + f"\n\nMean precision@10 **{mean_p:.3f}** vs random {mean_base:.3f}.",
        ),
        ("Examples (top 3)", "\n".join(f"- *{q}*: {', '.join(t)}" for q, t in examples.items())),
        ("Parity", f"ONNX top-10 vs numpy brute force: max |Δ| = {max_diff:.2e}."),
        (
            "Latency note",
            f"Latency is for the search graph over {len(texts)} items; add "
            "text-encoder latency for a text query.",
        ),
    ]
    path = publish(config, write, lambda c: render_card(c, c.description, sections))
    return {"skipped": False, "path": str(path), **metrics, "latency_ms": latency}
