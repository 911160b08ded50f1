"""Readers of the side files a version folder may hold (listed in ``config.files``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.runtime import ItemIndex, TextTokenizer
from models.runtime.text import MAX_TOKENS
from shared.model_registry import ModelConfig

TOKENIZER_FILE = "tokenizer.json"
ITEMS_FILE = "items.json"
LABELS_FILE = "labels.json"
EMBEDDINGS_FILE = "embeddings.npy"


@dataclass
class Extras:
    """Files beside a model that its runtime reads."""

    tokenizer: TextTokenizer | None = None
    items: ItemIndex | None = None
    item_categories: dict[str, list[str]] = field(default_factory=dict)
    labels: list[str] | None = None
    catalogue: np.ndarray | None = None  # item embeddings of a search model


def tokenizer(path: Path, config: ModelConfig) -> TextTokenizer | None:
    if TOKENIZER_FILE not in config.files:
        return None
    declared = config.preprocessing.get("max_tokens")
    max_tokens = declared if isinstance(declared, int) else MAX_TOKENS
    return TextTokenizer(path / TOKENIZER_FILE, max_tokens=max_tokens)


def labels(path: Path, config: ModelConfig) -> list[str] | None:
    if config.labels:
        return list(config.labels)
    if LABELS_FILE in config.files:
        return [str(label) for label in json.loads((path / LABELS_FILE).read_text())]
    return None


def item_index(path: Path, config: ModelConfig, extras: Extras) -> None:
    """``items.json``: rows of the item axis, their titles and categories."""
    if ITEMS_FILE not in config.files:
        return
    raw = json.loads((path / ITEMS_FILE).read_text())
    extras.items = ItemIndex(raw["item_ids"], raw.get("titles"), cold=raw.get("cold", ()))
    categories = raw.get("categories") or raw.get("genres")
    if isinstance(categories, list):
        extras.item_categories = {
            str(item): [str(c) for c in cats]
            for item, cats in zip(raw["item_ids"], categories, strict=False)
        }


def catalogue(path: Path, config: ModelConfig) -> np.ndarray | None:
    if EMBEDDINGS_FILE not in config.files:
        return None
    return np.ascontiguousarray(np.load(path / EMBEDDINGS_FILE), dtype=np.float32)
