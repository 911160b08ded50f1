"""Output roles of version folders written before ``config.json`` declared them.

The one place that still reads meaning into output names, with the rule the server applied
to every request until roles were declared: an intent model's scores are the float output
whose name holds "prob" (else the first float output), logits when the name holds "logit" or
``postprocessing.softmax`` is set; an encoder's vector is the output whose name holds
"embedding" (else the first); top-k graphs name theirs ``top_items``, ``top_scores`` and
``top_reasons``. Applied once when such a version loads, and logged.
"""

from __future__ import annotations

from shared.model_registry import ModelConfig

TOP_K_NAMES = {"items": "top_items", "scores": "top_scores", "reasons": "top_reasons"}


def derive_roles(config: ModelConfig) -> dict[str, str]:
    names = [spec.name for spec in config.outputs]
    if config.task == "intent-classification":
        floats = [spec.name for spec in config.outputs if spec.dtype == "float32"]
        name = next((n for n in floats if "prob" in n), floats[0] if floats else None)
        if name is None:
            return {}
        logits = "logit" in name or bool(config.postprocessing.get("softmax"))
        return {"logits" if logits else "probabilities": name}
    if config.task == "text-embedding":
        name = next((n for n in names if "embedding" in n), names[0] if names else None)
        return {"embedding": name} if name is not None else {}
    if config.task in ("semantic-search", "next-item-recommendation"):
        return {role: name for role, name in TOP_K_NAMES.items() if name in names}
    return {}
