"""The item_vectors documents: a vector survives the round trip through MongoDB's bytes,
and a cached vector is stale as soon as the text it came from changes."""

from __future__ import annotations

import numpy as np
import pytest

from services.inference.item_vectors import CachedVector, text_hash
from shared.catalogue import item_text


def test_a_cached_vector_round_trips_through_its_document() -> None:
    vector = np.random.default_rng(3).standard_normal(384).astype(np.float32)
    cached = CachedVector("sku-1", "enc-sha", text_hash("Lamp"), vector)
    doc = cached.to_document()
    assert doc["_id"] == "sku-1" and doc["dim"] == 384 and len(doc["vector"]) == 384 * 4
    again = CachedVector.from_document(doc)
    assert again.item_id == "sku-1" and again.encoder == "enc-sha"
    assert np.array_equal(again.vector, vector)


def test_a_truncated_vector_is_refused() -> None:
    doc = CachedVector("a", "e", "h", np.ones(8, dtype=np.float32)).to_document()
    doc["vector"] = doc["vector"][:-4]
    with pytest.raises(ValueError, match="7 values, not 8"):
        CachedVector.from_document(doc)


def test_the_text_hash_follows_every_part_of_the_embedded_text() -> None:
    base = text_hash(item_text("Lamp", ["home"], "brass"))
    assert base == text_hash(item_text("Lamp", ["home"], "brass"))
    assert base != text_hash(item_text("Lamp", ["home"], "steel"))
    assert base != text_hash(item_text("Lamp", ["office"], "brass"))
    assert base != text_hash(item_text("Lamps", ["home"], "brass"))
