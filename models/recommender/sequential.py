"""Sequence-aware linear item-item model, scored from a user's recent items only.

Two closed-form item x item matrices, in the spirit of SLIST (Choi et al., WWW 2021):

- ``ease``: EASE (Steck, WWW 2019) on which items co-occur in users' histories;
- ``trans``: a ridge regression from a recency-decayed state of the previous items
  to the next item (next-item transitions, any distance, weighted by recency).

Score for a user with recent items ``i_1..i_L`` (newest last, ages ``a_j``)::

    score = sum_j w_ease(a_j) * EASE[i_j] + sum_j w_trans(a_j) * TRANS[i_j]

with ``w(a) = decay ** a`` for each part. Because the model reads only the recent items,
a brand-new user's first clicks change their recommendations at once, and the same
formula runs in ONNX (gather rows, weight, sum, mask, top-k).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class SequentialParams:
    max_len: int = 50  # recent items read per user (the real-time profile keeps these)
    ease_l2: float = 200.0
    trans_l2: float = 10.0
    trans_decay: float = 0.8  # state weight per step back when building transitions
    ease_weight: float = 0.3  # blend: ease_weight * EASE + (1 - ease_weight) * TRANS
    ease_decay: float = 0.98  # recency weight per step at scoring time
    score_decay: float = 0.8


def _ease(histories: Sequence[np.ndarray], n_items: int, l2: float) -> np.ndarray:
    rows = np.concatenate([np.full(len(h), u) for u, h in enumerate(histories)])
    x = sp.csr_matrix(
        (np.ones(len(rows)), (rows, np.concatenate(histories))), shape=(len(histories), n_items)
    )
    x.data[:] = 1.0
    gram = (x.T @ x).toarray() + l2 * np.eye(n_items)
    p = np.linalg.inv(gram)
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0.0)
    return b.astype(np.float32)


def _transitions(
    histories: Sequence[np.ndarray], n_items: int, l2: float, decay: float, max_len: int
) -> np.ndarray:
    rows, cols, vals, targets = [], [], [], []
    r = 0
    for h in histories:
        for t in range(1, len(h)):
            prev = h[max(0, t - max_len) : t]
            rows.append(np.full(len(prev), r))
            cols.append(prev)
            vals.append(decay ** np.arange(len(prev) - 1, -1, -1, dtype=np.float64))
            targets.append(h[t])
            r += 1
    s = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r, n_items)
    )
    y = sp.csr_matrix((np.ones(r), (np.arange(r), np.array(targets))), shape=(r, n_items))
    gram = (s.T @ s).toarray() + l2 * np.eye(n_items)
    return np.linalg.solve(gram, (s.T @ y).toarray()).astype(np.float32)


class SequentialItemItem:
    def __init__(
        self, histories: Sequence[np.ndarray], n_items: int, params: SequentialParams | None = None
    ) -> None:
        params = params or SequentialParams()
        self.params = params
        self.n_items = n_items
        self.ease = _ease(histories, n_items, params.ease_l2)
        self.trans = _transitions(
            histories, n_items, params.trans_l2, params.trans_decay, params.max_len
        )

    def recent(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """[B, max_len] recent item rows, newest last, left-padded with -1."""
        out = np.full((len(histories), self.params.max_len), -1, dtype=np.int64)
        for b, h in enumerate(histories):
            tail = h[-self.params.max_len :]
            if len(tail):
                out[b, -len(tail) :] = tail
        return out

    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-position weights [max_len] (oldest first) for the EASE and TRANS parts."""
        age = np.arange(self.params.max_len - 1, -1, -1, dtype=np.float32)
        p = self.params
        return (p.ease_weight * p.ease_decay**age).astype(np.float32), (
            (1 - p.ease_weight) * p.score_decay**age
        ).astype(np.float32)

    def score_recent(self, recent: np.ndarray) -> np.ndarray:
        """Reference scorer the ONNX graph must reproduce: recent [B, L] -> [B, N]."""
        w_ease, w_trans = self.weights()
        valid = recent >= 0
        idx = np.where(valid, recent, 0)
        we = np.where(valid, w_ease[None, :], 0.0)[..., None]
        wt = np.where(valid, w_trans[None, :], 0.0)[..., None]
        return (self.ease[idx] * we).sum(axis=1) + (self.trans[idx] * wt).sum(axis=1)

    def score(self, users: np.ndarray, histories: list[np.ndarray]) -> np.ndarray:
        return self.score_recent(self.recent(histories))
