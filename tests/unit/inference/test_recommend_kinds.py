"""Which kind of reason each recommended item has (collaborative, content, trending,
popular), the configurable reason templates, and removed catalogue items never returned.

The tiny item chain: m1 suggests m2 strongly and m3 weakly; m2 is listed as cold in the
served ``items.json`` (reached through content edges), so it must say "similar to"."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.inference.recommend import ReasonKind, Recommender, RecommendQuery, Source
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


@contextlib.asynccontextmanager
async def served(tmp_path: Path) -> AsyncIterator[ModelRepository]:
    """The tiny recommender with m2 cold, served on the test's own event loop."""
    tiny.write_recommender(tmp_path, cold=["m2"])
    executor = ThreadPoolExecutor(1)
    repo = ModelRepository(InferenceSettings(model_repository=tmp_path), executor)
    await repo.scan()
    try:
        yield repo
    finally:
        await repo.close()
        executor.shutdown()


def recommender(
    repository: ModelRepository, profiles: Profiles, settings: InferenceSettings | None = None
) -> Recommender:
    config = settings or InferenceSettings(model_repository=repository.settings.model_repository)
    return Recommender(repository, profiles, config)  # type: ignore[arg-type]  # a fake store


async def test_a_cold_item_is_a_content_reason_and_a_warm_one_collaborative(
    tmp_path: Path,
) -> None:
    async with served(tmp_path) as repository:
        # One click is a usable history: the answer is personalised at once.
        result = await recommender(repository, Profiles(["m1"])).recommend(
            RecommendQuery("u1", k=2, exclude_seen=True)
        )
        assert result.source is Source.PERSONALISED
        assert [(i.item_id, i.reason_kind, i.reason) for i in result.items] == [
            ("m2", ReasonKind.CONTENT, "similar to Toy Story"),
            ("m3", ReasonKind.COLLABORATIVE, "because you viewed Toy Story"),
        ]


async def test_reason_templates_are_configurable(tmp_path: Path) -> None:
    async with served(tmp_path) as repository:
        custom = recommender(
            repository,
            Profiles(["m1"]),
            InferenceSettings(
                model_repository=tmp_path,
                reason_template="people who liked {title} liked this",
                content_reason_template="looks like {title}",
            ),
        )
        result = await custom.recommend(RecommendQuery("u1", k=2, exclude_seen=True))
        assert [i.reason for i in result.items] == [
            "looks like Toy Story",
            "people who liked Toy Story liked this",
        ]
        with pytest.raises(ValidationError, match="title"):
            InferenceSettings(reason_template="because of {item}")


async def test_without_history_items_are_trending_then_popular(
    tmp_path: Path,
) -> None:
    async with served(tmp_path) as repository:
        profiles = Profiles([])
        profiles.trending = ["m5", "m4"]
        trending = await recommender(repository, profiles).recommend(RecommendQuery("u1", k=2))
        assert trending.source is Source.TRENDING
        assert [(i.item_id, i.reason_kind) for i in trending.items] == [
            ("m5", ReasonKind.TRENDING),
            ("m4", ReasonKind.TRENDING),
        ]
        profiles.trending = []
        popular = await recommender(repository, profiles).recommend(RecommendQuery("u1", k=2))
        # The prior decreases along the catalogue: m1 then m2.
        assert [(i.item_id, i.reason_kind, i.reason) for i in popular.items] == [
            ("m1", ReasonKind.POPULAR, "popular"),
            ("m2", ReasonKind.POPULAR, "popular"),
        ]


async def test_removed_items_are_never_returned(tmp_path: Path) -> None:
    async with served(tmp_path) as repository:
        profiles = Profiles(["m1"])
        profiles.removed = {"m2", "m5"}
        service = recommender(repository, profiles)
        personalised = await service.recommend(RecommendQuery("u1", k=3, exclude_seen=True))
        # m2 would lead (m1 suggests it most), m5 would follow m4 on the prior alone.
        assert [i.item_id for i in personalised.items] == ["m3", "m4", "m6"]

        profiles.recent = []
        profiles.trending = ["m5", "m4"]
        trending = await service.recommend(RecommendQuery("u1", k=2))
        assert [i.item_id for i in trending.items] == ["m4"]

        profiles.trending = []
        popular = await service.recommend(RecommendQuery("u1", k=2))
        assert [i.item_id for i in popular.items] == ["m1", "m3"]
