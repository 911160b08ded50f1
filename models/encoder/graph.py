"""Build the sentence-encoder graph node by node with the ``onnx`` helper API.

The graph reproduces sentence-transformers' pipeline for all-MiniLM-L6-v2 (BERT, 6
layers, hidden 384) and all-mpnet-base-v2 (MPNet, 12 layers, hidden 768): transformer
layers with exact erf GELU, mean pooling over the attention mask and L2 normalisation,
so callers get unit vectors straight from onnxruntime. ``models.encoder.spec`` holds
what differs between the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from models.encoder.spec import RELATIVE_BIAS, EncoderSpec, relative_position_buckets, spec_of
from models.sources import SourceError

OPSET = 18  # LayerNormalization (17+) and axes-as-input for every Reduce op (18+)
MAX_POSITIONS = 512  # the relative-bias bucket table covers texts up to this many tokens

# MPNet's attention tensors under the BERT names that the builder and fine-tuning use.
_MPNET_RENAMES = (
    ("attention.attn.q.", "attention.self.query."),
    ("attention.attn.k.", "attention.self.key."),
    ("attention.attn.v.", "attention.self.value."),
    ("attention.attn.o.", "attention.output.dense."),
    ("attention.LayerNorm.", "attention.output.LayerNorm."),
)


def _bert_names(key: str) -> str:
    key = key.removeprefix("bert.").removeprefix("mpnet.")
    for old, new in _MPNET_RENAMES:
        key = key.replace(old, new)
    return key


def load_weights(path: Path) -> dict[str, np.ndarray]:
    """Read BERT or MPNet weights from safetensors under BERT tensor names, failing
    clearly if the file is not there or is neither."""
    from safetensors.numpy import load_file

    if not Path(path).is_file():
        raise SourceError(f"weights file not found: {path}")
    weights = {_bert_names(k): v for k, v in load_file(str(path)).items()}
    missing = [k for k in ("embeddings.word_embeddings.weight",) if k not in weights]
    if missing:
        raise SourceError(f"{path} is not a BERT checkpoint (missing {missing})")
    spec_of(weights)  # refuses sizes the builders do not know
    return weights


@dataclass
class _Builder:
    """Accumulates nodes and initializers with unique names."""

    nodes: list[onnx.NodeProto] = field(default_factory=list)
    inits: list[onnx.TensorProto] = field(default_factory=list)
    count: int = 0
    hidden_states: list[str] = field(default_factory=list)  # token states after each layer

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], **attrs: Any) -> str:
        self.count += 1
        out = f"{op_type.lower()}_{self.count}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def linear(self, x: str, w: np.ndarray, b: np.ndarray, name: str) -> str:
        # torch stores Linear weights as [out, in]; MatMul wants [in, out].
        wt = self.const(f"{name}.weight_t", w.T.astype(np.float32))
        bias = self.const(f"{name}.bias", b.astype(np.float32))
        return self.op("Add", [self.op("MatMul", [x, wt]), bias])

    def layer_norm(self, x: str, w: np.ndarray, b: np.ndarray, name: str, eps: float) -> str:
        scale = self.const(f"{name}.weight", w.astype(np.float32))
        bias = self.const(f"{name}.bias", b.astype(np.float32))
        return self.op("LayerNormalization", [x, scale, bias], axis=-1, epsilon=eps)


def _encoder_layer(
    g: _Builder, x: str, attn_bias: str, w: dict[str, np.ndarray], i: int, spec: EncoderSpec
) -> str:
    p = f"encoder.layer.{i}."
    head_dim = spec.head_dim
    split = g.const(f"l{i}.split_shape", np.array([0, 0, spec.heads, head_dim], dtype=np.int64))
    merge = g.const(f"l{i}.merge_shape", np.array([0, 0, spec.hidden], dtype=np.int64))

    def heads(name: str) -> str:
        proj = g.linear(
            x,
            w[p + f"attention.self.{name}.weight"],
            w[p + f"attention.self.{name}.bias"],
            f"{p}{name}",
        )
        return g.op("Transpose", [g.op("Reshape", [proj, split])], perm=[0, 2, 1, 3])

    q, k, v = heads("query"), heads("key"), heads("value")
    scale = g.const(f"l{i}.scale", np.array(1.0 / math.sqrt(head_dim), dtype=np.float32))
    kt = g.op("Transpose", [k], perm=[0, 1, 3, 2])
    scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, kt]), scale]), attn_bias])
    context = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
    context = g.op("Reshape", [g.op("Transpose", [context], perm=[0, 2, 1, 3]), merge])
    attn = g.linear(
        context,
        w[p + "attention.output.dense.weight"],
        w[p + "attention.output.dense.bias"],
        f"{p}attn_out",
    )
    x = g.layer_norm(
        g.op("Add", [attn, x]),
        w[p + "attention.output.LayerNorm.weight"],
        w[p + "attention.output.LayerNorm.bias"],
        f"{p}attn_ln",
        spec.ln_eps,
    )

    hidden = g.linear(
        x, w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"], f"{p}ffn_in"
    )
    # Exact GELU as in BERT: 0.5 * h * (1 + erf(h / sqrt(2))).
    inv_sqrt2 = g.const(f"l{i}.inv_sqrt2", np.array(1 / math.sqrt(2), dtype=np.float32))
    one = g.const(f"l{i}.one", np.array(1.0, dtype=np.float32))
    half = g.const(f"l{i}.half", np.array(0.5, dtype=np.float32))
    erf = g.op("Erf", [g.op("Mul", [hidden, inv_sqrt2])])
    gelu = g.op("Mul", [g.op("Mul", [hidden, half]), g.op("Add", [erf, one])])
    out = g.linear(gelu, w[p + "output.dense.weight"], w[p + "output.dense.bias"], f"{p}ffn_out")
    return g.layer_norm(
        g.op("Add", [out, x]),
        w[p + "output.LayerNorm.weight"],
        w[p + "output.LayerNorm.bias"],
        f"{p}out_ln",
        spec.ln_eps,
    )


def _relative_bias(
    g: _Builder, w: dict[str, np.ndarray], spec: EncoderSpec, seq_len: str, zero: str
) -> str:
    """MPNet's relative-position bias [1,H,T,T], shared by every layer: the [T,T] corner
    of a precomputed bucket table, looked up in the learned [buckets, H] table."""
    table = g.const("relative.buckets", relative_position_buckets(spec, MAX_POSITIONS))
    one = g.const("one_1d", np.array([1], dtype=np.int64))
    rows = g.op("Slice", [table, zero, seq_len, zero])
    buckets = g.op("Slice", [rows, zero, seq_len, one])
    bias = g.const("relative.bias", w[RELATIVE_BIAS].astype(np.float32))
    per_pair = g.op("Gather", [bias, buckets], axis=0)  # [T,T,H]
    return g.op("Unsqueeze", [g.op("Transpose", [per_pair], perm=[2, 0, 1]), zero])


def build_encoder_nodes(
    g: _Builder, w: dict[str, np.ndarray], input_ids: str, attention_mask: str
) -> tuple[str, list[str]]:
    """Add the encoder to ``g``; return the normalised embedding and each layer's
    masked mean (used by heads that look at more than the last layer)."""
    spec = spec_of(w)
    pos_table = w["embeddings.position_embeddings.weight"][spec.position_offset :]
    if "embeddings.token_type_embeddings.weight" in w:
        # token_type_ids are always 0 for single sentences, so fold that row into the
        # position table instead of taking a third input.
        pos_table = pos_table + w["embeddings.token_type_embeddings.weight"][0]
    word = g.const("embeddings.word", w["embeddings.word_embeddings.weight"].astype(np.float32))
    pos = g.const("embeddings.position", pos_table.astype(np.float32))

    # Position rows 0..T-1 as a Slice of the table (1-D starts/ends keep ORT happy).
    seq_len = g.op("Shape", [input_ids], start=1, end=2)
    zero = g.const("zero_1d", np.array([0], dtype=np.int64))
    positions = g.op("Slice", [pos, zero, seq_len, zero])
    x = g.op("Add", [g.op("Gather", [word, input_ids], axis=0), positions])
    x = g.layer_norm(
        x,
        w["embeddings.LayerNorm.weight"],
        w["embeddings.LayerNorm.bias"],
        "embeddings.ln",
        spec.ln_eps,
    )

    # Additive attention bias [B,1,1,T]: 0 for tokens, a large negative for padding.
    mask_f = g.op("Cast", [attention_mask], to=TensorProto.FLOAT)
    one_f = g.const("one_f", np.array(1.0, dtype=np.float32))
    neg = g.const("neg_big", np.array(-1e9, dtype=np.float32))
    attn_bias = g.op(
        "Unsqueeze",
        [
            g.op("Mul", [g.op("Sub", [one_f, mask_f]), neg]),
            g.const("axes12", np.array([1, 2], dtype=np.int64)),
        ],
    )
    if spec.relative_buckets:
        attn_bias = g.op("Add", [attn_bias, _relative_bias(g, w, spec, seq_len, zero)])

    # Masked mean pooling: sum(h * m) / max(sum(m), 1e-9), as sentence-transformers.
    mask3 = g.op("Unsqueeze", [mask_f, g.const("axes2", np.array([2], dtype=np.int64))])
    axis1 = g.const("axis1", np.array([1], dtype=np.int64))
    count = g.op(
        "Max",
        [
            g.op("ReduceSum", [mask3, axis1], keepdims=0),
            g.const("min_count", np.array(1e-9, dtype=np.float32)),
        ],
    )

    def pool(h: str) -> str:
        return g.op("Div", [g.op("ReduceSum", [g.op("Mul", [h, mask3]), axis1], keepdims=0), count])

    layer_means = [pool(x)]
    g.hidden_states = [x]
    for i in range(spec.layers):
        x = _encoder_layer(g, x, attn_bias, w, i, spec)
        layer_means.append(pool(x))
        g.hidden_states.append(x)

    mean = layer_means[-1]
    axis_last = g.const("axis_last", np.array([-1], dtype=np.int64))
    norm = g.op(
        "Max",
        [
            g.op("ReduceL2", [mean, axis_last], keepdims=1),
            g.const("min_norm", np.array(1e-12, dtype=np.float32)),
        ],
    )
    return g.op("Div", [mean, norm]), layer_means


def text_inputs() -> list[onnx.ValueInfoProto]:
    return [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"]),
    ]


def finish_model(
    g: _Builder, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto], name: str
) -> onnx.ModelProto:
    graph = helper.make_graph(g.nodes, name, inputs, outputs, initializer=g.inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="lumen-models"
    )
    model.ir_version = 8  # readable by every onnxruntime >= 1.10
    onnx.checker.check_model(model)
    return model


def build_encoder(
    weights: dict[str, np.ndarray], with_layer_means: bool = False, hidden_after: int | None = None
) -> onnx.ModelProto:
    """``input_ids``/``attention_mask`` int64 [B,T] -> ``embedding`` float32 [B,D]
    (unit norm; D = 384 for MiniLM, 768 for MPNet). Training-only extras:
    ``with_layer_means`` adds ``layer_means`` [B,layers+1,D]; ``hidden_after=n`` adds
    ``hidden`` [B,T,D], the token states after ``n`` layers (the input of the layers
    that fine-tuning updates)."""
    spec = spec_of(weights)
    g = _Builder()
    emb, means = build_encoder_nodes(g, weights, "input_ids", "attention_mask")
    g.nodes.append(helper.make_node("Identity", [emb], ["embedding"]))
    outputs = [
        helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", spec.hidden])
    ]
    if hidden_after is not None:
        g.nodes.append(helper.make_node("Identity", [g.hidden_states[hidden_after]], ["hidden"]))
        outputs.append(
            helper.make_tensor_value_info(
                "hidden", TensorProto.FLOAT, ["batch", "tokens", spec.hidden]
            )
        )
    if with_layer_means:
        ax = g.const("axis_stack", np.array([1], dtype=np.int64))
        stacked = [g.op("Unsqueeze", [m, ax]) for m in means]
        g.nodes.append(helper.make_node("Concat", stacked, ["layer_means"], axis=1))
        outputs.append(
            helper.make_tensor_value_info(
                "layer_means", TensorProto.FLOAT, ["batch", spec.layers + 1, spec.hidden]
            )
        )
    return finish_model(g, text_inputs(), outputs, spec.model.split("/")[-1].lower())
