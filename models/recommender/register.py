"""Publish ``recommender``: the sequential item-item model with its item index."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from models.cards import render_card
from models.evaluation import measure_latency, session, table
from models.publish import current_if_unchanged, fingerprint, publish, serving
from models.recommender.graph import reference_reasons
from models.recommender.model_choice import serving_tensors
from models.recommender.train import export, train_and_evaluate
from models.runtime.items import ItemIndex
from models.sources import RECBOLE_WHEEL
from shared.model_registry import DataSource, ModelConfig

CODE_VERSION = 2  # 2: one stacked item-item table, top_reasons output
NAME = "recommender"
TARGETS = {"hr@10": 0.20, "ndcg@10": 0.10}
MOVIELENS = DataSource(
    name="MovieLens 100k (GroupLens)",
    source=f"ml-100k.inter/.item from PyPI wheel {RECBOLE_WHEEL.requirement} (cache only)",
    license="MovieLens licence: research use, no redistribution (never committed)",
    split="leave-last-out by timestamp: last item test, second-to-last validation",
)
SCALING = """\
Dense N x N matrices (2 x 11 MB here) serve catalogues up to DENSE_MAX_ITEMS
(models/recommender/model_choice.py). Above it, training from the product's events fits the
sparse model of models/recommender/neighbours.py: the top-m neighbours per item of a
co-occurrence similarity and of recency-decayed transitions (O(N*m) memory, fitted in row
blocks), served by a graph with the same inputs and outputs (models/recommender/sparse_graph.py).
Measured figures: docs/benchmarks.md, "Recommender at scale"."""


def _rows(results: dict[str, Any], protocol: str) -> list[dict[str, Any]]:
    rows = [
        {
            "model": n,
            **{
                k: v
                for k, v in m[protocol].items()
                if k in ("hr@10", "ndcg@10", "hr@20", "ndcg@20", "mrr")
            },
        }
        for n, m in results.items()
    ]
    if protocol == "full":
        rows.append({"model": "target", **TARGETS})
        rows.append(
            {
                "model": "published BPR-MF / popularity (issue)",
                "hr@10": "0.090 / 0.050",
                "ndcg@10": "0.045 / 0.025",
            }
        )
    return rows


def register_recommender(small: bool = False, force: bool = False) -> dict[str, Any]:
    fp = fingerprint({"code": CODE_VERSION, "wheel": RECBOLE_WHEEL.sha256, "small": small})
    kept = current_if_unchanged(NAME, fp)
    if kept is not None and not force:
        return {"skipped": True, **kept.metrics}
    out = train_and_evaluate(small=small)
    model, prior, catalogue = out["model"], out["prior"], out["catalogue"]
    graph = export(model, prior)
    sess = session(graph.SerializeToString())
    n, max_len = out["n_items"], model.params.max_len

    # ONNX top-k must equal the training-time scorer's top-k on a sample of users.
    rng = np.random.default_rng(0)
    recent = np.stack(
        [np.where(rng.random(max_len) < 0.3, -1, rng.integers(0, n, max_len)) for _ in range(16)]
    )
    exclude = np.zeros((16, n), dtype=bool)
    top_items, top_scores, top_reasons = sess.run(
        ["top_items", "top_scores", "top_reasons"],
        {"recent_items": recent, "exclude_mask": exclude, "k": np.array([10], dtype=np.int64)},
    )
    ref = model.score_recent(recent) + prior
    ref_top = np.sort(ref, axis=1)[:, ::-1][:, :10]
    max_diff = float(abs(top_scores - ref_top).max())
    same_items = float(np.mean(top_items == np.argsort(-ref, axis=1, kind="stable")[:, :10]))
    w_ease, w_trans = model.weights()
    same_reasons = float(
        np.mean(
            top_reasons
            == reference_reasons(model.ease, model.trans, w_ease, w_trans, recent, top_items)
        )
    )

    def feed(b: int) -> dict[str, np.ndarray]:
        return {
            "recent_items": np.tile(recent[:1], (b, 1)),
            "exclude_mask": np.zeros((b, n), dtype=bool),
            "k": np.array([10], np.int64),
        }

    latency = measure_latency(sess, feed)
    metrics = {
        "test": out["test"],
        "valid_served_model": out["valid"],
        "targets": TARGETS,
        "hit": {
            k: out["test"]["sequential-item-item (served)"]["full"][k] >= v
            for k, v in TARGETS.items()
        },
        "params": asdict(out["params"]),
        "tuning_trace": out["trace"],
        "onnx_vs_training_max_abs_diff": max_diff,
        "onnx_same_top10_items": same_items,
        "onnx_same_top10_reasons": same_reasons,
        "dataset": {"users": out["n_users"], "items": n, "interactions": out["n_interactions"]},
    }
    inputs, outputs = serving_tensors(n, max_len)
    config = ModelConfig(
        name=NAME,
        version=1,
        task="next-item-recommendation",
        sha256="",
        description="Sequence-aware linear item-item recommender (EASE + recency-weighted "
        "next-item transitions) scored from the user's recent items.",
        inputs=inputs,
        outputs=outputs,
        preprocessing={
            "runtime": "models.runtime.items.ItemIndex.load(items.json)",
            "recent_items": "ItemIndex.recent_items(histories, length)",
            "exclude_mask": "ItemIndex.exclude_mask(seen_item_ids)",
            "max_history": max_len,
        },
        postprocessing={"ids": "ItemIndex.ids(top_items)"},
        training_data=[MOVIELENS],
        metrics=metrics,
        latency_ms=latency,
        inputs_fingerprint=fp,
        extra={"max_history": max_len, "pad": -1, "small_build": small, "scaling": SCALING},
        output_roles={"items": "top_items", "scores": "top_scores", "reasons": "top_reasons"},
        # Executions of about 0.2 ms on callers' request paths: no delay for a fuller batch.
        **serving(max_queue_delay_microseconds=0),
    )

    def write(folder: Path) -> None:
        onnx.save(graph, str(folder / "model.onnx"))
        ItemIndex(catalogue.item_ids, catalogue.titles).save(folder / "items.json")

    cols = ["model", "hr@10", "ndcg@10", "hr@20", "ndcg@20", "mrr"]
    sections = [
        (
            "Results (test = each user's last interaction, full ranking, seen items excluded)",
            "Settings tuned on the validation item only; the served model is refit on "
            "train + validation and evaluated once on the test item.\n\n"
            + table(_rows(out["test"], "full"), cols),
        ),
        (
            "100 sampled negatives (for published tables)",
            table(_rows(out["test"], "sampled100"), ["model", "hr@10", "ndcg@10"]),
        ),
        (
            "Validation (served settings, fit on train only)",
            table([{"model": "sequential-item-item", **out["valid"]}], cols),
        ),
        (
            "Parity",
            f"ONNX top-10 scores vs training-time scorer on 16 random histories: "
            f"max |Δ| = {max_diff:.2e}.",
        ),
        ("Scaling to 10^5-10^6 items", SCALING),
    ]
    path = publish(config, write, lambda c: render_card(c, c.description, sections))
    return {"skipped": False, "path": str(path), **metrics, "latency_ms": latency}
