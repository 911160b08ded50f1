"""Training from the product's own data and the gate, on a private registry (no MongoDB):
the store's reading is covered by tests/integration/test_own_data_recommender.py."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from models.recommender.from_events import (
    SOURCE_NAME,
    TrainingOutcome,
    split_store_data,
    train_and_gate,
    write_outcome,
)
from models.recommender.own_data import OwnData, Split, build
from models.runtime.items import ItemIndex
from shared.catalogue import CatalogueItem
from shared.model_registry import get_version, latest_version
from tests.unit.models import own_product


def product(n_users: int = 80, seed: int = 0) -> OwnData:
    items = [*own_product.catalogue(), CatalogueItem("sku-new", title="Brand new")]
    return build(items, own_product.documents(own_product.walks(n_users, seed=seed)), "shop")


def shuffled(split: Split, seed: int = 1) -> Split:
    """The same training items permuted across users and positions."""
    flat = np.random.default_rng(seed).permutation(np.concatenate(split.train))
    cuts = np.cumsum([len(h) for h in split.train])[:-1]
    return replace(split, train=np.split(flat, cuts))


def test_first_run_publishes_a_model_of_the_products_items(tmp_path: Path) -> None:
    data = product()
    outcome = train_and_gate(data, split_store_data(data), tmp_path)

    assert outcome.decision == "published" and outcome.version == 1
    assert outcome.served_version is None and outcome.metrics["champion"] is None
    challenger, popularity = outcome.metrics["challenger"], outcome.metrics["popularity"]
    assert challenger is not None and popularity is not None
    # The walks are predictable, popularity is flat: the model must be far better.
    assert challenger["ndcg@10"] > 0.6 > popularity["ndcg@10"] + 0.3
    assert outcome.counts == {
        "users": 80,
        "items": 41,
        "interactions": data.n_interactions,
        "eval_users": 80,
        "eval_candidates": 80,
        "cold_items": 1,
    }
    assert data.first is not None and data.last is not None
    assert outcome.window == [data.first.isoformat(), data.last.isoformat()]

    version = get_version("recommender", root=tmp_path, verify=True)
    index = ItemIndex.load(version.file("items.json"))
    assert index.item_ids == data.item_ids and index.cold == {"sku-new"}
    assert index.titles is not None and index.titles[index.row("sku-new") or 0] == "Brand new"
    assert version.config.training_data[0].name == SOURCE_NAME
    assert version.config.metrics["gate"]["decision"] == "published"
    card = (version.path / "README.md").read_text()
    assert "database `shop`" in card and "**published**" in card and "popularity" in card


def test_a_model_trained_on_shuffled_interactions_is_refused_and_a_real_one_published(
    tmp_path: Path,
) -> None:
    data = product()
    split = split_store_data(data)
    assert train_and_gate(data, split, tmp_path).version == 1

    refused = train_and_gate(data, shuffled(split), tmp_path)
    assert refused.decision == "refused" and refused.version is None
    assert refused.served_version == 1
    assert latest_version("recommender", tmp_path) == 1
    new, old = refused.metrics["challenger"], refused.metrics["champion"]
    assert new is not None and old is not None and new["ndcg@10"] < old["ndcg@10"]

    more = product(n_users=120, seed=0)  # the same shoppers and 40 more
    published = train_and_gate(more, split_store_data(more), tmp_path)
    assert published.decision == "published" and published.version == 2
    assert latest_version("recommender", tmp_path) == 2


def test_the_same_model_again_is_not_worse_and_is_published(tmp_path: Path) -> None:
    noisy = build(own_product.catalogue(), own_product.documents(own_product.walks(80, noise=0.3)))
    split = split_store_data(noisy)
    first = train_and_gate(noisy, split, tmp_path)
    again = train_and_gate(noisy, split, tmp_path)

    new, old = again.metrics["challenger"], again.metrics["champion"]
    assert new is not None and old is not None and 0.0 < new["ndcg@10"] < 1.0
    assert new == old == first.metrics["challenger"]
    assert again.decision == "published" and again.version == 2


def test_force_publishes_a_refused_model_and_the_card_says_so(tmp_path: Path) -> None:
    data = product()
    split = split_store_data(data)
    train_and_gate(data, split, tmp_path)
    forced = train_and_gate(data, shuffled(split), tmp_path, force=True)

    assert forced.decision == "forced" and forced.version == 2
    config = get_version("recommender", 2, tmp_path).config
    assert config.metrics["gate"]["forced"] is True
    assert "published by force" in (tmp_path / "recommender" / "2" / "README.md").read_text()


def test_a_wide_margin_lets_the_worse_model_through(tmp_path: Path) -> None:
    data = product()
    split = split_store_data(data)
    train_and_gate(data, split, tmp_path)
    assert train_and_gate(data, shuffled(split), tmp_path, margin=1.0).decision == "published"


def test_publish_false_decides_without_writing(tmp_path: Path) -> None:
    data = product()
    outcome = train_and_gate(data, split_store_data(data), tmp_path, publish=False)
    assert outcome.decision == "published" and outcome.version is None
    assert latest_version("recommender", tmp_path) is None


def test_a_served_model_of_another_catalogue_is_replaced(tmp_path: Path) -> None:
    other = build(
        [CatalogueItem(f"movie-{i}") for i in range(6)],
        own_product.documents(
            {f"u{u}": [f"movie-{(u + s) % 6}" for s in range(5)] for u in range(6)}
        ),
    )
    assert train_and_gate(other, split_store_data(other), tmp_path).version == 1
    data = product()
    outcome = train_and_gate(data, split_store_data(data), tmp_path)
    assert outcome.decision == "published" and "knows none" in outcome.reason
    assert outcome.metrics["champion"] == {
        "hr@10": 0.0,
        "ndcg@10": 0.0,
        "hr@20": 0.0,
        "ndcg@20": 0.0,
    }


@pytest.mark.parametrize(
    ("histories", "why"),
    [
        ({"u1": ["sku-a", "sku-b", "sku-c"]}, "1 users with 3 or more"),
        ({"u1": ["sku-a", "sku-a", "sku-a"], "u2": ["sku-a"] * 4}, "1 items"),
        ({}, "0 items"),
    ],
)
def test_too_little_data_is_skipped_with_the_reason(
    tmp_path: Path, histories: dict[str, list[str]], why: str
) -> None:
    data = build([], own_product.documents(histories))
    outcome = train_and_gate(data, split_store_data(data), tmp_path)
    assert outcome.decision == "skipped" and why in outcome.reason
    assert latest_version("recommender", tmp_path) is None


def test_the_outcome_is_written_as_json(tmp_path: Path) -> None:
    data = product()
    outcome = train_and_gate(data, split_store_data(data), tmp_path / "registry")
    write_outcome(outcome, tmp_path / "out" / "result.json")
    read = json.loads((tmp_path / "out" / "result.json").read_text())

    assert read["decision"] == "published" and read["version"] == 1
    assert set(read["metrics"]) == {"challenger", "champion", "popularity"}
    assert read["counts"]["items"] == 41 and len(read["window"]) == 2
    assert TrainingOutcome(**read) == outcome
    assert not list((tmp_path / "out").glob("*.tmp"))
