"""onnxruntime sessions: tuned options, and the checks a version must pass before serving.

A version is refused when its file is not valid ONNX, when the graph's inputs and outputs
disagree with ``config.json`` (names, dtypes, ranks, fixed dimensions), or when a warm-up
run on inputs built from the config fails or returns outputs of the wrong rank.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort

from services.inference.batcher import BatchSpec
from services.inference.errors import ModelRefused
from services.inference.input_limits import InputLimits
from shared.model_registry import ModelConfig, TensorSpec

ORT_DTYPES = {
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(float)": "float32",
    "tensor(bool)": "bool",
    "tensor(string)": "string",
}
NUMPY_DTYPES: dict[str, Any] = {
    "int64": np.int64,
    "int32": np.int32,
    "float32": np.float32,
    "bool": np.bool_,
    "string": np.object_,
}
# BERT-style inputs: right-padding with 0 (and a 0 mask) leaves every result unchanged.
BATCH_AXIS = "batch"  # the registry's name of the batch dimension
TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def session_options(
    intra_op: int, inter_op: int, optimization: str, spinning: bool = False
) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op
    options.inter_op_num_threads = inter_op
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = _LEVELS[optimization]
    # Spinning worker threads wake faster for each operator (MiniLM at batch 1: 4.3 instead
    # of 5.8 ms per run here) but keep every core busy between operators and runs.
    flag = "1" if spinning else "0"
    options.add_session_config_entry("session.intra_op.allow_spinning", flag)
    options.add_session_config_entry("session.inter_op.allow_spinning", flag)
    return options


def open_session(path: str, options: ort.SessionOptions) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises several unrelated types for a bad file
        raise ModelRefused(f"onnxruntime cannot load {path}: {exc}") from exc


def _check_tensors(kind: str, actual: list[Any], declared: list[TensorSpec]) -> None:
    by_name = {t.name: t for t in actual}
    if set(by_name) != {t.name for t in declared}:
        raise ModelRefused(
            f"graph {kind} {sorted(by_name)} differ from config {sorted(t.name for t in declared)}"
        )
    for spec in declared:
        node = by_name[spec.name]
        dtype = ORT_DTYPES.get(node.type, node.type)
        if dtype != spec.dtype:
            raise ModelRefused(f"{kind[:-1]} {spec.name}: graph dtype {dtype}, config {spec.dtype}")
        if len(node.shape) != len(spec.shape):
            raise ModelRefused(
                f"{kind[:-1]} {spec.name}: graph rank {len(node.shape)}, config {len(spec.shape)}"
            )
        for axis, (got, want) in enumerate(zip(node.shape, spec.shape, strict=True)):
            if isinstance(got, int) and isinstance(want, int) and got != want:
                raise ModelRefused(
                    f"{kind[:-1]} {spec.name} axis {axis}: graph {got}, config {want}"
                )


def check_signature(session: ort.InferenceSession, config: ModelConfig) -> None:
    _check_tensors("inputs", session.get_inputs(), config.inputs)
    _check_tensors("outputs", session.get_outputs(), config.outputs)


def sample_inputs(config: ModelConfig) -> dict[str, np.ndarray]:
    """Smallest valid-looking inputs: dynamic axes of 1, ids of 1, masks true/1, floats 0."""
    sample: dict[str, np.ndarray] = {}
    for spec in config.inputs:
        shape = [d if isinstance(d, int) else 1 for d in spec.shape]
        dtype = NUMPY_DTYPES[spec.dtype]
        if spec.dtype == "string":
            sample[spec.name] = np.full(shape, "warm-up", dtype=object)
        elif spec.dtype == "bool":
            sample[spec.name] = np.zeros(shape, dtype=dtype)
        elif spec.dtype.startswith("int"):
            sample[spec.name] = np.ones(shape, dtype=dtype)
        else:
            sample[spec.name] = np.zeros(shape, dtype=dtype)
    return sample


def warm_up(session: ort.InferenceSession, config: ModelConfig) -> None:
    try:
        outputs = session.run(None, sample_inputs(config))
    except Exception as exc:
        raise ModelRefused(f"warm-up run failed: {exc}") from exc
    for spec, value in zip(session.get_outputs(), outputs, strict=True):
        declared = next(t for t in config.outputs if t.name == spec.name)
        if np.asarray(value).ndim != len(declared.shape):
            raise ModelRefused(
                f"output {spec.name} has rank {np.asarray(value).ndim}, config {len(declared.shape)}"
            )


def probe_limits(session: ort.InferenceSession, config: ModelConfig, limits: InputLimits) -> None:
    """Run the graph once with the largest value of each bounded input (the last id of the
    vocabulary): a tokenizer larger than the embedding table refuses the version at load
    instead of failing, at run time, the batches of texts holding its last ids. One token
    only: a run over the longest sequence took seconds on the MPNet model; the sequence
    bound is what the model declares or its tokenizer already truncates every text to."""
    if not limits.values:
        return
    sample = sample_inputs(config)
    for spec in config.inputs:
        allowed = limits.values.get(spec.name)
        if allowed is not None and spec.dtype.startswith("int"):
            sample[spec.name] = np.full_like(sample[spec.name], allowed.high - 1)
    try:
        session.run(None, sample)
    except Exception as exc:
        edges = {name: v.high - 1 for name, v in limits.values.items()}
        raise ModelRefused(
            f"the graph cannot run the largest values its files allow ({edges}): {exc}"
        ) from exc


def batch_spec(config: ModelConfig) -> BatchSpec:
    """Inputs/outputs whose first axis is "batch" are batched; token inputs are padded."""
    batched_in = frozenset(t.name for t in config.inputs if t.shape and t.shape[0] == BATCH_AXIS)
    batched_out = frozenset(t.name for t in config.outputs if t.shape and t.shape[0] == BATCH_AXIS)
    pad: dict[str, tuple[int, int | float]] = {}
    for spec in config.inputs:
        token_axis = len(spec.shape) == 2 and isinstance(spec.shape[1], str)
        if spec.name in batched_in and spec.name in TOKEN_INPUTS and token_axis:
            pad[spec.name] = (1, 0)
    return BatchSpec(batched_in, batched_out, pad)
