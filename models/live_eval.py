"""``eval``: re-measure the registry's newest versions with onnxruntime and print the
tables (served model beside its baselines from the same training run)."""

from __future__ import annotations

from typing import Any

import numpy as np

from models.encoder.build import reference_parity
from models.evaluation import table
from models.runtime.text import TextTokenizer
from shared.model_registry import ModelVersion, get_version


def eval_encoder(name: str) -> tuple[str, dict[str, Any]]:
    mv = get_version(name, verify=True)
    parity = reference_parity(mv.model_path, TextTokenizer(mv.file("tokenizer.json")))
    stored = mv.config.metrics
    cost = stored.get("int8_cost", {})
    rows = [
        {
            "model": f"{name} v{mv.version} (live)",
            "min cosine": parity["min_cosine"],
            "mean cosine": parity["mean_cosine"],
            "target": 0.9999,
            "hit": parity["min_cosine"] >= 0.9999 if name == "text-encoder" else "n/a",
        }
    ]
    text = table(rows, ["model", "min cosine", "mean cosine", "target", "hit"])
    if cost:
        text += "\n\n" + table(
            [
                {
                    "variant": "fp32",
                    "Banking77 logreg accuracy": cost["banking77_logreg_accuracy_fp32"],
                },
                {
                    "variant": "int8",
                    "Banking77 logreg accuracy": cost["banking77_logreg_accuracy_int8"],
                    "cosine vs fp32 (mean)": cost["int8_vs_fp32_mean_cosine"],
                },
            ],
            ["variant", "Banking77 logreg accuracy", "cosine vs fp32 (mean)"],
        )
    return text, {"live_parity": parity}


def eval_intent(name: str) -> tuple[str, dict[str, Any]]:
    from models.encoder.embed import run_text_graph
    from models.encoder.spec import SPECS
    from models.evaluation import session
    from models.intent.data import banking77, clinc150
    from models.intent.register import COLUMNS, TARGETS
    from models.intent.scoring import intent_metrics

    mv = get_version(name, verify=True)
    dataset = "banking77" if name == "intent-classifier" else "clinc150"
    data = banking77() if dataset == "banking77" else clinc150()
    labels = mv.config.labels or []
    (probs,) = run_text_graph(
        session(mv.model_path),
        TextTokenizer(mv.file("tokenizer.json")),
        data.report.texts,
        ("probabilities",),
        desc=f"eval {name}",
    )
    y = np.array([labels.index(t) for t in data.report.labels])
    live = intent_metrics(probs, y, labels, float(mv.config.extra["oos_threshold"]))
    base = mv.config.metrics["baseline_frozen_logreg"]
    # Versions built before the encoder became a parameter are MiniLM.
    encoder = SPECS[mv.config.metrics.get("finetune", {}).get("encoder", "minilm")].label
    rows = []
    for label, m in (
        (f"frozen {encoder} + logistic regression (baseline, stored)", base),
        (f"{name} v{mv.version} (live ONNX)", live),
    ):
        rows.append(
            {
                "model": label,
                "in-scope accuracy": m["in_scope_accuracy"],
                "accuracy, no OOS threshold": m["accuracy_no_threshold"],
                "OOS recall": m.get("oos_recall"),
                "OOS precision": m.get("oos_precision"),
                "threshold": m["threshold"],
            }
        )
    rows.append(
        {
            "model": "target",
            "in-scope accuracy": TARGETS[dataset]["in_scope_accuracy"],
            "OOS recall": TARGETS[dataset].get("oos_recall"),
        }
    )
    return table(rows, COLUMNS), {"live": live}


def eval_recommender(name: str) -> tuple[str, dict[str, Any]]:
    from models.evaluation import session
    from models.recommender.data import load_catalogue, load_sequences
    from models.recommender.metrics import full_ranking
    from models.recommender.register import TARGETS, _rows

    mv = get_version(name, verify=True)
    max_len = int(mv.config.extra["max_history"])
    sess = session(mv.model_path)
    cat = load_catalogue()
    small = bool(mv.config.extra.get("small_build"))
    seqs = load_sequences(cat, max_users=200 if small else None)
    n = seqs.n_items

    def onnx_scores(users: np.ndarray, histories: list[np.ndarray]) -> np.ndarray:
        # Full ranking needs every item's score: ask for k = N, then scatter back.
        recent = np.full((len(histories), max_len), -1, dtype=np.int64)
        for b, h in enumerate(histories):
            tail = h[-max_len:]
            recent[b, max_len - len(tail) :] = tail
        items, scores = sess.run(
            None,
            {
                "recent_items": recent,
                "exclude_mask": np.zeros((len(histories), n), bool),
                "k": np.array([n], dtype=np.int64),
            },
        )
        out = np.empty((len(histories), n), dtype=np.float32)
        np.put_along_axis(out, items, scores, axis=1)
        return out

    live = full_ranking(onnx_scores, seqs.history("test"), seqs.targets("test"))
    stored = mv.config.metrics["test"]
    rows = _rows({k: v for k, v in stored.items() if "served" not in k}, "full")
    rows.insert(len(stored) - 1, {"model": f"{name} v{mv.version} (live ONNX)", **live})
    text = table(rows, ["model", "hr@10", "ndcg@10", "hr@20", "ndcg@20", "mrr"])
    text += "\n\n100 sampled negatives (stored):\n" + table(
        _rows(stored, "sampled100"), ["model", "hr@10", "ndcg@10"]
    )
    return text, {"live_full": live, "targets": TARGETS}


def eval_search(name: str) -> tuple[str, dict[str, Any]]:
    mv = get_version(name, verify=True)
    m = mv.config.metrics
    text = table(m["per_query"], ["query", "genre", "precision@10", "random baseline"])
    text += (
        f"\n\nmean precision@10 {m['genre_precision@10_mean']:.3f} vs random "
        f"{m['random_baseline_mean']:.3f}"
    )
    return text, {}


EVALUATORS = {
    "text-encoder": eval_encoder,
    "text-encoder-int8": eval_encoder,
    "intent-classifier": eval_intent,
    "intent-classifier-clinc150": eval_intent,
    "recommender": eval_recommender,
    "item-search": eval_search,
}


def latency_line(mv: ModelVersion) -> str:
    return "latency ms: " + ", ".join(f"{k}={v}" for k, v in mv.config.latency_ms.items())
