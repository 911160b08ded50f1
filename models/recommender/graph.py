"""ONNX graph of the sequential item-item recommender.

Inputs: ``recent_items`` int64 [B, L] (item rows, newest last, padded with -1, L <= the
trained ``max_len``), ``exclude_mask`` bool [B, N] (True = never return), ``k`` int64 [1].
Outputs: ``top_items`` int64 [B, k] (item rows; map with ``items.json``), ``top_scores``
float32 [B, k] and ``top_reasons`` int64 [B, k]: for each returned item, the position in
``recent_items`` of the history item that adds most to its score (what a "because you
watched X" names). Weights for the newest L positions are sliced from the trained recency
profile, so a short history (even a single click) scores correctly.

Both item-item matrices are stacked into one [2N, N] table, so a request gathers its 2L
rows once and weights them with a single MatMul (about half the time of multiplying the
rows out and summing them, at N = 1,682 and a 50-item history); the reasons reuse the
gathered rows, reading only the k returned columns.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from models.encoder.graph import OPSET

NEG = -3.0e38  # excluded items: below any real score, still finite


def reference_reasons(
    ease: np.ndarray,
    trans: np.ndarray,
    w_ease: np.ndarray,
    w_trans: np.ndarray,
    recent: np.ndarray,
    top_items: np.ndarray,
) -> np.ndarray:
    """What ``top_reasons`` must hold, in numpy: per returned item, the history position
    with the largest recency-weighted contribution (padding never wins)."""
    length = recent.shape[1]
    we, wt = w_ease[len(w_ease) - length :], w_trans[len(w_trans) - length :]
    rows = np.where(recent >= 0, recent, 0)
    out = np.zeros(top_items.shape, dtype=np.int64)
    for b in range(recent.shape[0]):
        contribution = (
            we[:, None] * ease[rows[b]][:, top_items[b]]
            + wt[:, None] * trans[rows[b]][:, top_items[b]]
        )
        contribution[recent[b] < 0] = NEG
        # Ties go to the newest position, as ArgMax(select_last_index=1) does in the graph.
        out[b] = length - 1 - np.argmax(contribution[::-1], axis=0)
    return out


def build_recommender_graph(
    ease: np.ndarray, trans: np.ndarray, w_ease: np.ndarray, w_trans: np.ndarray, prior: np.ndarray
) -> onnx.ModelProto:
    n = ease.shape[0]
    max_len = len(w_ease)
    stacked = np.concatenate([ease, trans], axis=0).astype(np.float32)  # rows N.. = trans
    inits = [
        numpy_helper.from_array(stacked, "item_item"),
        numpy_helper.from_array(w_ease.astype(np.float32), "w_ease"),
        numpy_helper.from_array(w_trans.astype(np.float32), "w_trans"),
        numpy_helper.from_array(prior.astype(np.float32), "prior"),
        numpy_helper.from_array(np.array([max_len], dtype=np.int64), "max_len"),
        numpy_helper.from_array(np.array(n, dtype=np.int64), "n_items"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "axis0"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
        numpy_helper.from_array(np.array(0, dtype=np.int64), "zero_i"),
        numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero_f"),
        numpy_helper.from_array(np.array(NEG, dtype=np.float32), "neg"),
    ]
    mk = helper.make_node
    nodes = [
        # Align the recency weights with the newest L positions.
        mk("Shape", ["recent_items"], ["len"], start=1, end=2),
        mk("Sub", ["max_len", "len"], ["w_start"]),
        mk("Slice", ["w_ease", "w_start", "max_len", "axis0"], ["we"]),
        mk("Slice", ["w_trans", "w_start", "max_len", "axis0"], ["wt"]),
        mk("GreaterOrEqual", ["recent_items", "zero_i"], ["valid"]),
        mk("Where", ["valid", "recent_items", "zero_i"], ["rows"]),
        # Rows of both matrices for each recent item: [B, 2L] (EASE rows, then transitions).
        mk("Add", ["rows", "n_items"], ["trans_rows"]),
        mk("Concat", ["rows", "trans_rows"], ["both_rows"], axis=1),
        mk("Concat", ["we", "wt"], ["weights"], axis=0),
        mk("Concat", ["valid", "valid"], ["both_valid"], axis=1),
        mk("Where", ["both_valid", "weights", "zero_f"], ["row_weights"]),
        mk("Unsqueeze", ["row_weights", "axis1"], ["row_weights3"]),  # [B, 1, 2L]
        mk("Gather", ["item_item", "both_rows"], ["gathered"], axis=0),  # [B, 2L, N]
        mk("MatMul", ["row_weights3", "gathered"], ["seq3"]),  # [B, 1, N]
        mk("Squeeze", ["seq3", "axis1"], ["seq_s"]),
        # Tiny popularity prior: breaks ties and ranks items for users with no history.
        mk("Add", ["seq_s", "prior"], ["raw"]),
        mk("Where", ["exclude_mask", "neg", "raw"], ["scores"]),
        mk("TopK", ["scores", "k"], ["top_scores", "top_items"], axis=-1, largest=1, sorted=1),
        # Reasons: each gathered row's weighted value at the k returned columns, EASE and
        # transition parts added per position, padding excluded, largest position wins.
        mk("Shape", ["gathered"], ["gathered_shape"], start=0, end=2),
        mk("Shape", ["top_items"], ["k_dim"], start=1, end=2),
        mk("Concat", ["gathered_shape", "k_dim"], ["columns_shape"], axis=0),
        mk("Unsqueeze", ["top_items", "axis1"], ["top3"]),  # [B, 1, k]
        mk("Expand", ["top3", "columns_shape"], ["columns"]),  # [B, 2L, k]
        mk("GatherElements", ["gathered", "columns"], ["at_top"], axis=2),
        mk("Unsqueeze", ["row_weights", "axis2"], ["row_weights_col"]),  # [B, 2L, 1]
        mk("Mul", ["at_top", "row_weights_col"], ["parts"]),
        mk("Split", ["parts"], ["ease_parts", "trans_parts"], axis=1, num_outputs=2),
        mk("Add", ["ease_parts", "trans_parts"], ["contribution"]),  # [B, L, k]
        mk("Unsqueeze", ["valid", "axis2"], ["valid_col"]),
        mk("Where", ["valid_col", "contribution", "neg"], ["usable"]),
        mk("ArgMax", ["usable"], ["top_reasons"], axis=1, keepdims=0, select_last_index=1),
    ]
    return serving_model(nodes, "sequential_item_item", n, inits)


def serving_model(
    nodes: list[onnx.NodeProto], name: str, n: int, inits: list[onnx.TensorProto]
) -> onnx.ModelProto:
    """A recommender graph with the serving contract's inputs and outputs (the module
    docstring), checked. Every recommender graph is built through here."""
    graph = helper.make_graph(
        nodes,
        name,
        [
            helper.make_tensor_value_info("recent_items", TensorProto.INT64, ["batch", "history"]),
            helper.make_tensor_value_info("exclude_mask", TensorProto.BOOL, ["batch", n]),
            helper.make_tensor_value_info("k", TensorProto.INT64, [1]),
        ],
        [
            helper.make_tensor_value_info("top_items", TensorProto.INT64, ["batch", "k"]),
            helper.make_tensor_value_info("top_scores", TensorProto.FLOAT, ["batch", "k"]),
            helper.make_tensor_value_info("top_reasons", TensorProto.INT64, ["batch", "k"]),
        ],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="lumen-models"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
