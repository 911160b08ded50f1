"""The ONNX graph built from all-mpnet-base-v2's weights reproduces sentence-transformers.

Reference: the values sentence-transformers prints for the model card's two example
sentences (``SentenceTransformer("sentence-transformers/all-mpnet-base-v2").encode``;
first and last three of 768 dimensions, as published). Fixture source and licence:
tests/fixtures/README.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.encoder.spec import MINILM, MPNET, relative_position_buckets

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "mpnet_published_values.json"


def test_relative_buckets_follow_mpnet_rule() -> None:
    buckets = relative_position_buckets(MPNET, 300)
    assert buckets[0, 0] == 0
    assert buckets[5, 0] == 5  # key 5 before the query: its own bucket
    assert buckets[0, 5] == 16 + 5  # key 5 after: the other half
    assert buckets[8, 0] == 8  # first shared (log-spaced) bucket
    assert buckets[40, 0] == 8 + int(np.log(40 / 8) / np.log(128 / 8) * 8)
    assert buckets[299, 0] == 15 and buckets[0, 299] == 31  # past max distance: last bucket
    assert buckets.min() == 0 and buckets.max() == MPNET.relative_buckets - 1
    # Only the offset matters, so every diagonal holds one bucket.
    assert (np.diagonal(buckets, offset=-7) == 7).all()


@pytest.fixture(scope="module")
def mpnet(mpnet_dir: Path) -> tuple[object, object]:
    from models.encoder.graph import build_encoder, load_weights
    from models.evaluation import session
    from models.runtime.text import TextTokenizer

    weights = load_weights(mpnet_dir / "model.safetensors")
    return session(build_encoder(weights).SerializeToString()), TextTokenizer(
        mpnet_dir / "tokenizer.json"
    )


def test_published_values_are_reproduced(mpnet: tuple[object, object]) -> None:
    sess, tok = mpnet
    ref = json.loads(FIXTURE.read_text())
    emb = sess.run(["embedding"], tok.encode(ref["sentences"]))[0]  # type: ignore[attr-defined]
    assert emb.shape == (2, MPNET.hidden)
    np.testing.assert_allclose(emb[:, :3], ref["first3"], atol=2e-6)
    np.testing.assert_allclose(emb[:, -3:], ref["last3"], atol=2e-6)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_padding_changes_nothing(mpnet: tuple[object, object]) -> None:
    sess, tok = mpnet
    texts = ["card", "why was my card payment declined at the shop yesterday?"]
    together = sess.run(["embedding"], tok.encode(texts))[0]  # type: ignore[attr-defined]
    alone = sess.run(["embedding"], tok.encode(texts[:1]))[0]  # type: ignore[attr-defined]
    np.testing.assert_allclose(together[0], alone[0], atol=1e-5)
    assert tok.pad_id == 1  # type: ignore[attr-defined]  # MPNet's <pad>, not BERT's 0


def test_checkpoint_of_unknown_size_is_refused(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    from models.encoder.graph import load_weights
    from models.sources import SourceError

    path = tmp_path / "model.safetensors"
    save_file(
        {
            "embeddings.word_embeddings.weight": np.zeros((10, MINILM.hidden * 2), np.float32),
            "encoder.layer.0.output.dense.bias": np.zeros(3, np.float32),
        },
        str(path),
    )
    with pytest.raises(SourceError, match="unsupported MiniLM checkpoint: hidden 768, 1 layers"):
        load_weights(path)
