"""Sparse sequence-aware item-item recommender for catalogues too large for N x N tables.

Per item it keeps only the ``m`` strongest neighbours of two item-item relations:

- co-occurrence: cosine similarity of the items' columns in the binary user x item matrix
  (computed a block of item rows at a time with scipy.sparse, so no N x N table exists);
- transitions: how often an item follows another within ``trans_window`` steps, each
  occurrence weighted ``trans_decay ** (distance - 1)`` (the recency decay the dense model
  uses), normalised by both items' popularity.

Scoring is the dense model's formula (``sequential.py``) over the neighbour lists: each
recent item adds its co-occurrence neighbours with the EASE part's recency weight and its
transition neighbours with the transition part's weight (``SequentialParams``), so a user's
score touches 2 * L * m entries instead of 2 * L * N. The tables are ``[2N, m]`` item ids
and weights (co-occurrence rows first), the layout ``sparse_graph.py`` serves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
import scipy.sparse as sp

from models.recommender.sequential import SequentialParams
from models.recommender.sparse_graph import build_sparse_recommender_graph

BLOCK_ENTRIES = 20_000_000  # co-occurrence entries per block of item rows (~240 MB at once)


@dataclass(frozen=True)
class NeighbourParams:
    neighbours: int = 100  # m: kept per item and relation
    trans_window: int = 10  # steps back a transition is counted (0.8 ** 9 = 0.13 at the end)
    trans_popularity: float = 0.3  # transitions / (count_from * count_to) ** this
    # Blend weight of the co-occurrence part (the dense model's ease_weight): cosine is on
    # another scale than EASE; 0.03-0.1 scored best on MovieLens 100k validation.
    co_weight: float = 0.05


def top_per_row(matrix: sp.csr_matrix, m: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``m`` largest entries of each row: ids int32 [n, m] and weights float32 [n, m],
    strongest first; rows with fewer entries are padded with item 0 at weight 0 (which adds
    nothing to a score). Ties keep the lower item id."""
    matrix = matrix.tocsr()
    matrix.sort_indices()
    n = matrix.shape[0]
    counts = np.diff(matrix.indptr)
    rows = np.repeat(np.arange(n), counts)
    order = np.lexsort((-matrix.data, rows))  # rows stay grouped, strongest first
    rank = np.arange(len(order)) - matrix.indptr[rows]
    keep = rank < m
    ids = np.zeros((n, m), dtype=np.int32)
    weights = np.zeros((n, m), dtype=np.float32)
    ids[rows[keep], rank[keep]] = matrix.indices[order][keep]
    weights[rows[keep], rank[keep]] = matrix.data[order][keep]
    return ids, weights


def _flatten(histories: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(h) for h in histories], dtype=np.int64)
    items = np.concatenate([np.asarray(h, dtype=np.int64) for h in histories])
    return np.repeat(np.arange(len(histories)), lengths), items


