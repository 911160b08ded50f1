"""Per-model batching knobs: built-in defaults, merged with what the environment sets."""

from __future__ import annotations

import pytest

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
    assert InferenceSettings().batching_for("recommender").max_queue_delay_us == 500
