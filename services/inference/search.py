"""Semantic item search (transport-neutral): the text encoder embeds the query, which is
ranked by cosine similarity against the live catalogue index (items embedded on arrival,
``catalogue_watcher.py``) once it holds items; until then, the search model ranks its own
fixed item list and category filters apply after."""

from __future__ import annotations

from dataclasses import dataclass

from services.inference.catalogue_watcher import LiveCatalogue
from services.inference.errors import InvalidArgument, Unavailable
from services.inference.intent import check_text
from services.inference.recommend import DEFAULT_K, MAX_K
from services.inference.repository import LoadedModel, ModelRepository
from services.inference.runtimes import SemanticSearch, TextEmbedding
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
        self,
        repository: ModelRepository,
        store: ProfileStore,
        settings: InferenceSettings,
        live: LiveCatalogue | None = None,
    ) -> None:
        self.repository = repository
        self.store = store
        self.settings = settings
        self.live = live

    async def search(
        self,
        query: str,
        k: int = 0,
        categories: list[str] | None = None,
        deadline: float | None = None,
    ) -> tuple[list[SearchHit], LoadedModel]:
        check_text(query, self.settings.max_text_chars, "query")
        k = k or DEFAULT_K
        if not 1 <= k <= MAX_K:
            raise InvalidArgument(f"k must be between 1 and {MAX_K} ({k} sent)")
        encoder, embedding = self.repository.serving(self.settings.encoder_model, TextEmbedding)
        live = self.live.searchable(encoder.config.sha256) if self.live is not None else None
        if live is not None and encoder.extras.tokenizer is not None:
            embedded = await encoder.infer(encoder.extras.tokenizer.encode([query]), deadline)
            query_vector = embedding.decode(encoder.roles, embedded)[0]
            matches = live.search(query_vector, k, categories or ())
            return [
                SearchHit(m.item_id, m.title, m.score, list(m.categories)) for m in matches
            ], encoder
        searcher, ranking = self.repository.serving(self.settings.search_model, SemanticSearch)
        tokenizer = encoder.extras.tokenizer or searcher.extras.tokenizer
        index = searcher.extras.items
        if tokenizer is None or index is None:
            raise Unavailable("the search models have no tokenizer or item list")
        embedded = await encoder.infer(tokenizer.encode([query]), deadline)
        query_embedding = embedding.decode(encoder.roles, embedded)
        found = ranking.decode(
            searcher.roles,
            await searcher.infer(ranking.encode(searcher.extras, query_embedding), deadline),
        )
        wanted = set(categories or [])
        hits: list[SearchHit] = []
        for row, score in zip(found.rows[0], found.scores[0], strict=True):
            item = index.item_ids[int(row)]
            if item in self.store.removed:
                continue
            entry = self.store.catalogue.get(item)
            if entry and entry.title:
                title = entry.title
            else:
                title = index.titles[int(row)] if index.titles else ""
            cats = (entry.categories if entry else []) or searcher.extras.item_categories.get(
                item, []
            )
            if wanted and not wanted.intersection(cats):
                continue
            hits.append(SearchHit(item, title, float(score), cats))
            if len(hits) == k:
                break
        return hits, searcher
