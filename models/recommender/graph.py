"""ONNX graph of the sequential item-item recommender.

Inputs: ``recent_items`` int64 [B, L] (item rows, newest last, padded with -1, L <= the
trained ``max_len``), ``exclude_mask`` bool [B, N] (True = never return), ``k`` int64 [1].
Outputs: ``top_items`` int64 [B, k] (item rows; map with ``items.json``) and
``top_scores`` float32 [B, k]. Weights for the newest L positions are sliced from the
trained recency profile, so a short history (even a single click) scores correctly.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from models.encoder.graph import OPSET

NEG = -3.0e38  # excluded items: below any real score, still finite


def build_recommender_graph(
    ease: np.ndarray, trans: np.ndarray, w_ease: np.ndarray, w_trans: np.ndarray, prior: np.ndarray
) -> onnx.ModelProto:
    n = ease.shape[0]
    max_len = len(w_ease)
    inits = [
        numpy_helper.from_array(ease.astype(np.float32), "ease"),
        numpy_helper.from_array(trans.astype(np.float32), "trans"),
        numpy_helper.from_array(w_ease.astype(np.float32), "w_ease"),
        numpy_helper.from_array(w_trans.astype(np.float32), "w_trans"),
        numpy_helper.from_array(prior.astype(np.float32), "prior"),
        numpy_helper.from_array(np.array([max_len], dtype=np.int64), "max_len"),
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
        mk("Where", ["valid", "we", "zero_f"], ["we_b"]),
        mk("Where", ["valid", "wt", "zero_f"], ["wt_b"]),
        mk("Unsqueeze", ["we_b", "axis2"], ["we3"]),
        mk("Unsqueeze", ["wt_b", "axis2"], ["wt3"]),
        # Gather each recent item's row of both matrices, weight by recency, sum.
        mk("Gather", ["ease", "rows"], ["ease_rows"], axis=0),
        mk("Gather", ["trans", "rows"], ["trans_rows"], axis=0),
        mk("Mul", ["ease_rows", "we3"], ["ease_w"]),
        mk("Mul", ["trans_rows", "wt3"], ["trans_w"]),
        mk("ReduceSum", ["ease_w", "axis1"], ["ease_s"], keepdims=0),
        mk("ReduceSum", ["trans_w", "axis1"], ["trans_s"], keepdims=0),
        mk("Add", ["ease_s", "trans_s"], ["seq_s"]),
        # Tiny popularity prior: breaks ties and ranks items for users with no history.
        mk("Add", ["seq_s", "prior"], ["raw"]),
        mk("Where", ["exclude_mask", "neg", "raw"], ["scores"]),
        mk("TopK", ["scores", "k"], ["top_scores", "top_items"], axis=-1, largest=1, sorted=1),
    ]
    graph = helper.make_graph(
        nodes,
        "sequential_item_item",
        [
            helper.make_tensor_value_info("recent_items", TensorProto.INT64, ["batch", "history"]),
            helper.make_tensor_value_info("exclude_mask", TensorProto.BOOL, ["batch", n]),
            helper.make_tensor_value_info("k", TensorProto.INT64, [1]),
        ],
        [
            helper.make_tensor_value_info("top_items", TensorProto.INT64, ["batch", "k"]),
            helper.make_tensor_value_info("top_scores", TensorProto.FLOAT, ["batch", "k"]),
        ],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="lumen-models"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
