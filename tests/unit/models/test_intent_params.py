"""Which encoder each intent model is fine-tuned from, and how to change it."""

from __future__ import annotations

import pytest

from models.intent.train import DEFAULT_PARAMS, params_for


def test_defaults_pick_the_encoder_per_dataset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LUMEN_INTENT_ENCODER", raising=False)
    assert params_for("banking77").encoder == "mpnet"
    assert params_for("clinc150").encoder == "minilm"


def test_environment_swaps_the_encoder_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUMEN_INTENT_ENCODER", " MiniLM ")
    params = params_for("banking77")
    assert params.encoder == "minilm"
    assert params.top_layers == DEFAULT_PARAMS["banking77"].top_layers
    assert params.batch_size == DEFAULT_PARAMS["banking77"].batch_size


def test_unknown_encoder_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUMEN_INTENT_ENCODER", "bert-large")
    with pytest.raises(ValueError, match=r"LUMEN_INTENT_ENCODER='bert-large': choose one of"):
        params_for("banking77")
