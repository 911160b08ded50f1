"""The registry's text encoder run directly with onnxruntime, outside the server: what
``lumen kb load`` and the retrieval benchmark embed passages with. The server embeds queries
with the same model through its batcher; a passage embedded here with another version than
the one served is re-embedded by the server (the versions differ in their graph's sha256)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from models.runtime.text import TextTokenizer
from services.inference.knowledge_base import Embed, EncoderId
from shared.model_registry import get_version

BATCH = 32


def registry_encoder(
    root: str | Path | None = None, name: str = "text-encoder", version: int | None = None
) -> tuple[Embed, EncoderId]:
    """(embed texts -> unit-norm rows, the encoder's identity); newest version by default."""
    found = get_version(name, version, root)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(
        str(found.path / "model.onnx"), options, providers=["CPUExecutionProvider"]
    )
    tokenizer = TextTokenizer(found.path / "tokenizer.json")
    output = (found.config.output_roles or {}).get("embedding", "embedding")
    wanted = {i.name for i in session.get_inputs()}

    def embed(texts: list[str]) -> np.ndarray:
        rows = []
        for start in range(0, len(texts), BATCH):
            inputs = tokenizer.encode(texts[start : start + BATCH])
            feed = {k: v for k, v in inputs.items() if k in wanted}
            rows.append(np.asarray(session.run([output], feed)[0], dtype=np.float32))
        return np.concatenate(rows) if rows else np.zeros((0, 0), np.float32)

    return embed, EncoderId(found.name, found.version, found.config.sha256)
