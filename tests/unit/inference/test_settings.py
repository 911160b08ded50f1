"""Inference settings: the environment overriding a model's declared batching knobs, thread
spinning."""

from __future__ import annotations

import pytest

from services.inference.runtime import session_options
from services.inference.settings import BatchingConfig, InferenceSettings


def test_without_environment_a_model_keeps_the_knobs_it_declares() -> None:
    declared = BatchingConfig(max_batch_size=4, max_queue_delay_us=0, inline_max_rows=8)
    settings = InferenceSettings()
    assert settings.batching_for("recommender", declared) == declared
    assert settings.batching_for("anything") == BatchingConfig()


def test_environment_knobs_override_the_declared_ones_field_by_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    declared = BatchingConfig(max_batch_size=4, max_queue_delay_us=0, inline_max_rows=8)
    monkeypatch.setenv("LUMEN_INFERENCE_BATCHING_DEFAULT", '{"max_concurrent_batches": 1}')
    monkeypatch.setenv("LUMEN_INFERENCE_BATCHING", '{"recommender": {"max_queue_delay_us": 500}}')
    settings = InferenceSettings()
    recommender = settings.batching_for("recommender", declared)
    assert recommender.max_queue_delay_us == 500  # this model's override
    assert recommender.max_concurrent_batches == 1  # every model's override
    assert (recommender.max_batch_size, recommender.inline_max_rows) == (4, 8)  # declared
    other = settings.batching_for("intent-classifier", declared)
    assert (other.max_queue_delay_us, other.max_concurrent_batches) == (0, 1)

    monkeypatch.setenv("LUMEN_INFERENCE_BATCHING", '{"recommender": {"max_batch_size": "many"}}')
    with pytest.raises(ValueError, match="max_batch_size"):
        InferenceSettings()


@pytest.mark.parametrize(("environment", "flag"), [(None, "0"), ("true", "1"), ("false", "0")])
def test_thread_spinning_reaches_the_onnxruntime_sessions(
    monkeypatch: pytest.MonkeyPatch, environment: str | None, flag: str
) -> None:
    if environment is not None:
        monkeypatch.setenv("LUMEN_INFERENCE_ALLOW_SPINNING", environment)
    settings = InferenceSettings()
    options = session_options(
        settings.intra_op_threads,
        settings.inter_op_threads,
        settings.graph_optimization,
        settings.allow_spinning,
    )
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == flag
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == flag
