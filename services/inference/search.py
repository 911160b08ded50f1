"""Semantic item search (transport-neutral): the text encoder embeds the query, the
search model ranks the catalogue by cosine similarity; category filters apply after."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.inference.errors import InvalidArgument, Unavailable
from services.inference.intent import check_text
from services.inference.recommend import DEFAULT_K, MAX_K
from services.inference.repository import LoadedModel, ModelRepository
from services.inference.settings import InferenceSettings
from services.inference.store import ProfileStore


@dataclass(frozen=True)
class SearchHit:
    item_id: str
    title: str
    score: float
    categories: list[str]


class ItemSearch:
    def __init__(
        self, repository: ModelRepository, store: ProfileStore, settings: InferenceSettings
    ) -> None:
        self.repository = repository
        self.store = store
        self.settings = settings

    async def search(
        self, query: str, k: int = 0, categories: list[str] | None = None,
        deadline: float | None = None,
    ) -> tuple[list[SearchHit], LoadedModel]:  # fmt: skip
        check_text(query, self.settings.max_text_chars, "query")
        k = k or DEFAULT_K
        if not 1 <= k <= MAX_K:
            raise InvalidArgument(f"k must be between 1 and {MAX_K} ({k} sent)")
        encoder = self.repository.get(self.settings.encoder_model)
        searcher = self.repository.get(self.settings.search_model)
        tokenizer = encoder.extras.tokenizer or searcher.extras.tokenizer
        index = searcher.extras.items
        if tokenizer is None or index is None:
            raise Unavailable("the search models have no tokenizer or item list")
        embedded = await encoder.infer(tokenizer.encode([query]), deadline)
        embedding = next(
            (v for name, v in embedded.items() if "embedding" in name),
            next(iter(embedded.values())),
        )
        inputs: dict[str, np.ndarray] = {
            "query_embedding": np.asarray(embedding, dtype=np.float32),
            "k": np.array([len(index)], dtype=np.int64),
        }
        if searcher.extras.catalogue is not None:
            inputs["catalogue"] = searcher.extras.catalogue
        out = await searcher.infer(inputs, deadline)
        wanted = set(categories or [])
        hits: list[SearchHit] = []
        for row, score in zip(out["top_items"][0], out["top_scores"][0], strict=True):
            item = index.item_ids[int(row)]
            entry = self.store.catalogue.get(item)
            title = entry.title if entry and entry.title else (
                index.titles[int(row)] if index.titles else "")  # fmt: skip
            cats = (entry.categories if entry else []) or searcher.extras.item_categories.get(
                item, []
            )
            if wanted and not wanted.intersection(cats):
                continue
            hits.append(SearchHit(item, title, float(score), cats))
            if len(hits) == k:
                break
        return hits, searcher
