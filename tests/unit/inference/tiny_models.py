"""Tiny ONNX models in the registry layout, built with the onnx helper API, so inference
tests do not depend on the default models. They keep the input/output signatures of the
real ones (intent classifier, text encoder, item search, recommender)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

from shared.model_registry import ModelConfig, TensorSpec, save_config, sha256_file

OPSET = 18
WORDS = [
    "balance",
    "refund",
    "transfer",
    "money",
    "my",
    "what",
    "is",
    "the",
    "a",
    "weather",
    "space",
    "love",
    "toy",
    "story",
    "robots",
    "cowboys",
]
INTENTS = ["balance", "refund", "transfer"]
ITEMS = [f"m{i}" for i in range(1, 9)]
TITLES = [
    "Toy Story",
    "Space Robots",
    "Love Story",
    "Cowboys",
    "Money Heist",
    "Balance",
    "Refund Blues",
    "Transfer Window",
]
CATEGORIES = [
    ["Animation"],
    ["Sci-Fi"],
    ["Romance"],
    ["Western"],
    ["Crime"],
    ["Drama"],
    ["Comedy"],
    ["Drama", "Sport"],
]
HISTORY = 4
DIM = 8


def vocabulary() -> dict[str, int]:
    return {"[PAD]": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(WORDS)}}


def tokenizer_json() -> str:
    tok = Tokenizer(models.WordLevel(vocabulary(), unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return tok.to_str()


def _model(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    inits: list[onnx.TensorProto],
) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _token_inputs() -> list[onnx.ValueInfoProto]:
    return [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"]),
    ]


def _masked_mean(
    table: np.ndarray, name: str
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes computing the masked mean of ``table[input_ids]`` into ``name``."""
    inits = [
        numpy_helper.from_array(table.astype(np.float32), "table"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
        numpy_helper.from_array(np.array(1e-9, dtype=np.float32), "tiny"),
    ]
    mk = helper.make_node
    nodes = [
        mk("Gather", ["table", "input_ids"], ["rows"], axis=0),
        mk("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        mk("Unsqueeze", ["mask_f", "axis2"], ["mask3"]),
        mk("Mul", ["rows", "mask3"], ["masked"]),
        mk("ReduceSum", ["masked", "axis1"], ["total"], keepdims=0),
        mk("ReduceSum", ["mask3", "axis1"], ["count0"], keepdims=0),
        mk("Max", ["count0", "tiny"], ["count"]),
        mk("Div", ["total", "count"], [name]),
    ]
    return nodes, inits


def intent_model(scale: float = 4.0) -> onnx.ModelProto:
    table = np.zeros((len(vocabulary()), len(INTENTS)), dtype=np.float32)
    for c, word in enumerate(INTENTS):
        table[vocabulary()[word], c] = scale
    nodes, inits = _masked_mean(table, "logits")
    nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1))
    out = [
        helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", len(INTENTS)])
    ]
    return _model(nodes, _token_inputs(), out, inits)


def encoder_table() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.normal(size=(len(vocabulary()), DIM)).astype(np.float32)


