"""The two sentence-encoder families Lumen builds graphs for, and what tells them apart.

Both are post-LayerNorm transformers with exact GELU, masked mean pooling and L2
normalisation (sentence-transformers' recipe), so one graph builder and one JAX
forward serve both. They differ in size and in how tokens learn their position:

- all-MiniLM-L6-v2 (BERT): absolute position rows from 0 plus token-type row 0.
- all-mpnet-base-v2 (MPNet): absolute position rows from 2 (RoBERTa-style, after the
  padding index) plus a relative-position bias per head, computed once from 32 log
  buckets and added to every layer's attention scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from models.sources import SourceError

RELATIVE_BIAS = "encoder.relative_attention_bias.weight"


@dataclass(frozen=True)
class EncoderSpec:
    key: str  # short name used in configs and fingerprints
    model: str  # upstream sentence-transformers name
    label: str  # short name for descriptions and cards
    hidden: int
    heads: int
    layers: int
    ln_eps: float
    position_offset: int  # position row of the first token
    framing: tuple[str, str, int]  # tokenizer.json's first and last special token, pad id
    relative_buckets: int = 0  # 0 = no relative-position bias
    relative_max_distance: int = 128

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


MINILM = EncoderSpec(
    key="minilm",
    model="sentence-transformers/all-MiniLM-L6-v2",
    label="MiniLM",
    hidden=384,
    heads=12,
    layers=6,
    ln_eps=1e-12,
    position_offset=0,
    framing=("[CLS]", "[SEP]", 0),
)
MPNET = EncoderSpec(
    key="mpnet",
    model="sentence-transformers/all-mpnet-base-v2",
    label="MPNet",
    hidden=768,
    heads=12,
    layers=12,
    ln_eps=1e-5,
    position_offset=2,
    framing=("<s>", "</s>", 1),
    relative_buckets=32,
)
SPECS = {s.key: s for s in (MINILM, MPNET)}


def spec_of(weights: dict[str, np.ndarray]) -> EncoderSpec:
    """Which family a (name-normalised) checkpoint belongs to; refuses other shapes."""
    spec = MPNET if RELATIVE_BIAS in weights else MINILM
    hidden = weights["embeddings.word_embeddings.weight"].shape[1]
    layers = len({k.split(".")[2] for k in weights if k.startswith("encoder.layer.")})
    if (hidden, layers) != (spec.hidden, spec.layers):
        raise SourceError(
            f"unsupported {spec.label} checkpoint: hidden {hidden}, {layers} layers "
            f"(expected {spec.hidden}, {spec.layers} as in {spec.model})"
        )
    return spec


def relative_position_buckets(spec: EncoderSpec, length: int) -> np.ndarray:
    """[length, length] bucket of key position j seen from query position i.

    Half the buckets are for keys before the query, half for keys after; within each
    half, distances below a quarter of the buckets get their own bucket and longer
    ones share log-spaced buckets up to ``relative_max_distance``.
    """
    half = spec.relative_buckets // 2
    exact = half // 2
    positions = np.arange(length)
    distance = positions[:, None] - positions[None, :]  # query minus key
    bucket = (distance < 0).astype(np.int64) * half
    n = np.abs(distance)
    scaled = np.log(np.maximum(n, 1) / exact) / math.log(spec.relative_max_distance / exact)
    far = np.minimum(exact + (scaled * (half - exact)).astype(np.int64), half - 1)
    return bucket + np.where(n < exact, n, far)
