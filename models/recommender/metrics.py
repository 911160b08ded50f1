"""Leave-last-out ranking metrics: full ranking and the 100-sampled-negatives protocol."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Scorer = Callable[[np.ndarray, list[np.ndarray]], np.ndarray]  # (users, histories) -> [B, N]


def _ndcg_hr(ranks: np.ndarray, k: int) -> tuple[float, float]:
    hit = ranks < k
    return float(hit.mean()), float((hit / np.log2(ranks + 2.0)).mean())


def full_ranking(
    scorer: Scorer,
    histories: Sequence[np.ndarray],
    targets: np.ndarray,
    ks: Sequence[int] = (10, 20),
    batch: int = 256,
) -> dict[str, float]:
    """Rank the target among all items, with the user's already-seen items excluded."""
    ranks = []
    for start in range(0, len(targets), batch):
        hist = list(histories[start : start + batch])
        scores = np.asarray(
            scorer(np.arange(start, start + len(hist)), hist), dtype=np.float64
        ).copy()
        tgt = targets[start : start + batch]
        for b, h in enumerate(hist):
            seen = h[h != tgt[b]]  # a re-watched target still counts
            scores[b, seen] = -np.inf
        target_score = scores[np.arange(len(tgt)), tgt]
        ranks.append((scores > target_score[:, None]).sum(axis=1))
    r = np.concatenate(ranks)
    out: dict[str, float] = {}
    for k in ks:
        out[f"hr@{k}"], out[f"ndcg@{k}"] = _ndcg_hr(r, k)
    out["mrr"] = float((1.0 / (r + 1)).mean())
    return out


def sample_negatives(
    histories: Sequence[np.ndarray],
    targets: np.ndarray,
    n_items: int,
    n_neg: int = 100,
    seed: int = 0,
) -> np.ndarray:
    """Per user, ``n_neg`` items never interacted with (uniform, seeded)."""
    rng = np.random.default_rng(seed)
    out = np.empty((len(targets), n_neg), dtype=np.int64)
    for u, (h, t) in enumerate(zip(histories, targets, strict=True)):
        seen = set(h.tolist()) | {int(t)}
        picked: list[int] = []
        while len(picked) < n_neg:
            for c in rng.integers(0, n_items, size=2 * n_neg).tolist():
                if c not in seen:
                    seen.add(c)
                    picked.append(c)
                    if len(picked) == n_neg:
                        break
        out[u] = picked
    return out


def sampled_ranking(
    scorer: Scorer,
    histories: Sequence[np.ndarray],
    targets: np.ndarray,
    negatives: np.ndarray,
    ks: Sequence[int] = (10,),
    batch: int = 256,
) -> dict[str, float]:
    """Rank the target among itself + sampled negatives (published-table protocol)."""
    ranks = []
    for start in range(0, len(targets), batch):
        hist = list(histories[start : start + batch])
        scores = np.asarray(scorer(np.arange(start, start + len(hist)), hist), dtype=np.float64)
        rows = np.arange(scores.shape[0])[:, None]
        tgt = scores[rows[:, 0], targets[start : start + batch]]
        neg = scores[rows, negatives[start : start + batch]]
        ranks.append((neg > tgt[:, None]).sum(axis=1))
    r = np.concatenate(ranks)
    out: dict[str, float] = {}
    for k in ks:
        out[f"hr@{k}"], out[f"ndcg@{k}"] = _ndcg_hr(r, k)
    return out
