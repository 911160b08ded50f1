"""Runtime pre/post-processing shared with the inference server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.runtime import ItemIndex, TextTokenizer, decide_intent
from models.runtime.items import PAD


def test_tokenizer_truncates_to_256_and_pads_to_longest(minilm_dir: Path) -> None:
    tok = TextTokenizer(minilm_dir / "tokenizer.json")
    out = tok.encode(["hello", "word " * 400, ""])
    assert out["input_ids"].shape == (3, 256) and out["input_ids"].dtype == np.int64
    assert out["attention_mask"][0].sum() == 3  # [CLS] hello [SEP]
    assert out["attention_mask"][2].sum() == 2
    assert tok.encode(["a b", "a"])["input_ids"].shape == (2, 4)
    with pytest.raises(TypeError):
        tok.encode("not a list")


def test_item_index_round_trip(tmp_path: Path) -> None:
    index = ItemIndex(["10", "20", "30"], ["A", "B", "C"])
    index.save(tmp_path / "items.json")
    loaded = ItemIndex.load(tmp_path / "items.json")
    recent = loaded.recent_items([["30", "unknown", "10"], []], length=4)
    assert recent.tolist() == [[PAD, PAD, 2, 0], [PAD] * 4]
    assert loaded.exclude_mask([["20"]]).tolist() == [[False, True, False]]
    assert loaded.ids(np.array([[2, 0]])) == [["30", "10"]]
    with pytest.raises(ValueError, match="duplicate"):
        ItemIndex(["1", "1"])


def test_decide_intent_applies_threshold_and_oos_class() -> None:
    labels = ["card_arrival", "top_up", "oos"]
    probs = np.array([[0.9, 0.05, 0.05], [0.4, 0.35, 0.25], [0.1, 0.1, 0.8]])
    decisions = decide_intent(probs, labels, threshold=0.5)
    assert [d.intent for d in decisions] == ["card_arrival", "oos", "oos"]
    assert decisions[1].top_label == "card_arrival"