def cooccurrence_neighbours(
    users: np.ndarray, items: np.ndarray, n_users: int, n_items: int, m: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``m`` cosine neighbours per item on the binary user x item matrix."""
    x = sp.csr_matrix(
        (np.ones(len(items), dtype=np.float32), (users, items)), shape=(n_users, n_items)
    )
    x.data[:] = 1.0  # repeated interactions count once
    norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel()).astype(np.float32)
    xt = x.T.tocsr()
    # Work of a block of item rows ~ sum over its users of their history lengths.
    per_row = np.diff(xt.indptr) * max(1.0, x.nnz / max(1, n_users))
    ids = np.zeros((n_items, m), dtype=np.int32)
    weights = np.zeros((n_items, m), dtype=np.float32)
    start = 0
    while start < n_items:
        stop = start + 1 + int(np.searchsorted(np.cumsum(per_row[start:]), BLOCK_ENTRIES))
        stop = min(n_items, stop)
        block = (xt[start:stop] @ x).tocsr()
        rows = np.repeat(np.arange(stop - start), np.diff(block.indptr))
        block.data /= norms[start + rows] * norms[block.indices]
        block.data[block.indices == start + rows] = 0.0  # an item is not its own neighbour
        block.eliminate_zeros()
        ids[start:stop], weights[start:stop] = top_per_row(block, m)
        start = stop
    return ids, weights


def transition_neighbours(
    users: np.ndarray,
    items: np.ndarray,
    n_items: int,
    m: int,
    decay: float,
    window: int,
    alpha: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``m`` recency-weighted next items per item (any distance up to ``window``)."""
    counts = sp.csr_matrix((n_items, n_items), dtype=np.float32)
    for distance in range(1, window + 1):
        same_user = users[distance:] == users[:-distance]
        before, after = items[:-distance][same_user], items[distance:][same_user]
        other = before != after  # a repeat is not a transition to recommend
        before, after = before[other], after[other]
        weight = np.full(len(before), decay ** (distance - 1), dtype=np.float32)
        counts = counts + sp.csr_matrix((weight, (before, after)), shape=(n_items, n_items))
    popularity = np.bincount(items, minlength=n_items).astype(np.float32)
    scale = np.power(np.maximum(popularity, 1.0), -alpha).astype(np.float32)
    counts = counts.tocsr()
    rows = np.repeat(np.arange(n_items), np.diff(counts.indptr))
    counts.data *= scale[rows] * scale[counts.indices]
    return top_per_row(counts, m)


class SparseNeighbours:
    """Top-m neighbour lists of co-occurrence and transitions, scored like the dense model."""

    def __init__(
        self,
        histories: Sequence[np.ndarray],
        n_items: int,
        params: SequentialParams | None = None,
        neighbour_params: NeighbourParams | None = None,
    ) -> None:
        self.params = params or SequentialParams()
        self.neighbour_params = neighbour_params or NeighbourParams()
        self.n_items = n_items
        users, items = _flatten(histories)
        m = self.neighbour_params.neighbours
        co_ids, co_weights = cooccurrence_neighbours(users, items, len(histories), n_items, m)
        tr_ids, tr_weights = transition_neighbours(
            users,
            items,
            n_items,
            m,
            self.params.trans_decay,
            self.neighbour_params.trans_window,
            self.neighbour_params.trans_popularity,
        )
        # [2N, m]: co-occurrence rows, then transition rows (row N + i belongs to item i).
        self.neighbour_ids = np.concatenate([co_ids, tr_ids])
        self.neighbour_weights = np.concatenate([co_weights, tr_weights])

    def recent(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """[B, max_len] recent item rows, newest last, left-padded with -1."""
        out = np.full((len(histories), self.params.max_len), -1, dtype=np.int64)
        for b, h in enumerate(histories):
            tail = h[-self.params.max_len :]
            if len(tail):
                out[b, -len(tail) :] = tail
        return out

    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-position weights [max_len] (oldest first) for the co-occurrence and
        transition parts (the dense model's EASE and TRANS weights)."""
        age = np.arange(self.params.max_len - 1, -1, -1, dtype=np.float32)
        p, blend = self.params, self.neighbour_params.co_weight
        return (blend * p.ease_decay**age).astype(np.float32), (
            (1 - blend) * p.score_decay**age
        ).astype(np.float32)

    def _gathered(self, recent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per user, the neighbour ids and recency-weighted weights of the 2L rows its
        recent items read: ([B, 2L, m], [B, 2L, m]), exactly as the graph computes them."""
        length = recent.shape[1]
        w_co, w_tr = self.weights()
        position_weights = np.concatenate([w_co[len(w_co) - length :], w_tr[len(w_tr) - length :]])
        valid = recent >= 0
        rows = np.where(valid, recent, 0)
        both_rows = np.concatenate([rows, rows + self.n_items], axis=1)
        both_valid = np.concatenate([valid, valid], axis=1)
        row_weights = np.where(both_valid, position_weights[None, :], np.float32(0.0))
        contributions = self.neighbour_weights[both_rows] * row_weights[..., None].astype(
            np.float32
        )
        return self.neighbour_ids[both_rows].astype(np.int64), contributions

    def score_recent(self, recent: np.ndarray) -> np.ndarray:
        """Reference scorer: recent [B, L] -> [B, N], without the prior."""
        return self.served_scores(recent, np.zeros(self.n_items, dtype=np.float32))

    def served_scores(self, recent: np.ndarray, prior: np.ndarray) -> np.ndarray:
        """What the ONNX graph scores before the mask, bit for bit: the prior, then the
        same float32 additions in the same order as its ScatterElements."""
        ids, contributions = self._gathered(recent)
        out = np.tile(prior.astype(np.float32), (recent.shape[0], 1))
        for b in range(recent.shape[0]):
            np.add.at(out[b], ids[b].ravel(), contributions[b].ravel())
        return out

    def score(self, users: np.ndarray, histories: list[np.ndarray]) -> np.ndarray:
        return self.score_recent(self.recent(histories))

    def add_edges(self, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> None:
        """Merged into the co-occurrence lists (scaled by that part's recency weights at
        scoring time); an existing neighbour gains the weight, a new one is appended, and
        the lists widen so that no edge is dropped."""
        n, m = self.n_items, self.neighbour_ids.shape[1]
        flat_rows = np.repeat(np.arange(2 * n), m)
        table = sp.csr_matrix(
            (self.neighbour_weights.ravel(), (flat_rows, self.neighbour_ids.ravel())),
            shape=(2 * n, n),
        )
        table = table + sp.csr_matrix(
            (np.asarray(weights, dtype=np.float32), (np.asarray(rows), np.asarray(cols))),
            shape=(2 * n, n),
        )
        table.eliminate_zeros()
        width = max(m, int(np.diff(table.indptr).max(initial=0)))
        self.neighbour_ids, self.neighbour_weights = top_per_row(table, width)

    def reasons(self, recent: np.ndarray, top_items: np.ndarray) -> np.ndarray:
        """Per returned item, the history position adding most to its score (padding never
        wins; ties go to the newest position, as the graph's ArgMax does)."""
        ids, contributions = self._gathered(recent)
        length = recent.shape[1]
        out = np.zeros(top_items.shape, dtype=np.int64)
        for b in range(recent.shape[0]):
            match = ids[b][:, :, None] == top_items[b][None, None, :]  # [2L, m, k]
            per_row = np.where(match, contributions[b][:, :, None], np.float32(0.0)).sum(
                axis=1, dtype=np.float32
            )  # [2L, k]
            contribution = per_row[:length] + per_row[length:]
            contribution[recent[b] < 0] = np.float32(-3.0e38)
            out[b] = length - 1 - np.argmax(contribution[::-1], axis=0)
        return out

    def to_onnx(self, prior: np.ndarray) -> onnx.ModelProto:
        w_co, w_tr = self.weights()
        return build_sparse_recommender_graph(
            self.neighbour_ids, self.neighbour_weights, w_co, w_tr, prior
        )
