"""Open Inference Protocol (v2) tensors <-> numpy, and request checks against a model config.

Pure functions: no gRPC server, no onnxruntime.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import inference.grpc_service_pb2 as pb
import numpy as np

from services.inference.errors import InvalidArgument
from shared.model_registry import ModelConfig, TensorSpec

V2_NUMPY: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
CONFIG_TO_V2 = {
    "int64": "INT64",
    "int32": "INT32",
    "float32": "FP32",
    "bool": "BOOL",
    "string": "BYTES",
}
# Which typed field of InferTensorContents carries each datatype.
CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def v2_datatype(array: np.ndarray) -> str:
    if array.dtype == object:
        return "BYTES"
    for name, dtype in V2_NUMPY.items():
        if name != "BYTES" and array.dtype == dtype:
            return name
    raise InvalidArgument(f"unsupported dtype {array.dtype}")


def metadata_shape(spec: TensorSpec) -> list[int]:
    return [d if isinstance(d, int) else -1 for d in spec.shape]


def _deserialize_bytes(raw: bytes, count: int) -> np.ndarray:
    """BYTES raw form: each element is a 4-byte little-endian length, then the bytes."""
    items: list[bytes] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise InvalidArgument("truncated BYTES tensor")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        items.append(raw[offset : offset + length])
        offset += length
    if len(items) != count:
        raise InvalidArgument(f"BYTES tensor holds {len(items)} elements, shape needs {count}")
    return np.array(items, dtype=object)


def decode_input(tensor: pb.ModelInferRequest.InferInputTensor, raw: bytes | None) -> np.ndarray:
    if tensor.datatype not in V2_NUMPY:
        raise InvalidArgument(f"input {tensor.name}: unknown datatype {tensor.datatype!r}")
    shape = [int(d) for d in tensor.shape]
    if any(d < 0 for d in shape):
        raise InvalidArgument(f"input {tensor.name}: negative dimension in shape {shape}")
    count = int(np.prod(shape)) if shape else 1
    dtype = V2_NUMPY[tensor.datatype]
    if raw is not None:
        if tensor.datatype == "BYTES":
            flat = _deserialize_bytes(raw, count)
        else:
            if len(raw) != count * dtype.itemsize:
                raise InvalidArgument(
                    f"input {tensor.name}: {len(raw)} raw bytes, shape {shape} of "
                    f"{tensor.datatype} needs {count * dtype.itemsize}"
                )
            flat = np.frombuffer(raw, dtype=dtype)
    else:
        field = CONTENTS_FIELD.get(tensor.datatype)
        if field is None:
            raise InvalidArgument(f"input {tensor.name}: {tensor.datatype} needs raw contents")
        values = getattr(tensor.contents, field)
        if len(values) != count:
            raise InvalidArgument(
                f"input {tensor.name}: {len(values)} values, shape {shape} needs {count}"
            )
        flat = np.array(list(values), dtype=dtype)
    return flat.reshape(shape)


def decode_inputs(request: pb.ModelInferRequest) -> dict[str, np.ndarray]:
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise InvalidArgument(
            f"{len(raw)} raw_input_contents for {len(request.inputs)} inputs (must be equal)"
        )
    if raw and any(t.HasField("contents") for t in request.inputs):
        raise InvalidArgument("an input carries typed contents alongside raw_input_contents")
    decoded: dict[str, np.ndarray] = {}
    for i, tensor in enumerate(request.inputs):
        if tensor.name in decoded:
            raise InvalidArgument(f"input {tensor.name} is given twice")
        decoded[tensor.name] = decode_input(tensor, raw[i] if raw else None)
    return decoded


def check_inputs(
    inputs: dict[str, np.ndarray], config: ModelConfig, max_batch: int
) -> dict[str, np.ndarray]:
    """Names, datatypes, ranks and fixed dimensions as the model declares them; converted to
    the model's dtype (string inputs become str). Returns the tensors to run."""
    declared = {t.name: t for t in config.inputs}
    missing = sorted(set(declared) - set(inputs))
    unknown = sorted(set(inputs) - set(declared))
    if missing or unknown:
        raise InvalidArgument(
            f"inputs missing {missing}, unknown {unknown}; {config.name} takes {sorted(declared)}"
        )
    batch_sizes = set()
    out: dict[str, np.ndarray] = {}
    for name, array in inputs.items():
        spec = declared[name]
        want = CONFIG_TO_V2[spec.dtype]
        got = v2_datatype(array)
        if got != want:
            raise InvalidArgument(f"input {name}: datatype {got}, {config.name} expects {want}")
        if array.ndim != len(spec.shape):
            raise InvalidArgument(
                f"input {name}: shape {list(array.shape)}, "
                f"{config.name} expects {metadata_shape(spec)}"
            )
        for axis, (size, expected) in enumerate(zip(array.shape, spec.shape, strict=True)):
            if isinstance(expected, int) and size != expected:
                raise InvalidArgument(
                    f"input {name}: axis {axis} is {size}, {config.name} expects {expected}"
                )
        if spec.shape and isinstance(spec.shape[0], str):
            batch_sizes.add(array.shape[0])
        out[name] = (
            np.array([v.decode("utf-8", "replace") for v in array.ravel()], dtype=object).reshape(
                array.shape
            )
            if spec.dtype == "string"
            else array
        )
    if len(batch_sizes) > 1:
        raise InvalidArgument(f"inputs disagree on the batch size: {sorted(batch_sizes)}")
    if batch_sizes and max_batch > 1 and max(batch_sizes) > max_batch:
        raise InvalidArgument(
            f"batch of {max(batch_sizes)} exceeds {config.name}'s max batch size {max_batch}"
        )
    if batch_sizes and min(batch_sizes) == 0:
        raise InvalidArgument("empty batch")
    check_item_values(out, config)
    return out


