"""ONNX graph for item search: cosine top-k of a query against a catalogue matrix.

Inputs: ``query_embedding`` float32 [B, 384] (``text-encoder`` output, unit norm),
``catalogue`` float32 [N, 384] (unit rows: ``embeddings.npy`` of the model version,
plus rows the server embeds for items that arrive as catalogue events) and ``k``
int64 [1]. Outputs: ``top_items`` int64 [B, k] (catalogue rows; ``items.json`` maps
them to item ids) and ``top_scores`` float32 [B, k] (cosine similarity).
The catalogue is an input, not a constant, so the index can grow without a rebuild.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from models.encoder.graph import OPSET
from models.encoder.spec import MINILM


def build_search_graph() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Transpose", ["catalogue"], ["catalogue_t"], perm=[1, 0]),
        helper.make_node("MatMul", ["query_embedding", "catalogue_t"], ["scores"]),
        helper.make_node("TopK", ["scores", "k"], ["top_scores", "top_items"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "item_search",
        [
            helper.make_tensor_value_info(
                "query_embedding", TensorProto.FLOAT, ["batch", MINILM.hidden]
            ),
            helper.make_tensor_value_info("catalogue", TensorProto.FLOAT, ["items", MINILM.hidden]),
            helper.make_tensor_value_info("k", TensorProto.INT64, [1]),
        ],
        [
            helper.make_tensor_value_info("top_items", TensorProto.INT64, ["batch", "k"]),
            helper.make_tensor_value_info("top_scores", TensorProto.FLOAT, ["batch", "k"]),
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="lumen-models"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
