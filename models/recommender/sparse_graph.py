"""ONNX graph of the sparse (top-m neighbours) recommender, with the serving contract of
``graph.py``: ``recent_items`` int64 [B, L] (-1 padding), ``exclude_mask`` bool [B, N],
``k`` int64 [1] in; ``top_items``, ``top_scores``, ``top_reasons`` out.

A request gathers the neighbour lists of its 2L rows (co-occurrence rows, then transition
rows N.. of one [2N, m] table), weights them by recency, and adds them into a [B, N] row
holding the prior with ScatterElements(reduction="add"): 2 * L * m additions instead of the
dense graph's 2 * L * N multiply-adds. The mask and TopK follow as in ``graph.py``. Every
other full-width step is one more pass over N items, the cost that grows with the
catalogue, so there are as few as possible (the prior is the scatter's starting row, and
the item-to-rank map below is int32).

Reasons need, per history position, its contribution to each of the k returned items. A
[B, N] map from item to its rank (1..k, 0 = not returned) turns every gathered neighbour
into a bucket ``position * (k + 1) + rank``; a second scatter-add into [B, 2L * (k + 1)]
sums the contributions per bucket, so the work stays O(L * m), never O(L * m * k).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from models.recommender.graph import NEG, serving_model


def build_sparse_recommender_graph(
    neighbour_ids: np.ndarray,
    neighbour_weights: np.ndarray,
    w_co: np.ndarray,
    w_trans: np.ndarray,
    prior: np.ndarray,
) -> onnx.ModelProto:
    """``neighbour_ids``/``neighbour_weights`` [2N, m] (co-occurrence rows first; ids are
    stored as int32 to halve the table), position weights [max_len] for each part, prior [N]."""
    n = neighbour_ids.shape[0] // 2
    max_len = len(w_co)
    inits = [
        numpy_helper.from_array(neighbour_ids.astype(np.int32), "neighbour_ids"),
        numpy_helper.from_array(neighbour_weights.astype(np.float32), "neighbour_weights"),
        numpy_helper.from_array(w_co.astype(np.float32), "w_co"),
        numpy_helper.from_array(w_trans.astype(np.float32), "w_trans"),
        numpy_helper.from_array(prior.astype(np.float32), "prior"),
        numpy_helper.from_array(np.array([max_len], dtype=np.int64), "max_len"),
        numpy_helper.from_array(np.array(n, dtype=np.int64), "n_items"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "axis0"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
        numpy_helper.from_array(np.array([0, -1], dtype=np.int64), "flat"),
        numpy_helper.from_array(np.array(0, dtype=np.int64), "zero_i"),
        numpy_helper.from_array(np.array(1, dtype=np.int64), "one_i"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "one_1d"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "two_1d"),
        numpy_helper.from_array(np.array([3], dtype=np.int64), "three_1d"),
        numpy_helper.from_array(np.array([1, -1], dtype=np.int64), "flat_one"),
        numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero_f"),
        numpy_helper.from_array(np.array(NEG, dtype=np.float32), "neg"),
    ]
    mk = helper.make_node
    zero_f = helper.make_tensor("zero_f_value", TensorProto.FLOAT, [1], [0.0])
    zero_i = helper.make_tensor("zero_i_value", TensorProto.INT32, [1], [0])
    nodes = [
        # Align the recency weights with the newest L positions.
        mk("Shape", ["recent_items"], ["len"], start=1, end=2),
        mk("Sub", ["max_len", "len"], ["w_start"]),
        mk("Slice", ["w_co", "w_start", "max_len", "axis0"], ["wc"]),
        mk("Slice", ["w_trans", "w_start", "max_len", "axis0"], ["wt"]),
        mk("GreaterOrEqual", ["recent_items", "zero_i"], ["valid"]),
        mk("Where", ["valid", "recent_items", "zero_i"], ["rows"]),
        mk("Add", ["rows", "n_items"], ["trans_rows"]),
        mk("Concat", ["rows", "trans_rows"], ["both_rows"], axis=1),  # [B, 2L]
        mk("Concat", ["wc", "wt"], ["weights"], axis=0),
        mk("Concat", ["valid", "valid"], ["both_valid"], axis=1),
        mk("Where", ["both_valid", "weights", "zero_f"], ["row_weights"]),  # [B, 2L]
        # Neighbour lists of every row, weighted by the row's recency weight.
        mk("Gather", ["neighbour_ids", "both_rows"], ["gathered_ids32"], axis=0),  # [B, 2L, m]
        mk("Cast", ["gathered_ids32"], ["gathered_ids"], to=TensorProto.INT64),
        mk("Gather", ["neighbour_weights", "both_rows"], ["gathered_weights"], axis=0),
        mk("Unsqueeze", ["row_weights", "axis2"], ["row_weights_col"]),  # [B, 2L, 1]
        mk("Mul", ["gathered_weights", "row_weights_col"], ["contributions"]),
        mk("Reshape", ["gathered_ids", "flat"], ["ids_flat"]),  # [B, 2L * m]
        mk("Reshape", ["contributions", "flat"], ["contributions_flat"]),
        # Sum them into a zero score row; the prior ranks what no neighbour list reaches.
        mk("Shape", ["exclude_mask"], ["scores_shape"]),
        mk("Expand", ["prior", "scores_shape"], ["prior_rows"]),
        mk(
            "ScatterElements",
            ["prior_rows", "ids_flat", "contributions_flat"],
            ["raw"],
            axis=1,
            reduction="add",
        ),
        mk("Where", ["exclude_mask", "neg", "raw"], ["scores"]),
        mk("TopK", ["scores", "k"], ["top_scores", "top_items"], axis=-1, largest=1, sorted=1),
        # Reasons: rank of each returned item (1..k) in an item-sized map, 0 elsewhere.
        mk("Shape", ["top_items"], ["top_shape"]),
        mk("Shape", ["top_items"], ["k_dim"], start=1, end=2),
        mk("Squeeze", ["k_dim", "axis0"], ["k_scalar"]),
        mk("Add", ["k_scalar", "one_i"], ["k_plus_one"]),
        mk("Range", ["one_i", "k_plus_one", "one_i"], ["ranks"]),  # [k]: 1..k
        mk("Expand", ["ranks", "top_shape"], ["ranks_b64"]),  # [B, k]
        mk("Cast", ["ranks_b64"], ["ranks_b"], to=TensorProto.INT32),
        mk("ConstantOfShape", ["scores_shape"], ["no_rank"], value=zero_i),
        mk("ScatterElements", ["no_rank", "top_items", "ranks_b"], ["rank_of_item"], axis=1),
        mk("GatherElements", ["rank_of_item", "ids_flat"], ["entry_rank32"], axis=1),
        mk("Cast", ["entry_rank32"], ["entry_rank"], to=TensorProto.INT64),
        # Bucket of each gathered entry: its row's position * (k + 1) + the rank.
        mk("Shape", ["gathered_ids"], ["gathered_shape"]),  # [B, 2L, m]
        mk("Slice", ["gathered_shape", "one_1d", "two_1d", "axis0"], ["rows_dim"]),
        mk("Squeeze", ["rows_dim", "axis0"], ["rows_scalar"]),
        mk("Range", ["zero_i", "rows_scalar", "one_i"], ["positions"]),  # [2L]
        mk("Mul", ["positions", "k_plus_one"], ["bucket_base"]),
        mk("Unsqueeze", ["bucket_base", "axis1"], ["bucket_base_col"]),  # [2L, 1]
        mk("Slice", ["gathered_shape", "one_1d", "three_1d", "axis0"], ["rows_m_dims"]),
        mk("Expand", ["bucket_base_col", "rows_m_dims"], ["bucket_base_full"]),  # [2L, m]
        mk("Reshape", ["bucket_base_full", "flat_one"], ["bucket_base_flat"]),  # [1, 2L * m]
        mk("Add", ["entry_rank", "bucket_base_flat"], ["buckets"]),  # [B, 2L * m]
        mk("Slice", ["gathered_shape", "axis0", "two_1d", "axis0"], ["batch_rows"]),
        mk("Unsqueeze", ["k_plus_one", "axis0"], ["k_plus_one_1d"]),
        mk("Concat", ["batch_rows", "k_plus_one_1d"], ["per_rank_shape"], axis=0),
        mk("Mul", ["rows_scalar", "k_plus_one"], ["bucket_count"]),
        mk("Unsqueeze", ["bucket_count", "axis0"], ["bucket_count_1d"]),
        mk("Slice", ["gathered_shape", "axis0", "one_1d", "axis0"], ["batch_dim"]),
        mk("Concat", ["batch_dim", "bucket_count_1d"], ["buckets_shape"], axis=0),
        mk("ConstantOfShape", ["buckets_shape"], ["no_contribution"], value=zero_f),
        mk(
            "ScatterElements",
            ["no_contribution", "buckets", "contributions_flat"],
            ["per_bucket"],
            axis=1,
            reduction="add",
        ),
        mk("Reshape", ["per_bucket", "per_rank_shape"], ["per_rank"]),  # [B, 2L, k + 1]
        mk("Slice", ["per_rank", "one_1d", "k_plus_one_1d", "axis2"], ["at_top"]),  # [B, 2L, k]
        mk("Split", ["at_top"], ["co_parts", "trans_parts"], axis=1, num_outputs=2),
        mk("Add", ["co_parts", "trans_parts"], ["contribution"]),  # [B, L, k]
        mk("Unsqueeze", ["valid", "axis2"], ["valid_col"]),
        mk("Where", ["valid_col", "contribution", "neg"], ["usable"]),
        mk("ArgMax", ["usable"], ["top_reasons"], axis=1, keepdims=0, select_last_index=1),
    ]
    return serving_model(nodes, "sparse_item_item", n, inits)
