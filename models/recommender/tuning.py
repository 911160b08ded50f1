"""Coordinate search of the sequential model's settings on the validation split only."""

from __future__ import annotations

from dataclasses import replace

from tqdm import tqdm

from models.recommender.data import Sequences
from models.recommender.metrics import full_ranking
from models.recommender.sequential import SequentialItemItem, SequentialParams

# Settings that need a refit vs. ones that only change scoring (cheap to try).
FIT_GRID = {
    "trans_decay": [0.6, 0.8, 0.9],
    "trans_l2": [3.0, 10.0, 30.0],
    "ease_l2": [100.0, 200.0, 400.0],
}
SCORE_GRID = {
    "ease_weight": [0.1, 0.2, 0.3, 0.5],
    "ease_decay": [0.9, 0.95, 0.98, 1.0],
    "score_decay": [0.6, 0.7, 0.8, 0.9],
}


def _objective(model: SequentialItemItem, seqs: Sequences) -> float:
    m = full_ranking(model.score, seqs.history("valid"), seqs.targets("valid"))
    return m["ndcg@10"] + m["hr@10"]


def tune(
    seqs: Sequences, start: SequentialParams, rounds: int = 1
) -> tuple[SequentialParams, list[dict[str, object]]]:
    """One pass per setting, keeping the best; returns the settings and a trace."""
    best = start
    trace: list[dict[str, object]] = []
    model = SequentialItemItem(seqs.train, seqs.n_items, best)
    best_value = _objective(model, seqs)
    steps = [(k, v, True) for k, vs in FIT_GRID.items() for v in vs] + [
        (k, v, False) for k, vs in SCORE_GRID.items() for v in vs
    ]
    for _ in range(rounds):
        for key, value, refit in tqdm(steps, desc="tuning recommender", unit="trial"):
            if getattr(best, key) == value:
                continue
            trial = replace(best, **{key: value})  # type: ignore[arg-type]
            if refit:
                candidate = SequentialItemItem(seqs.train, seqs.n_items, trial)
            else:
                candidate = model
                candidate.params = trial
            value_ = _objective(candidate, seqs)
            trace.append({"param": key, "value": value, "objective": value_})
            if value_ > best_value:
                best, best_value, model = trial, value_, candidate
            else:
                model.params = best
    return best, trace
