"""Few-shot intent training on a tiny hand-written taxonomy (MiniLM, one tuned layer)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.intent.few_shot import FewShotModel, FewShotParams, fit_few_shot

# A small budget keeps the fine-tuning test quick.
TINY = FewShotParams(finetune=True, top_layers=1, epochs=4)

TRAIN = {
    "lost_card": [
        "I lost my card",
        "my card is missing",
        "I can't find my bank card anywhere",
        "someone stole my card",
        "my debit card was stolen yesterday",
        "where did my card go, I think I lost it",
    ],
    "exchange_rate": [
        "what is the exchange rate for euros",
        "how much is a dollar in pounds today",
        "which rate do you use to convert currency",
        "currency conversion rate please",
        "how many yen do I get for 100 euros",
        "is your exchange rate fair",
    ],
    "open_account": [
        "I want to open an account",
        "how do I sign up for a new account",
        "can I create a savings account",
        "open a bank account for me",
        "what do I need to register an account",
        "start a new account online",
    ],
    "pin_change": [
        "how do I change my PIN",
        "I want a new PIN number",
        "reset the PIN of my card",
        "can I pick a different PIN",
        "update my card's PIN code",
        "I forgot my PIN, how do I set another",
    ],
}
HELD_OUT = {
    "lost_card": ["I have misplaced my card", "my card got stolen on the bus"],
    "exchange_rate": ["what rate will I get converting dollars", "euro to pound rate?"],
    "open_account": ["I'd like to become a customer and get an account", "register a new account"],
    "pin_change": ["set a new PIN for my card", "change the PIN please"],
}


def _examples(data: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    texts = [t for texts in data.values() for t in texts]
    labels = [label for label, texts in data.items() for _ in texts]
    return texts, labels


@pytest.fixture(scope="module")
def tuned(minilm_dir: Path) -> FewShotModel:
    texts, labels = _examples(TRAIN)
    return fit_few_shot(texts, labels, seed=0, params=TINY)


@pytest.fixture(scope="module")
def frozen(minilm_dir: Path) -> FewShotModel:
    texts, labels = _examples(TRAIN)
    return fit_few_shot(texts, labels, seed=0)


@pytest.fixture(params=["frozen", "tuned"])
def model(request: pytest.FixtureRequest) -> FewShotModel:
    """Both methods: the default (frozen encoder + logistic regression) and fine-tuning."""
    fitted: FewShotModel = request.getfixturevalue(request.param)
    return fitted


def test_held_out_paraphrases_get_their_intent(model: FewShotModel) -> None:
    assert model.labels == sorted(TRAIN)
    texts, labels = _examples(HELD_OUT)
    probs = model.predict_proba(texts)
    assert probs.shape == (len(texts), 4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    predicted = [model.labels[i] for i in probs.argmax(axis=1)]
    assert predicted == labels


def test_only_fine_tuning_moves_the_encoder(
    tuned: FewShotModel, frozen: FewShotModel, minilm_dir: Path
) -> None:
    from models.encoder.graph import load_weights

    pretrained = load_weights(minilm_dir / "model.safetensors")
    changed = [k for k in pretrained if not np.array_equal(pretrained[k], tuned.weights[k])]
    assert changed, "no encoder weight changed"
    assert all(k.startswith("encoder.layer.5.") for k in changed)  # the one top layer only
    assert all(np.array_equal(pretrained[k], frozen.weights[k]) for k in pretrained)


def test_onnx_graph_matches_predict_proba(model: FewShotModel, minilm_dir: Path) -> None:
    from models.evaluation import session
    from models.runtime.text import TextTokenizer

    graph = model.to_onnx()
    assert [o.name for o in graph.graph.input] == ["input_ids", "attention_mask"]
    assert [o.name for o in graph.graph.output] == ["probabilities", "embedding"]
    texts, _ = _examples(HELD_OUT)
    sess = session(graph.SerializeToString())
    probs, emb = sess.run(
        ["probabilities", "embedding"], TextTokenizer(minilm_dir / "tokenizer.json").encode(texts)
    )
    np.testing.assert_allclose(probs, model.predict_proba(texts), atol=1e-4)
    np.testing.assert_allclose(emb, model.embed(texts), atol=1e-4)


def test_two_intents_fit_a_two_column_model(minilm_dir: Path) -> None:
    from models.evaluation import session
    from models.runtime.text import TextTokenizer

    texts, labels = _examples({k: TRAIN[k] for k in ("lost_card", "exchange_rate")})
    model = fit_few_shot(texts, labels)  # scikit-learn fits one logit for two classes
    probs = model.predict_proba(["my card was stolen", "dollar to euro rate"])
    assert probs.shape == (2, 2)
    assert [model.labels[i] for i in probs.argmax(axis=1)] == ["lost_card", "exchange_rate"]
    enc = TextTokenizer(minilm_dir / "tokenizer.json").encode(["my card was stolen", "dollar rate"])
    (onnx_probs,) = session(model.to_onnx().SerializeToString()).run(["probabilities"], enc)
    np.testing.assert_allclose(onnx_probs[0], probs[0], atol=1e-4)


@pytest.mark.parametrize(
    ("texts", "labels", "message"),
    [
        (["a", "b"], ["x", "x"], "at least two intents, got only 'x'"),
        (["I lost my card", "  "], ["lost", "rate"], "training text 1 is empty"),
        (["I lost my card", "rate?"], ["lost", ""], "label 1 is empty"),
        (["I lost my card"], ["lost", "rate"], "differ in length"),
        ([], [], "no training examples"),
    ],
)
def test_bad_training_sets_are_refused(texts: list[str], labels: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fit_few_shot(texts, labels, params=TINY)


def test_unknown_encoder_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown encoder 'bert-large'"):
        fit_few_shot(["a", "b"], ["x", "y"], encoder="bert-large")


def test_empty_text_to_predict_is_refused(model: FewShotModel) -> None:
    with pytest.raises(ValueError, match="text 1 is empty"):
        model.predict_proba(["I lost my card", ""])
