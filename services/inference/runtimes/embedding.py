"""Text embedding: texts in, one vector per text out (``embedding``)."""

from __future__ import annotations

import numpy as np

from services.inference.runtimes.base import Runtime, Tensors
from services.inference.runtimes.files import Extras


class TextEmbedding(Runtime):
    task = "text-embedding"
    required_roles = ("embedding",)

    def encode(self, extras: Extras, texts: list[str]) -> Tensors:
        assert extras.tokenizer is not None
        return extras.tokenizer.encode(texts)

    def decode(self, roles: dict[str, str], outputs: Tensors) -> np.ndarray:
        return np.asarray(outputs[roles["embedding"]], dtype=np.float32)
