"""Batch text embedding through an onnxruntime session, with an on-disk cache."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tqdm import tqdm

from models.runtime.text import TextTokenizer


def run_text_graph(
    sess: ort.InferenceSession,
    tokenizer: TextTokenizer,
    texts: Sequence[str],
    outputs: Sequence[str] = ("embedding",),
    batch_size: int = 64,
    desc: str = "embedding",
) -> list[np.ndarray]:
    """Run a text graph over ``texts``; batches are length-sorted so padding stays small."""
    order = np.argsort([len(t) for t in texts], kind="stable")
    chunks: list[list[np.ndarray]] = [[] for _ in outputs]
    for start in tqdm(
        range(0, len(texts), batch_size), desc=desc, unit="batch", disable=len(texts) <= batch_size
    ):
        batch = [texts[i] for i in order[start : start + batch_size]]
        results = sess.run(list(outputs), tokenizer.encode(batch))
        for store, value in zip(chunks, results, strict=True):
            store.append(value)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return [np.concatenate(c)[inverse] if c else np.zeros((0,)) for c in chunks]


def cached_features(
    sess: ort.InferenceSession,
    tokenizer: TextTokenizer,
    texts: Sequence[str],
    cache: Path,
    key: str,
    outputs: Sequence[str] = ("embedding",),
) -> list[np.ndarray]:
    """Like :func:`run_text_graph` but reuses ``cache/<hash>.npz`` for identical inputs."""
    digest = hashlib.sha256(("\x00".join([key, *outputs, *texts])).encode()).hexdigest()[:16]
    path = cache / f"features-{digest}.npz"
    if path.exists():
        with np.load(path) as data:
            return [data[name] for name in outputs]
    values = run_text_graph(sess, tokenizer, texts, outputs, desc=f"encoding {len(texts)} texts")
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **dict(zip(outputs, values, strict=True)))  # type: ignore[arg-type]
    return values
