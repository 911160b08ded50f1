"""Recommendations (transport-neutral): profile -> recommender model -> items with reasons.

A request scores the user's history in one execution. The graph also names, for each item
it returns, the history position that adds most to its score: that item is the reason
("because you viewed X"). Recommender versions without that output get their reasons from
a second execution (``_reasons_by_single_items``). Users without usable history get what is
trending; when the profile store is down, the answer is trending and flagged as degraded.

Each item says which kind of reason it has (``ReasonKind``): collaborative, content (an item
in ``items.json``'s ``cold`` list: it had no interactions at training time and is reached
through text-similarity edges, so "similar to X"), trending, or popular (the model's prior,
when there is neither history nor trends). Items the catalogue marks removed are never
returned.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field

import numpy as np

from services.inference import metrics
from services.inference.errors import InvalidArgument, NotFound
from services.inference.repository import LoadedModel, ModelRepository
from services.inference.runtimes import NextItemRecommendation, Ranked
from services.inference.runtimes.recommendation import MAX_K
from services.inference.settings import InferenceSettings
from services.inference.store import CatalogueEntry, ProfileStore, ProfileView
from shared.events import MAX_ID_LENGTH

DEFAULT_K = 10
REASON_ROWS = 5  # without top_reasons: the newest items that can be named as a reason
DEFAULT_HISTORY = 20
EXCLUDED = -1e38  # the graph scores excluded items at about -3e38


class Source(enum.Enum):
    PERSONALISED = "personalised"
    TRENDING = "trending"
    TRENDING_DEGRADED = "trending_degraded"


class ReasonKind(enum.Enum):
    COLLABORATIVE = "collaborative"
    CONTENT = "content"
    TRENDING = "trending"
    POPULAR = "popular"


ANSWERS_BY_SOURCE = {source: metrics.RECOMMEND_SOURCE.labels(source.value) for source in Source}


@dataclass(frozen=True)
class RecommendQuery:
    key: str
    anonymous: bool = False
    k: int = 0
    exclude_seen: bool = False
    categories: list[str] = field(default_factory=list)
    context_items: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Recommendation:
    item_id: str
    title: str
    score: float
    reason: str
    categories: list[str]
    reason_kind: ReasonKind = ReasonKind.COLLABORATIVE


@dataclass(frozen=True)
class RecommendResult:
    items: list[Recommendation]
    source: Source
    model_name: str
    model_version: str
    recommendation_id: str


def history_length(model: LoadedModel) -> int:
    """History positions the graph was trained for (its recency weights)."""
    return model.config.max_history() or DEFAULT_HISTORY


class Recommender:
    def __init__(
        self, repository: ModelRepository, store: ProfileStore, settings: InferenceSettings
    ) -> None:
        self.repository = repository
        self.store = store
        self.settings = settings

    def check(self, query: RecommendQuery) -> int:
        if not query.key:
            raise InvalidArgument("user_id or anonymous_id is required")
        if len(query.key) > MAX_ID_LENGTH:
            raise InvalidArgument(f"the id is longer than {MAX_ID_LENGTH} characters")
        k = query.k or DEFAULT_K
        if not 1 <= k <= MAX_K:
            raise InvalidArgument(f"k must be between 1 and {MAX_K} ({query.k} sent)")
        if len(query.context_items) > MAX_K:
            raise InvalidArgument(f"at most {MAX_K} context item ids")
        return k

    def entry(self, model: LoadedModel | None, item: str) -> CatalogueEntry:
        found = self.store.catalogue.get(item)
        if found is not None and found.title:
            return found
        title, categories = "", found.categories if found else []
        if model is not None and model.extras.items is not None:
            row = model.extras.items.row(item)
            if row is not None and model.extras.items.titles is not None:
                title = model.extras.items.titles[row]
            categories = categories or model.extras.item_categories.get(item, [])
        return CatalogueEntry(title, categories)

    def _allowed(self, model: LoadedModel | None, item: str, categories: set[str]) -> bool:
        return not categories or bool(categories.intersection(self.entry(model, item).categories))

    async def recommend(
        self, query: RecommendQuery, deadline: float | None = None
    ) -> RecommendResult:
        k = self.check(query)
        try:
            model: LoadedModel | None = self.repository.serving(
                self.settings.recommender_model, NextItemRecommendation
            )[0]
        except NotFound:
            model = None
        profile, store_ok = await self.store.profile(query.key, query.anonymous)
        view = profile or ProfileView([], set())
        history = [*view.recent_items, *query.context_items]
        exclude = set(query.context_items) | self.store.removed
        if query.exclude_seen:
            exclude |= view.seen_items | set(view.recent_items)
        categories = set(query.categories)
        known = model.extras.items.rows(history) if model and model.extras.items else []
        if model is not None and known and store_ok:
            result = await self._personalised(model, history, exclude, categories, k, deadline)
        else:
            source = Source.TRENDING if store_ok else Source.TRENDING_DEGRADED
            result = await self._trending(model, exclude, categories, k, source, deadline)
        ANSWERS_BY_SOURCE[result.source].inc()
        return result

    def _mask(self, model: LoadedModel, exclude: set[str], categories: set[str]) -> np.ndarray:
        """``exclude_mask`` row [1, N]: True for excluded items and those outside the categories."""
        index = model.extras.items
        assert index is not None
        mask = np.zeros((1, len(index)), dtype=bool)
        mask[0, index.rows(exclude)] = True
        if categories:
            allowed = [i for i in index.item_ids if self._allowed(model, i, categories)]
            keep = np.zeros(len(index), dtype=bool)
            keep[index.rows(allowed)] = True
            mask[0] |= ~keep
        return mask

    async def _run(
        self,
        model: LoadedModel,
        rows: list[list[str]],
        mask: np.ndarray,
        deadline: float | None,
        length: int | None = None,
    ) -> tuple[np.ndarray, Ranked]:
        """(``recent_items`` as sent, the graph's ranking)."""
        runtime = model.runtime
        assert isinstance(runtime, NextItemRecommendation)
        inputs = runtime.encode(model.extras, rows, mask, length or history_length(model))
        outputs = await model.infer(inputs, deadline)
        return inputs["recent_items"], runtime.decode(model.roles, outputs)

    async def _personalised(
        self,
        model: LoadedModel,
        history: list[str],
        exclude: set[str],
        categories: set[str],
        k: int,
        deadline: float | None,
    ) -> RecommendResult:
        index = model.extras.items
        assert index is not None
        recent, out = await self._run(
            model, [history], self._mask(model, exclude, categories), deadline
        )
        # Scores are sorted: the first k above the exclusion score (fewer if the mask left fewer).
        scores = out.scores[0]
        usable = min(k, int(np.count_nonzero(scores > EXCLUDED)))
        chosen: list[tuple[int, float]] = list(
            zip(out.rows[0][:usable].tolist(), scores[:usable].tolist(), strict=True)
        )
        if out.reasons is not None:  # the graph names each item's reason: one execution
            positions = out.reasons[0][:usable].tolist()
            reasons = [index.item_ids[int(recent[0, p])] for p in positions]
        else:
            reasons = await self._reasons_by_single_items(model, history, chosen, deadline)
        items: list[Recommendation] = []
        for (row, score), because in zip(chosen, reasons, strict=True):
            item = index.item_ids[row]
            entry = self.entry(model, item)
            # A cold item scores only through its content edges, so its reason is the
            # history item its text resembles most.
            kind = ReasonKind.CONTENT if item in index.cold else ReasonKind.COLLABORATIVE
            template = (
                self.settings.content_reason_template
                if kind is ReasonKind.CONTENT
                else self.settings.reason_template
            )
            reason = template.format(title=self.entry(model, because).title or because)
            items.append(Recommendation(item, entry.title, score, reason, entry.categories, kind))
        return RecommendResult(
            items, Source.PERSONALISED, model.name, str(model.version), uuid.uuid4().hex
        )

    async def _reasons_by_single_items(
        self,
        model: LoadedModel,
        history: list[str],
        chosen: list[tuple[int, float]],
        deadline: float | None,
    ) -> list[str]:
        """Reasons for recommender versions without a ``top_reasons`` output: each of the
        newest few history items is scored on its own, masked to the chosen items (its top k
        is then exactly their scores), and the one scoring an item highest is its reason."""
        index = model.extras.items
        assert index is not None
        if not chosen:
            return []
        candidates: list[str] = []
        for item in reversed(history):
            if item not in candidates and index.rows([item]):
                candidates.append(item)
            if len(candidates) == REASON_ROWS:
                break
        only_chosen = np.ones((1, len(index)), dtype=bool)
        only_chosen[0, [row for row, _ in chosen]] = False
        _, out = await self._run(model, [[c] for c in candidates], only_chosen, deadline, length=1)
        per_candidate = np.full((len(candidates), len(index)), EXCLUDED, dtype=np.float32)
        for r in range(len(candidates)):
            per_candidate[r, out.rows[r]] = out.scores[r]
        return [candidates[int(per_candidate[:, row].argmax())] for row, _ in chosen]

    async def _trending(
        self,
        model: LoadedModel | None,
        exclude: set[str],
        categories: set[str],
        k: int,
        source: Source,
        deadline: float | None,
    ) -> RecommendResult:
        reason = (
            "trending now"
            if source is Source.TRENDING
            else "trending now (personalisation unavailable)"
        )
        items: list[Recommendation] = []
        for rank, item in enumerate(self.store.trending):
            if item in exclude or not self._allowed(model, item, categories):
                continue
            entry = self.entry(model, item)
            score = 1.0 / (rank + 1)
            items.append(
                Recommendation(
                    item, entry.title, score, reason, entry.categories, ReasonKind.TRENDING
                )
            )
            if len(items) == k:
                break
        if items or model is None:
            return RecommendResult(items, source, "trends", "", uuid.uuid4().hex)
        # No trends recorded yet: the recommender's popularity prior on an empty history.
        _, out = await self._run(model, [[]], self._mask(model, exclude, categories), deadline)
        assert model.extras.items is not None
        for row, score in zip(out.rows[0], out.scores[0], strict=True):
            if score <= EXCLUDED or len(items) == k:
                break
            item = model.extras.items.item_ids[int(row)]
            entry = self.entry(model, item)
            items.append(
                Recommendation(
                    item, entry.title, float(score), "popular", entry.categories, ReasonKind.POPULAR
                )
            )
        return RecommendResult(items, source, model.name, str(model.version), uuid.uuid4().hex)
