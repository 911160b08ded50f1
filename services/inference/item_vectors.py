"""Item vectors cached in MongoDB (``item_vectors``), shared by replicas and restarts.

Document::

    {_id: item id, encoder: sha256 of the encoder's model.onnx, textHash: sha256 of the
     embedded text (shared.catalogue.item_text), vector: float32 bytes, dim: int}

A cached vector is reused only when both the encoder and the text are the same; writes are
idempotent upserts, so two replicas embedding the same item at once do no harm.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymongo import ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase

COLLECTION = "item_vectors"
ENCODER = "encoder"
TEXT_HASH = "textHash"
VECTOR = "vector"
DIM = "dim"


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedVector:
    item_id: str
    encoder: str
    text_hash: str
    vector: np.ndarray  # [dim] float32

    def to_document(self) -> dict[str, Any]:
        vector = np.ascontiguousarray(self.vector, dtype=np.float32)
        return {
            "_id": self.item_id,
            ENCODER: self.encoder,
            TEXT_HASH: self.text_hash,
            VECTOR: vector.tobytes(),
            DIM: int(vector.shape[0]),
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> CachedVector:
        vector = np.frombuffer(bytes(doc[VECTOR]), dtype=np.float32)
        if DIM in doc and vector.shape[0] != int(doc[DIM]):
            raise ValueError(
                f"vector of {doc['_id']!r} has {vector.shape[0]} values, not {doc[DIM]}"
            )
        return cls(str(doc["_id"]), str(doc[ENCODER]), str(doc[TEXT_HASH]), vector)


class VectorCache:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.collection = db[COLLECTION]

    async def load(self, encoder: str) -> dict[str, CachedVector]:
        """Every vector the given encoder made (others are stale: re-embedded on demand)."""
        found: dict[str, CachedVector] = {}
        async for doc in self.collection.find({ENCODER: encoder}):
            try:
                cached = CachedVector.from_document(doc)
            except (KeyError, ValueError, TypeError):
                continue  # an unreadable entry is re-embedded like a missing one
            found[cached.item_id] = cached
        return found

    async def get(self, item_ids: Iterable[str], encoder: str) -> dict[str, CachedVector]:
        ids = list(item_ids)
        if not ids:
            return {}
        found: dict[str, CachedVector] = {}
        async for doc in self.collection.find({"_id": {"$in": ids}, ENCODER: encoder}):
            try:
                cached = CachedVector.from_document(doc)
            except (KeyError, ValueError, TypeError):
                continue
            found[cached.item_id] = cached
        return found

    async def save(self, vectors: Iterable[CachedVector]) -> int:
        writes = [ReplaceOne({"_id": v.item_id}, v.to_document(), upsert=True) for v in vectors]
        if not writes:
            return 0
        await self.collection.bulk_write(writes, ordered=False)
        return len(writes)
