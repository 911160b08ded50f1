"""Each exported ONNX graph equals the training-time scorer on a sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.evaluation import session


def test_recommender_graph_equals_numpy_scorer() -> None:
    from models.recommender.graph import reference_reasons
    from models.recommender.sequential import SequentialItemItem, SequentialParams
    from models.recommender.train import export

    rng = np.random.default_rng(0)
    n = 40
    histories = [rng.choice(n, size=int(rng.integers(5, 15)), replace=False) for _ in range(60)]
    model = SequentialItemItem(histories, n, SequentialParams(max_len=8))
    prior = np.linspace(1e-4, 0, n).astype(np.float32)
    sess = session(export(model, prior).SerializeToString())
    recent = model.recent(histories[:10])
    recent[0, :5] = -1  # short history
    recent[1] = -1  # brand-new user: popularity prior only
    exclude = np.zeros((10, n), dtype=bool)
    exclude[2, :20] = True
    k = np.array([5], dtype=np.int64)
    items, scores, reasons = sess.run(
        None, {"recent_items": recent, "exclude_mask": exclude, "k": k}
    )
    ref = model.score_recent(recent) + prior
    ref[exclude] = -np.inf
    np.testing.assert_allclose(scores, np.sort(ref, axis=1)[:, ::-1][:, :5], rtol=1e-5, atol=1e-6)
    assert items[1].tolist() == [0, 1, 2, 3, 4]
    assert (items[2] >= 20).all()
    # Fewer recent items than max_len: weights align with the newest positions.
    short, _, short_reasons = sess.run(
        None, {"recent_items": recent[:, -3:], "exclude_mask": exclude, "k": k}
    )
    ref_short = (
        model.score_recent(np.concatenate([np.full((10, 5), -1), recent[:, -3:]], axis=1)) + prior
    )
    ref_short[exclude] = -np.inf
    assert short[3].tolist() == np.argsort(-ref_short[3], kind="stable")[:5].tolist()
    # Reasons: the position adding most to each returned item, never a padded one.
    w_ease, w_trans = model.weights()
    with_history = [b for b in range(10) if b != 1]
    expected = reference_reasons(model.ease, model.trans, w_ease, w_trans, recent, items)
    assert reasons[with_history].tolist() == expected[with_history].tolist()
    assert (recent[0, reasons[0]] >= 0).all()  # row 0 starts with five pads
    expected_short = reference_reasons(
        model.ease, model.trans, w_ease, w_trans, recent[:, -3:], short
    )
    assert short_reasons[with_history].tolist() == expected_short[with_history].tolist()


def test_search_graph_equals_numpy_topk() -> None:
    from models.search.graph import build_search_graph

    rng = np.random.default_rng(1)
    cat = rng.standard_normal((50, 384)).astype(np.float32)
    cat /= np.linalg.norm(cat, axis=1, keepdims=True)
    q = cat[[3, 7]] + 0.01
    items, scores = session(build_search_graph().SerializeToString()).run(
        None, {"query_embedding": q, "catalogue": cat, "k": np.array([4], dtype=np.int64)}
    )
    assert items[:, 0].tolist() == [3, 7]
    np.testing.assert_allclose(scores, np.sort(q @ cat.T, axis=1)[:, ::-1][:, :4], rtol=1e-5)


@pytest.mark.parametrize("encoder", ["minilm", "mpnet"])
def test_intent_graph_equals_jax_scorer(encoder: str, request: pytest.FixtureRequest) -> None:
    """The fine-tuned top layers + head give the same probabilities in JAX and ONNX
    (for MPNet this includes the relative-position bias on both sides)."""
    from models.encoder.graph import build_encoder, load_weights
    from models.encoder.spec import spec_of
    from models.intent.finetune import FinetuneParams, TokenStates, embed, finetune
    from models.intent.graph import build_intent_graph
    from models.intent.scoring import softmax
    from models.runtime.text import TextTokenizer

    folder: Path = request.getfixturevalue(f"{encoder}_dir")
    weights = load_weights(folder / "model.safetensors")
    tok = TextTokenizer(folder / "tokenizer.json")
    layers = spec_of(weights).layers
    texts = [
        "my card has not arrived",
        "how do I top up",
        "card still missing?",
        "top up with bank transfer",
        "what is the weather",
        "where is my new card",
    ]
    labels = np.array([0, 1, 0, 1, 2, 0])
    enc = tok.encode(texts)
    sess = session(build_encoder(weights, hidden_after=layers - 1).SerializeToString())
    (hidden,) = sess.run(["hidden"], enc)
    states = TokenStates.from_padded(hidden, enc["attention_mask"])
    params = FinetuneParams(encoder=encoder, top_layers=1, epochs=2, batch_size=4)
    tuned = finetune(weights, states, labels, 3, params)
    full = {**weights, **{k: v for k, v in tuned.items() if not k.startswith("head.")}}
    expected = softmax(embed(full, states, 1) @ tuned["head.weight"].T + tuned["head.bias"])
    graph = build_intent_graph(full, tuned["head.weight"], tuned["head.bias"])
    (probs,) = session(graph.SerializeToString()).run(["probabilities"], enc)
    np.testing.assert_allclose(probs, expected, atol=2e-4)
    assert any(not np.allclose(full[k], weights[k]) for k in tuned if k.startswith("encoder."))
