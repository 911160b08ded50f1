"""Which encoder each intent model is fine-tuned from, and how to change it."""

from __future__ import annotations

import pytest

from models.intent.train import DEFAULT_PARAMS, distillation_for, params_for


@pytest.fixture(autouse=True)
def no_encoder_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LUMEN_INTENT_ENCODER", raising=False)
    monkeypatch.delenv("LUMEN_INTENT_DISTILL", raising=False)


def test_defaults_pick_the_encoder_per_dataset() -> None:
    assert params_for("banking77").encoder == "mpnet"
    assert params_for("clinc150").encoder == "minilm"
    assert distillation_for("banking77") is None  # distillation is asked for


def test_banking77_is_distilled_from_mpnet_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUMEN_INTENT_DISTILL", "1")
    assert params_for("banking77").encoder == "minilm"  # the student
    distill = distillation_for("banking77")
    assert distill is not None and distill.teacher.encoder == "mpnet"
    assert 0.0 <= distill.alpha < 1.0 and distill.temperature > 0
    assert distillation_for("clinc150") is None
    # CI-sized builds keep the path but not the large teacher
    small = distillation_for("banking77", small=True)
    assert small is not None and small.teacher.encoder == "minilm"


def test_naming_the_encoder_turns_distillation_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUMEN_INTENT_DISTILL", "1")
    monkeypatch.setenv("LUMEN_INTENT_ENCODER", "mpnet")
    assert distillation_for("banking77") is None
    assert params_for("banking77").encoder == "mpnet"


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
