"""Inference settings: per-model batching knobs merged with the environment, thread spinning."""

from __future__ import annotations

import pytest

from services.inference.runtime import session_options
from services.inference.settings import InferenceSettings


def test_the_recommender_batches_without_a_queue_delay_by_default() -> None:
    settings = InferenceSettings()
    assert settings.batching_for("recommender").max_queue_delay_us == 0
    assert settings.batching_for("intent-classifier") == settings.batching_default
    assert settings.batching_default.max_queue_delay_us == 1000


def test_environment_entries_merge_over_the_per_model_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LUMEN_INFERENCE_BATCHING", '{"intent-classifier": {"max_batch_size": 8}}')
    settings = InferenceSettings()
    assert settings.batching_for("intent-classifier").max_batch_size == 8
    assert settings.batching_for("recommender").max_queue_delay_us == 0

    monkeypatch.setenv("LUMEN_INFERENCE_BATCHING", '{"recommender": {"max_queue_delay_us": 500}}')
    recommender = InferenceSettings().batching_for("recommender")
    assert recommender.max_queue_delay_us == 500
    assert recommender.inline_max_rows == 8  # the knobs not given keep the shipped values

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
    options = session_options(settings.intra_op_threads, settings.inter_op_threads,
                              settings.graph_optimization, settings.allow_spinning)  # fmt: skip
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == flag
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == flag
