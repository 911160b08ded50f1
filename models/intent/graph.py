"""One ONNX graph for intents: (fine-tuned) sentence encoder + linear head + softmax."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from models.encoder.graph import _Builder, build_encoder_nodes, finish_model, text_inputs
from models.encoder.spec import spec_of


def build_intent_graph(
    weights: dict[str, np.ndarray], head_weight: np.ndarray, head_bias: np.ndarray
) -> onnx.ModelProto:
    """``input_ids``/``attention_mask`` int64 [B,T] -> ``probabilities`` float32 [B,C]
    and ``embedding`` float32 [B,D] (the fine-tuned sentence embedding; D = the
    encoder's width)."""
    g = _Builder()
    emb, _ = build_encoder_nodes(g, weights, "input_ids", "attention_mask")
    w = g.const("head.weight_t", head_weight.T.astype(np.float32))
    b = g.const("head.bias", head_bias.astype(np.float32))
    logits = g.op("Add", [g.op("MatMul", [emb, w]), b])
    g.nodes.append(helper.make_node("Softmax", [logits], ["probabilities"], axis=-1))
    g.nodes.append(helper.make_node("Identity", [emb], ["embedding"]))
    n = head_weight.shape[0]
    outputs = [
        helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", n]),
        helper.make_tensor_value_info(
            "embedding", TensorProto.FLOAT, ["batch", spec_of(weights).hidden]
        ),
    ]
    return finish_model(g, text_inputs(), outputs, "intent_classifier")
