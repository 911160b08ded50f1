"""Reasons ("because you viewed X"): named by the graph's ``top_reasons`` in one execution,
and by single-item executions for recommender versions without that output; both name
the same items on the tiny item chain (m1 suggests m2 then m3, m5 suggests m6 then m7)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from services.inference import metrics
from services.inference.recommend import Recommender, RecommendQuery, Source
from services.inference.repository import ModelRepository
from services.inference.settings import InferenceSettings
from services.inference.store import CatalogueEntry, ProfileView
from tests.unit.inference import tiny_models as tiny


class Profiles:
    """The slice of the profile store a Recommend reads (no MongoDB: pure ranking logic)."""

    def __init__(self, recent: list[str]) -> None:
        self.recent = recent
        self.catalogue: dict[str, CatalogueEntry] = {}
        self.trending: list[str] = []
        self.removed: set[str] = set()

    async def profile(self, key: str, anonymous: bool) -> tuple[ProfileView | None, bool]:
        return ProfileView(self.recent, set()), True


@pytest.mark.parametrize("with_reasons", [True, False])
async def test_each_item_is_explained_by_the_history_item_that_suggests_it(
    tmp_path: Path, with_reasons: bool
) -> None:
    tiny.write_recommender(tmp_path, with_reasons=with_reasons)
    settings = InferenceSettings(model_repository=tmp_path, intra_op_threads=1)
    executor = ThreadPoolExecutor(1)
    repository = ModelRepository(settings, executor)
    await repository.scan()
    executions = metrics.EXECUTIONS.labels("recommender", "1")
    before = executions._value.get()
    try:
        recommender = Recommender(repository, Profiles(["m1", "m5"]), settings)  # type: ignore[arg-type]
        result = await recommender.recommend(RecommendQuery("u1", k=4, exclude_seen=True))
        assert result.source is Source.PERSONALISED
        assert [(i.item_id, i.reason) for i in result.items] == [
            ("m2", "because you viewed Toy Story"),
            ("m6", "because you viewed Money Heist"),
            ("m3", "because you viewed Toy Story"),
            ("m7", "because you viewed Money Heist"),
        ]
        # A context item counts as the newest one and explains what it suggests.
        context = await recommender.recommend(
            RecommendQuery("u1", k=2, exclude_seen=True, context_items=["m3"])
        )
        assert [(i.item_id, i.reason) for i in context.items] == [
            ("m2", "because you viewed Toy Story"),
            ("m4", "because you viewed Love Story"),
        ]
        # One execution per Recommend when the graph names the reasons, else two.
        assert executions._value.get() - before == (2 if with_reasons else 4)
    finally:
        await repository.close()
        executor.shutdown()
