"""Semantic search: a query embedding in, catalogue rows by cosine similarity out
(``items``, ``scores``); the catalogue's embeddings and item list are side files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from services.inference.runtimes import files
from services.inference.runtimes.base import Ranked, Runtime, Tensors, ranked
from services.inference.runtimes.files import Extras
from shared.model_registry import ModelConfig


class SemanticSearch(Runtime):
    task = "semantic-search"
    required_roles = ("items", "scores")

    def load_extras(self, path: Path, config: ModelConfig) -> Extras:
        extras = Extras(
            tokenizer=files.tokenizer(path, config), catalogue=files.catalogue(path, config)
        )
        files.item_index(path, config, extras)
        return extras

    def encode(self, extras: Extras, query_embedding: np.ndarray) -> Tensors:
        assert extras.items is not None
        inputs: Tensors = {
            "query_embedding": np.asarray(query_embedding, dtype=np.float32),
            # The whole catalogue, so that every query shares one batch key.
            "k": np.array([len(extras.items)], dtype=np.int64),
        }
        if extras.catalogue is not None:
            inputs["catalogue"] = extras.catalogue
        return inputs

    def decode(self, roles: dict[str, str], outputs: Tensors) -> Ranked:
        return ranked(roles, outputs)
