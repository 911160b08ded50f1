"""Train, evaluate (with baselines) and export the ``recommender`` model."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx

from models.recommender.baselines import BPRMF, Popularity
from models.recommender.data import Catalogue, Sequences, load_catalogue, load_sequences
from models.recommender.graph import build_recommender_graph
from models.recommender.metrics import full_ranking, sample_negatives, sampled_ranking
from models.recommender.sequential import SequentialItemItem, SequentialParams
from models.recommender.tuning import tune

SEED = 0
PRIOR_SCALE = 1e-4  # popularity prior: tie-breaker, far below real scores


def shift(seqs: Sequences) -> Sequences:
    """Train on train+valid (what the test protocol may see)."""
    return Sequences(
        seqs.users, seqs.history("test"), seqs.valid, seqs.test, seqs.train_times, seqs.n_items
    )


def popularity_prior(histories: list[np.ndarray], n_items: int) -> np.ndarray:
    counts = np.bincount(np.concatenate(histories), minlength=n_items).astype(np.float32)
    return PRIOR_SCALE * counts / max(1.0, float(counts.max()))


def train_and_evaluate(small: bool = False) -> dict[str, Any]:
    """Tune on validation, refit on train+valid, report test for model and baselines."""
    catalogue: Catalogue = load_catalogue()
    seqs = load_sequences(catalogue, max_users=200 if small else None)
    params = SequentialParams()
    trace: list[dict[str, object]] = []
    if not small:
        params, trace = tune(seqs, params)
    valid_model = SequentialItemItem(seqs.train, seqs.n_items, params)
    valid_metrics = full_ranking(valid_model.score, seqs.history("valid"), seqs.targets("valid"))

    final = shift(seqs)
    model = SequentialItemItem(final.train, seqs.n_items, params)
    prior = popularity_prior(final.train, seqs.n_items)

    def served(users: np.ndarray, histories: list[np.ndarray]) -> np.ndarray:
        return model.score(users, histories) + prior

    hist, target = seqs.history("test"), seqs.targets("test")
    pop = Popularity(final.train, seqs.n_items)
    bpr = BPRMF(final.train, seqs.n_items, epochs=5 if small else 40, seed=SEED)
    negatives = sample_negatives(hist, target, seqs.n_items, seed=SEED)
    results = {}
    for name, scorer in [
        ("popularity", pop.score),
        ("bpr-mf", bpr.score),
        ("sequential-item-item (served)", served),
    ]:
        results[name] = {
            "full": full_ranking(scorer, hist, target),
            "sampled100": sampled_ranking(scorer, hist, target, negatives),
        }
    return {
        "catalogue": catalogue,
        "model": model,
        "prior": prior,
        "params": params,
        "trace": trace,
        "valid": valid_metrics,
        "test": results,
        "n_users": len(seqs.users),
        "n_items": seqs.n_items,
        "n_interactions": int(sum(len(h) for h in seqs.history("test")) + len(seqs.test)),
    }


def export(model: SequentialItemItem, prior: np.ndarray) -> onnx.ModelProto:
    w_ease, w_trans = model.weights()
    return build_recommender_graph(model.ease, model.trans, w_ease, w_trans, prior)
