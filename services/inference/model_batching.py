"""A model's batching knobs: the built-in defaults, then its task's (the runtime's), then
what its ``config.json`` declares with Triton's names, then the environment's overrides."""

from __future__ import annotations

from typing import Any

from services.inference.runtimes import Runtime
from services.inference.settings import BatchingConfig, InferenceSettings
from shared.model_registry import ModelConfig


def declared(config: ModelConfig, runtime: Runtime) -> BatchingConfig:
    """Triton's ``max_batch_size``, ``dynamic_batching`` and ``instance_group`` (the sum of
    the group counts: executions at once) over the task's defaults."""
    knobs: dict[str, Any] = runtime.batching_for(config)
    if config.max_batch_size is not None:
        knobs["max_batch_size"] = config.max_batch_size
    dynamic = config.dynamic_batching
    if dynamic is not None and dynamic.max_queue_delay_microseconds is not None:
        knobs["max_queue_delay_us"] = dynamic.max_queue_delay_microseconds
    if dynamic is not None and dynamic.preferred_batch_size is not None:
        knobs["preferred_batch_sizes"] = list(dynamic.preferred_batch_size)
    if config.instance_group:
        knobs["max_concurrent_batches"] = sum(group.count for group in config.instance_group)
    return BatchingConfig(**knobs)


def batching_of(
    name: str, config: ModelConfig, runtime: Runtime, settings: InferenceSettings
) -> BatchingConfig:
    return settings.batching_for(name, declared(config, runtime))
