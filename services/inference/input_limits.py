"""What values a model can run, read from the model itself, and the check of a request.

onnxruntime fails a whole execution on one out-of-range index (a token id past the
embedding table, a position past the position table), and the batcher runs many callers'
requests in one execution: a value the model cannot take must be refused before it is
queued, as the caller's INVALID_ARGUMENT naming the input.

The limits come from the files of the version: the tokenizer's vocabulary bounds token ids,
the declared ``max_position_embeddings`` (else the tokenizer's truncation length) bounds the
``tokens`` axis, an attention mask holds 0 or 1. Item rows and history length of the top-k
graphs are checked by :func:`services.inference.v2_codec.check_item_values`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from services.inference.errors import InvalidArgument
from shared.model_registry import ModelConfig

TOKEN_INPUTS = ("input_ids",)
MASK_INPUTS = ("attention_mask",)
TOKEN_AXIS = "tokens"


@dataclass(frozen=True)
class ValueRange:
    """Allowed integer values of one input: ``low <= v < high``; ``what`` names the limit."""

    low: int
    high: int
    what: str


@dataclass(frozen=True)
class InputLimits:
    values: dict[str, ValueRange] = field(default_factory=dict)
    axis_max: dict[str, int] = field(default_factory=dict)  # symbolic axis -> longest


def vocabulary_size(tokenizer_file: Path) -> int:
    return int(Tokenizer.from_file(str(tokenizer_file)).get_vocab_size(with_added_tokens=True))


def longest_sequence(config: ModelConfig, truncation: int | None) -> int | None:
    """Positions the model has: declared by the build, else what its tokenizer truncates to."""
    for holder in (config.extra, config.preprocessing):
        declared = holder.get("max_position_embeddings")
        if isinstance(declared, int) and not isinstance(declared, bool) and declared > 0:
            return declared
    return truncation


def limits_of(config: ModelConfig, version_dir: Path, truncation: int | None) -> InputLimits:
    """The limits of one model version (``truncation``: its tokenizer's max_tokens, if any)."""
    declared = {t.name for t in config.inputs}
    values: dict[str, ValueRange] = {}
    axis_max: dict[str, int] = {}
    if "tokenizer.json" in config.files:
        vocab = vocabulary_size(version_dir / "tokenizer.json")
        for name in TOKEN_INPUTS:
            if name in declared:
                values[name] = ValueRange(0, vocab, f"the {vocab}-token vocabulary")
        longest = longest_sequence(config, truncation)
        if longest is not None:
            axis_max[TOKEN_AXIS] = longest
    for name in MASK_INPUTS:
        if name in declared:
            values[name] = ValueRange(0, 2, "a mask of 0 and 1")
    return InputLimits(values, axis_max)


def check_limits(inputs: dict[str, np.ndarray], config: ModelConfig, limits: InputLimits) -> None:
    """Raise :class:`InvalidArgument` naming the first input the model could not run."""
    axes: dict[str, tuple[str, int]] = {}  # symbolic axis -> (first input, its size)
    for spec in config.inputs:
        array = inputs.get(spec.name)
        if array is None or array.ndim != len(spec.shape):
            continue  # names and ranks are check_inputs' job
        for axis, dim in enumerate(spec.shape):
            if not isinstance(dim, str):
                continue
            size = int(array.shape[axis])
            longest = limits.axis_max.get(dim)
            if longest is not None and size > longest:
                raise InvalidArgument(
                    f"input {spec.name}: {size} {dim}, {config.name} takes at most {longest}"
                )
            seen = axes.setdefault(dim, (spec.name, size))
            if seen[1] != size:
                raise InvalidArgument(
                    f"input {spec.name}: axis {axis} ({dim}) is {size}, "
                    f"input {seen[0]} has {seen[1]}"
                )
    for name, allowed in limits.values.items():
        array = inputs.get(name)
        if array is None or not array.size or array.dtype.kind not in "iub":
            continue
        low, high = int(array.min()), int(array.max())
        if low < allowed.low or high >= allowed.high:
            bad = low if low < allowed.low else high
            raise InvalidArgument(
                f"input {name}: value {bad} is outside {allowed.what} "
                f"({allowed.low} to {allowed.high - 1})"
            )
