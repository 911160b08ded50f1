"""The interface of a model runtime: one per task (``config.task``).

A runtime knows what its task's model needs beside ``model.onnx`` (the extras it loads from
the version folder), how a request of its typed API becomes input tensors (``encode``) and
what the outputs mean, by the roles ``config.json`` declares in ``output_roles``
(``decode``). The graph runs through the model's batcher either way; the Open Inference
Protocol (``ModelInfer``) passes tensors through untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from services.inference.errors import ModelRefused
from services.inference.runtimes import files
from services.inference.runtimes.files import Extras
from shared.model_registry import ModelConfig

Tensors = dict[str, np.ndarray]


class Runtime:
    """Serves the models of one task. Subclasses add ``encode`` and ``decode`` for their
    typed API; the base serves a model over ``ModelInfer`` only."""

    task: ClassVar[str] = ""
    required_roles: ClassVar[tuple[str, ...]] = ()  # outputs decode cannot do without
    optional_roles: ClassVar[tuple[str, ...]] = ()
    # Batching knobs (``BatchingConfig`` fields) this task's models start from, before their
    # config.json and the environment's overrides.
    batching: ClassVar[dict[str, Any]] = {}

    def batching_for(self, config: ModelConfig) -> dict[str, Any]:
        """The task's knobs for one version (a task may tune them to the version's size)."""
        return dict(self.batching)

    def load_extras(self, path: Path, config: ModelConfig) -> Extras:
        # A tokenizer bounds what ModelInfer may send (its truncation length), whatever the task.
        return Extras(tokenizer=files.tokenizer(path, config))

    def check(self, config: ModelConfig, roles: dict[str, str], extras: Extras) -> None:
        """Refuse a version whose declared roles or side files disagree with its graph."""
        outputs = {spec.name for spec in config.outputs}
        missing = [role for role in self.required_roles if role not in roles]
        if missing:
            raise ModelRefused(f"task {self.task} needs output roles {missing}")
        for role, name in roles.items():
            if name not in outputs:
                raise ModelRefused(f"output role {role!r} names {name!r}, not an output")

    def output(self, roles: dict[str, str], outputs: Tensors, role: str) -> np.ndarray:
        return outputs[roles[role]]


@dataclass(frozen=True)
class Ranked:
    """A top-k graph's answer: rows of its item axis best first, their scores, and (when the
    graph names them) the input position behind each."""

    rows: np.ndarray
    scores: np.ndarray
    reasons: np.ndarray | None = None


def ranked(roles: dict[str, str], outputs: Tensors) -> Ranked:
    reasons = roles.get("reasons")
    return Ranked(
        outputs[roles["items"]],
        outputs[roles["scores"]],
        outputs[reasons] if reasons is not None and reasons in outputs else None,
    )
