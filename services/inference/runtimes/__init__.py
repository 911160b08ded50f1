"""Model runtimes, registered by the task a model's ``config.json`` declares.

Adding a model kind with a typed API: a runtime here (extras, encode, decode by role), its
messages in ``protos/lumen/v1``, its client method; the builder writes ``task`` and
``output_roles``. A task without a runtime is served over ``ModelInfer`` only.
"""

from __future__ import annotations

import logging

from services.inference.runtimes.base import Ranked, Runtime, Tensors
from services.inference.runtimes.embedding import TextEmbedding
from services.inference.runtimes.files import Extras
from services.inference.runtimes.intent import IntentClassification
from services.inference.runtimes.legacy_roles import derive_roles
from services.inference.runtimes.recommendation import NextItemRecommendation
from services.inference.runtimes.search import SemanticSearch
from shared.model_registry import ModelConfig

log = logging.getLogger(__name__)

RUNTIMES: dict[str, Runtime] = {
    runtime.task: runtime
    for runtime in (
        IntentClassification(),
        TextEmbedding(),
        SemanticSearch(),
        NextItemRecommendation(),
    )
}
OPEN_INFERENCE_ONLY = Runtime()


def runtime_for(task: str) -> Runtime:
    return RUNTIMES.get(task, OPEN_INFERENCE_ONLY)


def output_roles(config: ModelConfig) -> dict[str, str]:
    """The roles ``config.json`` declares; for a folder written before it declared any, the
    roles the output names imply (logged, so that a rebuild can be planned)."""
    if config.output_roles:
        return dict(config.output_roles)
    derived = derive_roles(config)
    if derived:
        log.warning(
            "output roles derived from output names",
            extra={
                "fields": {
                    "model": config.name,
                    "version": config.version,
                    "task": config.task,
                    "roles": derived,
                }
            },
        )
    return derived


__all__ = [
    "RUNTIMES",
    "Extras",
    "IntentClassification",
    "NextItemRecommendation",
    "Ranked",
    "Runtime",
    "SemanticSearch",
    "Tensors",
    "TextEmbedding",
    "output_roles",
    "runtime_for",
]
