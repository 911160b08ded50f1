"""The ONNX encoder reproduces sentence-transformers all-MiniLM-L6-v2.

Reference vectors: tests/fixtures/minilm_embeddings.json (sentence-transformers 6.2.0
output; sentences from Banking77 and CLINC150, CC BY — see tests/fixtures/README.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.runtime.text import TextTokenizer

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "minilm_embeddings.json"


@pytest.fixture(scope="module")
def encoder(minilm_dir: Path) -> tuple[object, TextTokenizer]:
    from models.encoder.build import export_fp32
    from models.evaluation import session

    return session(export_fp32(minilm_dir).SerializeToString()), TextTokenizer(
        minilm_dir / "tokenizer.json"
    )


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_fixture_covers_the_hard_cases() -> None:
    ref = json.loads(FIXTURE.read_text())
    assert len(ref["sentences"]) == 68
    assert "" in ref["sentences"]
    assert any(not s.isascii() for s in ref["sentences"])


def test_every_sentence_matches_reference(encoder: tuple[object, TextTokenizer]) -> None:
    sess, tok = encoder
    ref = json.loads(FIXTURE.read_text())
    expected = np.asarray(ref["embeddings"], dtype=np.float32)
    single = np.concatenate(
        [
            sess.run(["embedding"], tok.encode([s]))[0]  # type: ignore[attr-defined]
            for s in ref["sentences"]
        ]
    )
    cos = _cos(single, expected)
    worst = int(np.argmin(cos))
    assert cos.min() >= 0.9999, f"sentence {worst} {ref['sentences'][worst][:60]!r}: {cos[worst]}"
    assert max(len(tok.encode([s])["input_ids"][0]) for s in ref["sentences"]) == 256


def test_padded_batch_matches_reference(encoder: tuple[object, TextTokenizer]) -> None:
    sess, tok = encoder
    ref = json.loads(FIXTURE.read_text())
    batch = sess.run(["embedding"], tok.encode(ref["sentences"]))[0]  # type: ignore[attr-defined]
    assert _cos(batch, np.asarray(ref["embeddings"])).min() >= 0.9999
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
