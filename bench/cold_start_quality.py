"""Cold-start quality of the recommender's content edges: ``python -m bench.cold_start_quality``.

MovieLens 100k (models/recommender/data.py; GroupLens' usage licence, fetched into var/cache,
never committed), split leave-last-out by time as ``models/recommender/train.py`` does: per
user, the second-to-last item is the *tuning* target and the last one the *test* target. 10 %
of the items (seeded) are held out: every interaction with them is hidden from training and
from the histories the model reads, so they are cold exactly as a new catalogue item is. The
sequential item-item model (default settings) is fitted on the training part, and
``models/recommender/content.py`` links each held-out item from its ``m`` most similar warm
items (text-encoder cosine of title + genres). ``m`` and ``alpha`` are chosen on the tuning
split only (``content.pick``: the best NDCG@10 on held-out tuning targets among settings
within 2 % of the best NDCG@10 over every tuning target); figures are measured once on the
test split, on the users whose test item is a held-out item:

(a) full ranking (all items, seen ones excluded): the model with content edges (tuned, and
    with the default alpha used when no tuning target is cold) vs popularity (training
    counts, the usual fallback, which cannot rank an item without interactions) and vs the
    model without content edges; the same over all test users shows what the edges cost
    the users whose next item is warm;
(b) ranking among the held-out items only: content similarity (the content edges' scores) vs
    popularity-at-random (held-out items have no popularity, so a random order, averaged over
    20 seeds).

Writes docs/benchmarks/cold_start_quality.json and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.encoder.embed import cached_features
from models.evaluation import session
from models.paths import cache_dir
from models.recommender import content
from models.recommender.data import load_catalogue, load_sequences
from models.recommender.model_choice import FittedRecommender, fit
from models.recommender.train import popularity_prior
from models.runtime.text import TextTokenizer
from shared.model_registry import get_version

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "cold_start_quality.json"
HOLD_OUT = 0.10
SEED = 0
NEIGHBOURS = (5, 10, 20, 50)
RANDOM_SEEDS = 20
K = 10


def metrics(rank: np.ndarray) -> dict[str, float]:
    hit = rank < K
    return {
        "hr@10": float(hit.mean()) if len(rank) else 0.0,
        "ndcg@10": content.ndcg_at(rank, K),
    }


def strip(histories: list[np.ndarray], held_out: np.ndarray) -> list[np.ndarray]:
    return [h[~np.isin(h, held_out)] for h in histories]


def all_ranks(scores: np.ndarray, histories: list[np.ndarray], targets: np.ndarray) -> np.ndarray:
    out = []
    for start in range(0, len(targets), content.RANK_BATCH):
        stop = start + content.RANK_BATCH
        out.append(content.ranks(scores[start:stop], histories[start:stop], targets[start:stop]))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def among(scores: np.ndarray, targets: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Rank of each target among ``candidates`` only (ties count against the target)."""
    sub = scores[:, candidates]
    target = scores[np.arange(len(targets)), targets]
    return (sub > target[:, None]).sum(axis=1) + (sub == target[:, None]).sum(axis=1) - 1