def check_item_values(inputs: dict[str, np.ndarray], config: ModelConfig) -> None:
    """Values a top-k graph over a catalogue cannot run: item rows past the catalogue, more
    history positions than the model was trained for, k above the catalogue size. Caught
    here, they are the caller's INVALID_ARGUMENT; left to onnxruntime, they would fail the
    whole dynamic batch, other callers' requests included."""
    items: int | None = None
    for spec in config.inputs:
        if spec.name == "exclude_mask" and len(spec.shape) == 2 and isinstance(spec.shape[1], int):
            items = spec.shape[1]
    if "catalogue" in inputs and inputs["catalogue"].ndim == 2:
        items = inputs["catalogue"].shape[0]
    recent = inputs.get("recent_items")
    if recent is not None and recent.ndim == 2:
        longest = config.max_history()
        if longest is not None and recent.shape[1] > longest:
            raise InvalidArgument(
                f"recent_items: {recent.shape[1]} positions, {config.name} takes at most {longest}"
            )
        if recent.size and int(recent.min()) < -1:
            raise InvalidArgument(
                f"recent_items: row {int(recent.min())} is negative (-1 pads, rows start at 0)"
            )
        if items is not None and recent.size and int(recent.max()) >= items:
            raise InvalidArgument(
                f"recent_items: row {int(recent.max())} is past the "
                f"{items}-item catalogue (-1 pads)"
            )
    k = inputs.get("k")
    if k is None or not k.size or k.dtype.kind not in "iu":
        return
    low, high = int(k.min()), int(k.max())
    if low < 0 or (items is not None and high > items):
        limit = items if items is not None else "the catalogue size"
        raise InvalidArgument(f"k must be between 0 and {limit} ({low if low < 0 else high} sent)")


def encode_outputs(
    outputs: dict[str, np.ndarray], requested: Sequence[str], config: ModelConfig
) -> tuple[list[pb.ModelInferResponse.InferOutputTensor], list[bytes]]:
    """Outputs in raw form (as Triton answers), in the requested or declared order."""
    names = list(requested) or [t.name for t in config.outputs]
    unknown = [n for n in names if n not in outputs]
    if unknown:
        raise InvalidArgument(f"unknown outputs {unknown}; {config.name} has {sorted(outputs)}")
    tensors, raw = [], []
    for name in names:
        array = np.asarray(outputs[name])
        datatype = v2_datatype(array)
        tensors.append(
            pb.ModelInferResponse.InferOutputTensor(
                name=name, datatype=datatype, shape=list(array.shape)
            )
        )
        if datatype == "BYTES":
            raw.append(
                b"".join(
                    struct.pack("<I", len(b)) + b
                    for b in (v if isinstance(v, bytes) else str(v).encode() for v in array.ravel())
                )
            )
        else:
            raw.append(np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes())
    return tensors, raw


def decode_output(tensor: pb.ModelInferResponse.InferOutputTensor, raw: bytes) -> np.ndarray:
    """Client side of :func:`encode_outputs` (used by tests and the benchmark)."""
    dtype = V2_NUMPY[tensor.datatype]
    if tensor.datatype == "BYTES":
        return _deserialize_bytes(raw, int(np.prod(tensor.shape))).reshape(list(tensor.shape))
    return np.frombuffer(raw, dtype=dtype).reshape(list(tensor.shape))
