"""``build-defaults --small`` fills a registry the inference server can load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from models.evaluation import session
from models.runtime import ItemIndex, TextTokenizer, decide_intent
from shared.model_registry import get_version, list_models
from tests.support.model_registry import MODELS

# The default models, as the small-registry cache knows them.
EXPECTED = set(MODELS)


def test_every_model_is_published_with_card_and_checksums(small_registry: Path) -> None:
    assert set(list_models(small_registry)) == EXPECTED
    for name in EXPECTED:
        mv = get_version(name, root=small_registry, verify=True)
        card = (mv.path / "README.md").read_text()
        assert mv.config.latency_ms["batch1_p50_ms"] > 0
        assert mv.config.latency_ms["batch32_p50_ms"] > 0
        assert "Latency" in card and mv.config.sha256 in card
        assert {s.name for s in mv.config.inputs}, name


def test_second_build_skips_unchanged_models(small_registry: Path) -> None:
    from models.cli import train

    results = train("all", small=True)
    assert results["encoder"]["skipped"]
    assert results["recommender"]["skipped"]
    assert all(
        r["skipped"] for r in results["intent"].values() if isinstance(r, dict) and "skipped" in r
    )
    assert get_version("recommender", root=small_registry).version == 1


def test_encoder_meets_parity_target(small_registry: Path) -> None:
    metrics = get_version("text-encoder", root=small_registry).config.metrics
    assert metrics["parity_fp32"]["min_cosine"] >= 0.9999
    assert metrics["parity_int8"]["min_cosine"] > 0.95


def test_intent_model_serves_labels_and_oos(small_registry: Path) -> None:
    mv = get_version("intent-classifier", root=small_registry)
    labels = json.loads(mv.file("labels.json").read_text())
    assert labels == mv.config.labels and labels[-1] == "oos" and len(labels) == 78
    tok = TextTokenizer(mv.file("tokenizer.json"))
    (probs,) = session(mv.model_path).run(
        ["probabilities"],
        tok.encode(["I still haven't received my card", "what is the capital of France"]),
    )
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    decisions = decide_intent(probs, labels, mv.config.extra["oos_threshold"])
    assert all(d.intent in labels for d in decisions)
    # Even the CI-sized model (8 texts per intent) ranks the right intent near the top.
    assert labels.index("card_arrival") in np.argsort(-probs[0])[:5].tolist()
    assert mv.config.metrics["onnx_vs_training_max_abs_diff"] < 1e-3


def test_recommender_reacts_to_first_clicks(small_registry: Path) -> None:
    mv = get_version("recommender", root=small_registry)
    index = ItemIndex.load(mv.file("items.json"))
    sess = session(mv.model_path)
    k = np.array([10], dtype=np.int64)

    def top(history: list[str]) -> list[str]:
        feed = {
            "recent_items": index.recent_items([history], 5),
            "exclude_mask": index.exclude_mask([history]),
            "k": k,
        }
        return index.ids(sess.run(["top_items"], feed)[0])[0]

    cold = top([])
    after = top(["1", "50"])  # Toy Story, Star Wars
    assert len(cold) == 10 and cold != after
    assert "1" not in after and "50" not in after
    assert mv.config.metrics["onnx_same_top10_items"] == 1.0
    assert mv.config.metrics["onnx_same_top10_reasons"] == 1.0


def test_search_finds_items_by_meaning(small_registry: Path) -> None:
    mv = get_version("item-search", root=small_registry)
    enc = get_version("text-encoder", root=small_registry)
    assert mv.config.extra["encoder"]["sha256"] == enc.config.sha256
    tok = TextTokenizer(enc.file("tokenizer.json"))
    query = session(enc.model_path).run(["embedding"], tok.encode(["Star Wars"]))[0]
    catalogue = np.load(mv.file("embeddings.npy"))
    items, _ = session(mv.model_path).run(
        None, {"query_embedding": query, "catalogue": catalogue, "k": np.array([3], dtype=np.int64)}
    )
    titles = ItemIndex.load(mv.file("items.json")).titles or []
    assert any("Star Wars" in titles[int(i)] for i in items[0])
    assert mv.config.metrics["genre_precision@10_mean"] > mv.config.metrics["random_baseline_mean"]
