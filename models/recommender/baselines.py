"""Baselines run beside the served model: popularity and BPR matrix factorisation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tqdm import tqdm


class Popularity:
    """Score = number of training interactions of the item."""

    def __init__(self, histories: Sequence[np.ndarray], n_items: int) -> None:
        self.counts = np.bincount(np.concatenate(histories), minlength=n_items).astype(np.float32)

    def score(self, users: np.ndarray, histories: list[np.ndarray]) -> np.ndarray:
        return np.tile(self.counts, (len(histories), 1))


class BPRMF:
    """BPR-MF (Rendle et al., 2009) trained by mini-batch SGD in numpy.

    Scores users seen in training; ``score`` takes the per-user histories in the same
    user order as training (it is a transductive baseline, unlike the served model).
    """

    def __init__(
        self,
        histories: Sequence[np.ndarray],
        n_items: int,
        dim: int = 64,
        epochs: int = 40,
        lr: float = 0.05,
        reg: float = 1e-4,
        batch: int = 1024,
        seed: int = 0,
    ) -> None:
        rng = np.random.default_rng(seed)
        n_users = len(histories)
        self.user = (rng.standard_normal((n_users, dim)) * 0.1).astype(np.float32)
        self.item = (rng.standard_normal((n_items, dim)) * 0.1).astype(np.float32)
        users = np.concatenate([np.full(len(h), u) for u, h in enumerate(histories)])
        pos = np.concatenate(histories)
        seen = [set(h.tolist()) for h in histories]
        for _ in tqdm(range(epochs), desc="BPR-MF", unit="epoch", leave=False):
            order = rng.permutation(len(users))
            for start in range(0, len(order), batch):
                idx = order[start : start + batch]
                u, i = users[idx], pos[idx]
                j = rng.integers(0, n_items, size=len(idx))
                for k in np.flatnonzero([jj in seen[uu] for uu, jj in zip(u, j, strict=True)]):
                    j[k] = rng.integers(0, n_items)  # one resample is enough here
                pu, qi, qj = self.user[u], self.item[i], self.item[j]
                x = np.sum(pu * (qi - qj), axis=1)
                g = (1.0 / (1.0 + np.exp(x)))[:, None]  # d/dx log sigmoid(x)
                np.add.at(self.user, u, lr * (g * (qi - qj) - reg * pu))
                np.add.at(self.item, i, lr * (g * pu - reg * qi))
                np.add.at(self.item, j, lr * (-g * pu - reg * qj))

    def score(self, users: np.ndarray, histories: list[np.ndarray]) -> np.ndarray:
        return self.user[users] @ self.item.T
