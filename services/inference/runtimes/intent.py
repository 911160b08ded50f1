"""Intent classification: texts in, class probabilities out (``probabilities``, or
``logits`` turned into probabilities here); the labels name the class axis."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from services.inference.errors import ModelRefused
from services.inference.runtimes import files
from services.inference.runtimes.base import Runtime, Tensors
from services.inference.runtimes.files import Extras
from shared.model_registry import ModelConfig

SCORE_ROLES = ("probabilities", "logits")


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=1, keepdims=True), dtype=np.float32)


class IntentClassification(Runtime):
    task = "intent-classification"
    optional_roles = (*SCORE_ROLES, "embedding")

    def load_extras(self, path: Path, config: ModelConfig) -> Extras:
        return Extras(tokenizer=files.tokenizer(path, config), labels=files.labels(path, config))

    def check(self, config: ModelConfig, roles: dict[str, str], extras: Extras) -> None:
        super().check(config, roles, extras)
        scored = [roles[role] for role in SCORE_ROLES if role in roles]
        if not scored:
            raise ModelRefused(f"task {self.task} needs an output role among {SCORE_ROLES}")
        if extras.labels is None:
            return  # served over ModelInfer only; ClassifyIntent answers UNAVAILABLE
        for spec in config.outputs:
            classes = spec.shape[-1] if spec.shape else None
            if spec.name in scored and isinstance(classes, int) and classes != len(extras.labels):
                raise ModelRefused(
                    f"output {spec.name} has {classes} classes, {len(extras.labels)} labels"
                )

    def encode(self, extras: Extras, texts: list[str]) -> Tensors:
        assert extras.tokenizer is not None
        return extras.tokenizer.encode(texts)

    def decode(self, roles: dict[str, str], outputs: Tensors) -> np.ndarray:
        """Class probabilities, one row per text."""
        if "probabilities" in roles:
            return np.asarray(outputs[roles["probabilities"]], dtype=np.float32)
        return softmax(np.asarray(outputs[roles["logits"]], dtype=np.float32))