def encoder_model() -> onnx.ModelProto:
    nodes, inits = _masked_mean(encoder_table(), "mean")
    inits.append(numpy_helper.from_array(np.array([-1], dtype=np.int64), "axis_last"))
    nodes += [
        helper.make_node("ReduceL2", ["mean", "axis_last"], ["norm0"], keepdims=1),
        helper.make_node("Max", ["norm0", "tiny"], ["norm"]),
        helper.make_node("Div", ["mean", "norm"], ["embedding"]),
    ]
    out = [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", DIM])]
    return _model(nodes, _token_inputs(), out, inits)


def catalogue_embeddings() -> np.ndarray:
    """Each title embedded like the encoder does (mean of its word rows, unit norm)."""
    table, vocab = encoder_table(), vocabulary()
    rows = []
    for title in TITLES:
        ids = [vocab.get(w.lower(), 1) for w in title.split()]
        mean = table[ids].mean(axis=0)
        rows.append(mean / np.linalg.norm(mean))
    return np.stack(rows).astype(np.float32)


def search_model() -> onnx.ModelProto:
    inits: list[onnx.TensorProto] = []
    nodes = [
        helper.make_node("Transpose", ["catalogue"], ["catalogue_t"], perm=[1, 0]),
        helper.make_node("MatMul", ["query_embedding", "catalogue_t"], ["scores"]),
        helper.make_node("TopK", ["scores", "k"], ["top_scores", "top_items"], axis=-1),
    ]
    return _model(
        nodes,
        [
            helper.make_tensor_value_info("query_embedding", TensorProto.FLOAT, ["batch", DIM]),
            helper.make_tensor_value_info("catalogue", TensorProto.FLOAT, ["items", DIM]),
            helper.make_tensor_value_info("k", TensorProto.INT64, [1]),
        ],
        [
            helper.make_tensor_value_info("top_items", TensorProto.INT64, ["batch", "k"]),
            helper.make_tensor_value_info("top_scores", TensorProto.FLOAT, ["batch", "k"]),
        ],
        inits,
    )


def item_similarity() -> np.ndarray:
    """Item i suggests item i+1 strongly and i+2 weakly (a chain, easy to reason about)."""
    n = len(ITEMS)
    sim = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        sim[i, (i + 1) % n] = 1.0
        sim[i, (i + 2) % n] = 0.5
    return sim


def _prior(boost: float) -> np.ndarray:
    prior = np.linspace(0.01, 0.001, len(ITEMS)).astype(np.float32)
    prior[-1] += boost
    return prior


def recommender_model(boost: float = 0.0) -> onnx.ModelProto:
    """The served recommender's graph (with ``top_reasons``) over the item chain, every
    history position weighted 1. ``boost`` is added to the last item's prior: a later
    version ranks differently."""
    from models.recommender.graph import build_recommender_graph

    n = len(ITEMS)
    ones, zeros = np.ones(HISTORY, dtype=np.float32), np.zeros(HISTORY, dtype=np.float32)
    return build_recommender_graph(
        item_similarity(), np.zeros((n, n), np.float32), ones, zeros, _prior(boost)
    )


def recommender_model_without_reasons(boost: float = 0.0) -> onnx.ModelProto:
    """The same scores from a graph of an earlier recommender version: no ``top_reasons``."""
    n = len(ITEMS)
    prior = _prior(boost)
    inits = [
        numpy_helper.from_array(item_similarity(), "sim"),
        numpy_helper.from_array(prior, "prior"),
        numpy_helper.from_array(np.array(0, dtype=np.int64), "zero_i"),
        numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero_f"),
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one_f"),
        numpy_helper.from_array(np.array(-3.0e38, dtype=np.float32), "neg"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
    ]
    mk = helper.make_node
    nodes = [
        mk("GreaterOrEqual", ["recent_items", "zero_i"], ["valid"]),
        mk("Where", ["valid", "recent_items", "zero_i"], ["rows"]),
        mk("Where", ["valid", "one_f", "zero_f"], ["weight"]),
        mk("Unsqueeze", ["weight", "axis2"], ["weight3"]),
        mk("Gather", ["sim", "rows"], ["sim_rows"], axis=0),
        mk("Mul", ["sim_rows", "weight3"], ["weighted"]),
        mk("ReduceSum", ["weighted", "axis1"], ["seq"], keepdims=0),
        mk("Add", ["seq", "prior"], ["raw"]),
        mk("Where", ["exclude_mask", "neg", "raw"], ["scores"]),
        mk("TopK", ["scores", "k"], ["top_scores", "top_items"], axis=-1),
    ]
    return _model(
        nodes,
        [
            helper.make_tensor_value_info("recent_items", TensorProto.INT64, ["batch", "history"]),
            helper.make_tensor_value_info("exclude_mask", TensorProto.BOOL, ["batch", n]),
            helper.make_tensor_value_info("k", TensorProto.INT64, [1]),
        ],
        [
            helper.make_tensor_value_info("top_items", TensorProto.INT64, ["batch", "k"]),
            helper.make_tensor_value_info("top_scores", TensorProto.FLOAT, ["batch", "k"]),
        ],
        inits,
    )


def _spec(name: str, dtype: str, shape: list[int | str]) -> TensorSpec:
    return TensorSpec(name=name, dtype=dtype, shape=shape)


TOKENS = [
    _spec("input_ids", "int64", ["batch", "tokens"]),
    _spec("attention_mask", "int64", ["batch", "tokens"]),
]
TOP = [_spec("top_items", "int64", ["batch", "k"]), _spec("top_scores", "float32", ["batch", "k"])]


def write_version(
    root: Path,
    name: str,
    version: int,
    model: onnx.ModelProto | bytes,
    task: str,
    inputs: list[TensorSpec],
    outputs: list[TensorSpec],
    files: dict[str, str | bytes] | None = None,
    labels: list[str] | None = None,
    extra: dict[str, object] | None = None,
    output_roles: dict[str, str] | None = None,
    serving: dict[str, Any] | None = None,
) -> Path:
    """Publish ``<root>/<name>/<version>/`` the way the model builders do (atomic rename).
    ``serving``: Triton's knobs (``max_batch_size``, ``dynamic_batching``, ``instance_group``)."""
    final = root / name / str(version)
    tmp = root / name / f".tmp-{version}"
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "model.onnx").write_bytes(
        model if isinstance(model, bytes) else model.SerializeToString()
    )
    for file_name, content in (files or {}).items():
        target = tmp / file_name
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    config = ModelConfig(
        name=name,
        version=version,
        task=task,
        inputs=inputs,
        outputs=outputs,
        labels=labels,
        sha256=sha256_file(tmp / "model.onnx"),
        files={f: sha256_file(tmp / f) for f in (files or {})},
        extra=dict(extra or {}),
        output_roles=dict(output_roles or {}),
        **(serving or {}),
    )
    save_config(config, tmp)
    (tmp / "README.md").write_text(f"# {name} {version}\n\nTest model.\n")
    tmp.rename(final)
    return final


def items_json(cold: list[str] | None = None) -> str:
    """``items.json`` of the tiny catalogue; ``cold`` items had no interactions in training."""
    data: dict[str, object] = {"item_ids": ITEMS, "titles": TITLES, "categories": CATEGORIES}
    if cold:
        data["cold"] = cold
    return json.dumps(data)


def write_intent(
    root: Path,
    version: int = 1,
    name: str = "intent-classifier",
    roles: bool = True,
    serving: dict[str, Any] | None = None,
) -> Path:
    """``roles=False`` writes the folder as builders did before config.json declared roles."""
    return write_version(
        root,
        name,
        version,
        intent_model(),
        "intent-classification",
        TOKENS,
        [_spec("probabilities", "float32", ["batch", len(INTENTS)])],
        files={"tokenizer.json": tokenizer_json()},
        labels=INTENTS,
        extra={"oos_threshold": 0.5},
        output_roles={"probabilities": "probabilities"} if roles else None,
        serving=serving,
    )


def write_encoder(root: Path, version: int = 1) -> Path:
    return write_version(
        root,
        "text-encoder",
        version,
        encoder_model(),
        "text-embedding",
        TOKENS,
        [_spec("embedding", "float32", ["batch", DIM])],
        files={"tokenizer.json": tokenizer_json()},
        output_roles={"embedding": "embedding"},
    )


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


TOP_ROLES = {"items": "top_items", "scores": "top_scores"}


def write_search(root: Path, version: int = 1) -> Path:
    return write_version(
        root,
        "item-search",
        version,
        search_model(),
        "semantic-search",
        [
            _spec("query_embedding", "float32", ["batch", DIM]),
            _spec("catalogue", "float32", ["items", DIM]),
            _spec("k", "int64", [1]),
        ],
        TOP,
        files={"items.json": items_json(), "embeddings.npy": npy_bytes(catalogue_embeddings())},
        output_roles=TOP_ROLES,
    )


def write_recommender(
    root: Path,
    version: int = 1,
    boost: float = 0.0,
    with_reasons: bool = True,
    cold: list[str] | None = None,
) -> Path:
    graph = recommender_model(boost) if with_reasons else recommender_model_without_reasons(boost)
    outputs = [*TOP, _spec("top_reasons", "int64", ["batch", "k"])] if with_reasons else TOP
    roles = {**TOP_ROLES, "reasons": "top_reasons"} if with_reasons else TOP_ROLES
    return write_version(
        root,
        "recommender",
        version,
        graph,
        "next-item-recommendation",
        [
            _spec("recent_items", "int64", ["batch", "history"]),
            _spec("exclude_mask", "bool", ["batch", len(ITEMS)]),
            _spec("k", "int64", [1]),
        ],
        outputs,
        files={"items.json": items_json(cold)},
        extra={"max_history": HISTORY},
        output_roles=roles,
    )


def write_all(root: Path) -> None:
    write_intent(root)
    write_encoder(root)
    write_search(root)
    write_recommender(root)