def run(registry: str | None) -> dict[str, Any]:
    started = time.perf_counter()
    catalogue = load_catalogue()
    seqs = load_sequences(catalogue)
    n = seqs.n_items
    rng = np.random.default_rng(SEED)
    held_out = np.sort(rng.choice(n, size=round(HOLD_OUT * n), replace=False))

    train = strip(seqs.train, held_out)
    tuning_hist, tuning_targets = train, seqs.valid
    test_hist = strip(seqs.history("test"), held_out)
    test_targets = seqs.test
    test_users = np.flatnonzero(np.isin(test_targets, held_out))

    encoder = get_version(content.ENCODER, root=registry)
    texts = content.catalogue_texts(catalogue.titles, catalogue.genres)
    (vectors,) = cached_features(
        session(encoder.model_path),
        TextTokenizer(encoder.file("tokenizer.json")),
        texts,
        cache_dir() / "features",
        f"{encoder.name}-{encoder.config.sha256}",
    )
    embeddings = content.normalise(vectors)

    # Choose m and alpha on the tuning split only, by the rule the trainer uses for alpha.
    tuning: list[dict[str, Any]] = []
    for m in NEIGHBOURS:
        model = fit(train, n)
        edges = content.add_content_edges(
            model, embeddings, train, (tuning_hist, tuning_targets), neighbours=m
        )
        tuning += [{"neighbours": m, **row} for row in edges.tuning_trace]
    kept = tuning[content.pick(tuning)]
    m, alpha = int(kept["neighbours"]), float(kept["alpha"])

    prior = popularity_prior(train, n)
    everyone = list(range(len(test_targets)))

    def scores_of(model: FittedRecommender | None, users: Sequence[int]) -> np.ndarray:
        if model is None:  # popularity: training counts
            counts = np.bincount(np.concatenate(train), minlength=n).astype(np.float64)
            return np.tile(counts, (len(users), 1))
        hist = [test_hist[u] for u in users]
        return np.asarray(model.score_recent(model.recent(hist)) + prior, dtype=np.float64)

    def figures(model: FittedRecommender | None, users: Sequence[int]) -> dict[str, float]:
        hist = [test_hist[u] for u in users]
        return metrics(all_ranks(scores_of(model, users), hist, test_targets[list(users)]))

    plain = fit(train, n)
    tuned = fit(train, n)
    edges = content.add_content_edges(tuned, embeddings, train, neighbours=m, alpha=alpha)
    default = fit(train, n)
    defaults = content.add_content_edges(default, embeddings, train)
    cold_users = test_users.tolist()
    rows: list[tuple[str, FittedRecommender | None]] = [
        ("model + content edges (tuned)", tuned),
        ("model + content edges (default alpha)", default),
        ("model without content edges", plain),
        ("popularity", None),
    ]
    full = {name: figures(model, cold_users) for name, model in rows}
    all_users = {name: figures(model, everyone) for name, model in rows}

    targets = test_targets[test_users]
    content_only = scores_of(tuned, cold_users) - scores_of(plain, cold_users)
    random_runs = [
        metrics(among(np.random.default_rng(s).random((len(targets), n)), targets, held_out))
        for s in range(RANDOM_SEEDS)
    ]
    cold_only = {
        "content similarity": metrics(among(content_only, targets, held_out)),
        "popularity-at-random": {
            key: float(np.mean([r[key] for r in random_runs])) for key in ("hr@10", "ndcg@10")
        },
    }
    return {
        "dataset": "MovieLens 100k (GroupLens), leave-last-out by time",
        "split": {
            "tuning": "each user's second-to-last item (m and alpha chosen here only)",
            "test": "each user's last item; figures on users whose last item is held out",
        },
        "held_out_items": len(held_out),
        "held_out_fraction": HOLD_OUT,
        "seed": SEED,
        "users": len(seqs.users),
        "tuning_users_with_held_out_target": int(np.isin(tuning_targets, held_out).sum()),
        "test_users_with_held_out_target": len(test_users),
        "encoder": f"{encoder.name} v{encoder.version}",
        "text": "shared.catalogue.item_text(title, genres)",
        "chosen": {"neighbours": m, "alpha": alpha, "edges": len(edges.cosine)},
        "default": {
            "neighbours": defaults.neighbours,
            "alpha": defaults.alpha,
            "scale": content.DEFAULT_ALPHA_SCALE,
        },
        "tuning": tuning,
        "full_ranking": full,
        "full_ranking_all_test_users": all_users,
        "among_held_out_items": {"candidates": len(held_out), **cold_only},
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--registry", help="model registry with text-encoder (default $LUMEN_MODEL_REPOSITORY)"
    )
    parser.add_argument("--out", type=Path, default=OUT, help="where the JSON goes")
    args = parser.parse_args(argv)
    result = run(args.registry)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{result['held_out_items']} held-out items; {result['test_users_with_held_out_target']} "
        f"test users whose last item is one (tuning: m={result['chosen']['neighbours']}, "
        f"alpha={result['chosen']['alpha']:.4g})"
    )
    for title, rows in (
        ("full ranking, users whose test item is held out", result["full_ranking"]),
        ("full ranking, all test users", result["full_ranking_all_test_users"]),
        ("among held-out items only", result["among_held_out_items"]),
    ):
        print(f"{title}:")
        for name, figures in rows.items():
            if isinstance(figures, dict):
                print(
                    f"  {name:<30} HR@10 {figures['hr@10']:.3f}  NDCG@10 {figures['ndcg@10']:.3f}"
                )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
