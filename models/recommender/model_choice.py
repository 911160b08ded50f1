"""Which recommender model a training run fits, and the one interface the trainers use.

A fitted model scores users from their recent item rows (newest last, ``-1`` padding),
takes extra item-to-item edges (content similarity for items without interactions,
``add_edges``), names the reason behind each returned item, and exports one ONNX graph with
the serving contract of ``models/recommender/graph.py`` (``recent_items``, ``exclude_mask``,
``k`` in; ``top_items``, ``top_scores``, ``top_reasons`` out), so inference serves any of
them unchanged.

The dense model (EASE + recency-weighted transitions, ``sequential.py``) keeps two N x N
tables; catalogues larger than ``DENSE_MAX_ITEMS`` get the sparse model (top-m neighbour
lists, ``neighbours.py``), whose memory and training time grow with N * m and the number
of interactions instead of N^2 and N^3.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import onnx

from models.recommender.graph import build_recommender_graph, reference_reasons
from models.recommender.neighbours import NeighbourParams, SparseNeighbours
from models.recommender.sequential import SequentialItemItem, SequentialParams
from shared.model_registry import TensorSpec

# Measured (bench/recommender_scale.py, docs/benchmarks.md "Recommender at scale"): at 5,000
# items the dense fit took 330 s and 1.5 GiB against the sparse one's 4 s and 0.2 GiB, and it
# grows with N^3 time and N^2 memory (its graph, 8 N^2 bytes, passes ONNX's 2 GiB limit at
# 16,384 items); on MovieLens 100k the sparse model ranks within 2 % of it (HR@10, NDCG@10).
DENSE_MAX_ITEMS = 5_000


class FittedRecommender(Protocol):
    params: SequentialParams
    n_items: int

    def recent(self, histories: Sequence[np.ndarray]) -> np.ndarray: ...

    def score_recent(self, recent: np.ndarray) -> np.ndarray: ...

    def score(self, users: np.ndarray, histories: list[np.ndarray]) -> np.ndarray: ...

    def add_edges(self, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> None:
        """Add ``weights`` to the score a recent item ``rows[j]`` gives item ``cols[j]``."""
        ...

    def reasons(self, recent: np.ndarray, top_items: np.ndarray) -> np.ndarray:
        """What the graph's ``top_reasons`` must hold for these inputs and returned items."""
        ...

    def to_onnx(self, prior: np.ndarray) -> onnx.ModelProto: ...


class DenseRecommender(SequentialItemItem):
    """The sequential item-item model with the common interface."""

    def add_edges(self, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> None:
        # Scaled by the EASE part's recency weights at scoring time, like any EASE entry.
        np.add.at(self.ease, (rows, cols), weights.astype(np.float32))

    def reasons(self, recent: np.ndarray, top_items: np.ndarray) -> np.ndarray:
        w_ease, w_trans = self.weights()
        return reference_reasons(self.ease, self.trans, w_ease, w_trans, recent, top_items)

    def to_onnx(self, prior: np.ndarray) -> onnx.ModelProto:
        w_ease, w_trans = self.weights()
        return build_recommender_graph(self.ease, self.trans, w_ease, w_trans, prior)


def fit(
    histories: Sequence[np.ndarray],
    n_items: int,
    params: SequentialParams | None = None,
    neighbour_params: NeighbourParams | None = None,
) -> FittedRecommender:
    """The model for a catalogue of ``n_items``, fitted on per-user item-row histories:
    the dense one up to ``DENSE_MAX_ITEMS`` items, the sparse one above."""
    if n_items > DENSE_MAX_ITEMS:
        return SparseNeighbours(histories, n_items, params, neighbour_params)
    return DenseRecommender(histories, n_items, params)


def serving_tensors(n: int, max_len: int) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The inputs and outputs every recommender graph declares in its ``config.json``."""
    inputs = [
        TensorSpec(
            name="recent_items",
            dtype="int64",
            shape=["batch", "history"],
            description=f"item rows (items.json), newest last, -1 = padding, history <= {max_len}",
        ),
        TensorSpec(
            name="exclude_mask",
            dtype="bool",
            shape=["batch", n],
            description="True = never recommend (already seen, unavailable)",
        ),
        TensorSpec(name="k", dtype="int64", shape=[1], description="how many to return"),
    ]
    outputs = [
        TensorSpec(
            name="top_items",
            dtype="int64",
            shape=["batch", "k"],
            description="item rows, best first",
        ),
        TensorSpec(name="top_scores", dtype="float32", shape=["batch", "k"]),
        TensorSpec(
            name="top_reasons",
            dtype="int64",
            shape=["batch", "k"],
            description="per returned item, the recent_items position that adds most "
            "to its score (the reason to show)",
        ),
    ]
    return inputs, outputs
