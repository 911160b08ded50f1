"""A product's own recommender, end to end on the real stack: its catalogue and its shoppers'
views go through ingest (HTTP) and the profile updater into MongoDB; ``python -m models train
recommender --from-events`` trains on them into a private registry; the inference server
already running on that registry swaps the new version in and answers Recommend with the
product's items, personalised, with reasons naming the shopper's own items. A model trained
on shuffled interactions is refused and the served version stays; more real data is published.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from lumen.v1 import inference_pb2 as pb
from lumen.v1 import inference_pb2_grpc as pb_grpc
from pymongo import MongoClient

from models.recommender.from_events import split_store_data, train_and_gate, train_from_store
from models.recommender.own_data import read_store
from models.runtime.items import ItemIndex
from shared import interactions
from shared.catalogue import COLLECTION as ITEMS
from shared.catalogue import CatalogueItem
from shared.model_registry import get_version, latest_version
from tests.integration.inference_helpers import start_inference
from tests.integration.profiles_updater import (
    registry_serving_the_default_recommender,
    updater_with_own_database,
)
from tests.support.stack import REPO, ServiceProcess, Stack, wait_for
from tests.unit.models import own_product

WRITE_KEY = "lumen-dev-key"  # write and catalogue scopes in development mode
DATABASE = f"lumen_shop_{uuid.uuid4().hex[:8]}"
RUN = uuid.uuid4().hex[:6]
DISCONTINUED = "sku-discontinued"
START = datetime.now(UTC) - timedelta(days=2)
Doc = dict[str, Any]


@pytest.fixture(scope="module")
def shop_updater(stack: Stack) -> Iterator[ServiceProcess]:
    """The product's profile updater, writing a database of its own."""
    with updater_with_own_database(stack, DATABASE, "shop", "profiles-shop") as service:
        yield service


@pytest.fixture(scope="module")
def registry(models_registry: Path) -> Iterator[Path]:
    """A private registry serving the offline MovieLens recommender to begin with."""
    with registry_serving_the_default_recommender(models_registry, f"shop-{RUN}") as root:
        yield root


@pytest.fixture(scope="module")
def shop_inference(stack: Stack, registry: Path) -> Iterator[ServiceProcess]:
    service = start_inference(
        stack,
        registry,
        LUMEN_MONGO_DATABASE=DATABASE,
        LUMEN_INFERENCE_SUPPORT_CONSUMER_ENABLED="false",
    )
    yield service
    service.stop()


@pytest.fixture(scope="module")
def db(stack: Stack) -> Iterator[Any]:
    client: MongoClient[Doc] = MongoClient(stack.mongo_uri, tz_aware=True)
    with client:
        yield client[DATABASE]


def send(ingest: ServiceProcess, batch: list[Doc]) -> None:
    for start in range(0, len(batch), 500):
        response = httpx.post(
            f"http://127.0.0.1:{ingest.ports['http']}/v1/batch",
            json={"batch": batch[start : start + 500]},
            auth=(WRITE_KEY, ""),
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert "rejected" not in response.json(), response.text


def catalogue_events() -> list[Doc]:
    upserts = [
        {
            "type": "track",
            "userId": "catalogue-service",
            "event": "Item Upserted",
            "messageId": f"{RUN}-item-{item.item_id}",
            "properties": {
                "item": {"id": item.item_id, "title": item.title, "categories": item.categories}
            },
        }
        for item in [
            *own_product.catalogue(),
            CatalogueItem("sku-new", title="Brand new"),
            CatalogueItem(DISCONTINUED, title="Discontinued"),
        ]
    ]
    deleted = {
        "type": "track",
        "userId": "catalogue-service",
        "event": "Item Deleted",
        "messageId": f"{RUN}-delete",
        "properties": {"itemId": DISCONTINUED},
    }
    return [*upserts, deleted]


def view_events(histories: dict[str, list[str]], start: datetime) -> list[Doc]:
    """One Product Viewed per item, a minute apart per shopper (shoppers a second apart)."""
    events = []
    for u, (user, items) in enumerate(sorted(histories.items())):
        for step, item in enumerate(items):
            at = start + timedelta(minutes=step, seconds=u)
            events.append(
                {
                    "type": "track",
                    "userId": user,
                    "event": "Product Viewed",
                    "messageId": f"{RUN}-{user}-{step}",
                    "timestamp": at.isoformat(),
                    "properties": {"product_id": item},
                }
            )
    return events


def wait_for_store(db: Any, interactions_count: int) -> None:
    wait_for(lambda: db[interactions.COLLECTION].count_documents({}) >= interactions_count, 120)
    wait_for(lambda: db[ITEMS].count_documents({"_id": DISCONTINUED, "removed": True}) == 1, 60)
    assert db[interactions.COLLECTION].count_documents({}) == interactions_count


def train_command(registry: Path, stack: Stack, result: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        **stack.env(),
        "LUMEN_MONGO_DATABASE": DATABASE,
        "LUMEN_MODEL_REPOSITORY": str(registry),
        "LUMEN_RUNS_DIR": str(registry.parent / f"runs-{RUN}"),
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "models",
            "train",
            "recommender",
            "--from-events",
            "--since-days",
            "30",
            "--json-result",
            str(result),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def recommend(stub: pb_grpc.RecommendationServiceStub, user: str) -> pb.RecommendResponse:
    return stub.Recommend(pb.RecommendRequest(user_id=user, k=5), timeout=10)


def serving(stub: pb_grpc.RecommendationServiceStub, user: str, version: int) -> Any:
    """The answer once the server serves ``version`` for ``user``'s history."""
    return wait_for(
        lambda: (r := recommend(stub, user)).model_version == str(version)
        and r.source == pb.RECOMMENDATION_SOURCE_PERSONALISED
        and r,
        timeout=60,
    )


def test_a_product_trains_serves_and_gates_its_own_recommender(
    stack: Stack,
    ingest: ServiceProcess,
    shop_updater: ServiceProcess,
    shop_inference: ServiceProcess,
    registry: Path,
    db: Any,
    tmp_path: Path,
) -> None:
    shoppers = own_product.walks(80, seed=0)
    shoppers[f"shopper-gone-{RUN}"] = ["sku-garden-00", DISCONTINUED, "sku-garden-01"]
    send(ingest, catalogue_events())
    send(ingest, view_events(shoppers, START))
    wait_for_store(db, sum(len(h) for h in shoppers.values()))
    served_before = latest_version("recommender", registry)
    assert served_before == 1  # the MovieLens default

    with grpc.insecure_channel(f"127.0.0.1:{shop_inference.ports['grpc']}") as channel:
        stub = pb_grpc.RecommendationServiceStub(channel)
        # Two shoppers of different categories.
        first_shopper = "shopper-000"
        other_shopper = next(
            u for u, h in shoppers.items() if h[0][:-3] != shoppers[first_shopper][0][:-3]
        )
        # The default model knows none of the product's items: no personalisation yet.
        assert recommend(stub, first_shopper).source != pb.RECOMMENDATION_SOURCE_PERSONALISED

        result = tmp_path / "result.json"
        run = train_command(registry, stack, result)
        assert run.returncode == 0, run.stdout + run.stderr
        outcome = json.loads(result.read_text())
        assert outcome["decision"] == "published", outcome
        assert "knows none" in outcome["reason"]
        assert outcome["version"] == 2 and outcome["served_version"] == 1
        assert "published" in run.stdout and "version 2" in run.stdout
        assert outcome["counts"]["users"] == 81 and outcome["counts"]["cold_items"] == 1
        assert outcome["database"] == DATABASE
        challenger, popularity = outcome["metrics"]["challenger"], outcome["metrics"]["popularity"]
        assert challenger["ndcg@10"] > popularity["ndcg@10"] + 0.3

        version = get_version("recommender", 2, registry, verify=True)
        index = ItemIndex.load(version.file("items.json"))
        assert DISCONTINUED not in index.item_ids and "sku-new" in index.cold
        assert all(i.startswith("sku-") for i in index.item_ids)
        assert f"`{DATABASE}`" in (version.path / "README.md").read_text()

        # Hot swap: the running server picks version 2 up and personalises with it.
        titles = {item.item_id: item.title for item in own_product.catalogue()}
        answers = {user: serving(stub, user, 2) for user in (first_shopper, other_shopper)}
        lists = {user: [i.item_id for i in r.items] for user, r in answers.items()}
        assert lists[first_shopper] != lists[other_shopper]
        for user, response in answers.items():
            assert lists[user] and all(i in titles for i in lists[user]), lists[user]
            seen_titles = {titles[i] for i in shoppers[user]}
            for item in response.items:
                assert any(t in item.reason for t in seen_titles), (item.reason, seen_titles)
        # The walks are learnt: the next item of each shopper's category comes first.
        last = shoppers[first_shopper][-1]
        category, position = last.rsplit("-", 1)
        assert lists[first_shopper][0] == f"{category}-{(int(position) + 1) % 10:02d}"

        # Gate: a challenger trained on shuffled interactions is refused, nothing changes.
        data = read_store(db)
        split = split_store_data(data)
        flat = np.random.default_rng(1).permutation(np.concatenate(split.train))
        cuts = np.cumsum([len(h) for h in split.train])[:-1]
        shuffled = replace(split, train=np.split(flat, cuts))
        refused = train_and_gate(data, shuffled, registry)
        assert refused.decision == "refused" and refused.version is None, refused
        assert refused.served_version == 2
        assert latest_version("recommender", registry) == 2
        assert recommend(stub, first_shopper).model_version == "2"

        # More of the product's own data: published, and served.
        more = own_product.walks(120, seed=0)
        newcomers = {f"{user}-{RUN}": h for user, h in more.items() if user not in shoppers}
        send(ingest, view_events(newcomers, START + timedelta(hours=1)))
        total = sum(len(h) for h in shoppers.values()) + sum(len(h) for h in newcomers.values())
        wait_for_store(db, total)
        published = train_from_store(db, registry)
        assert published.decision == "published" and published.version == 3, published
        assert published.served_version == 2
        assert published.counts["users"] == 81 + len(newcomers)
        assert serving(stub, first_shopper, 3).items


def test_the_store_is_read_in_time_order_within_the_window(stack: Stack) -> None:
    """Documents written directly: ties in time keep ``_id`` order, ``since_days`` drops older
    interactions (and their items become cold), removed items leave the axis."""
    name = f"lumen_shop_window_{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC).replace(microsecond=0)
    client: MongoClient[Doc] = MongoClient(stack.mongo_uri, tz_aware=True)
    with client:
        db = client[name]
        try:
            db[ITEMS].insert_many(
                [
                    {"_id": "sku-a", "title": "A", "categories": ["x"]},
                    {"_id": "sku-b", "title": "B"},
                    {"_id": "sku-old", "title": "Old"},
                    {"_id": "sku-gone", "title": "Gone", "removed": True},
                ]
            )
            rows = [
                ("m3:0", "u1", "sku-b", now - timedelta(hours=1)),
                ("m2:0", "u1", "sku-a", now - timedelta(hours=1)),  # same time: _id first
                ("m1:0", "u1", "sku-old", now - timedelta(days=20)),
                ("m4:0", "u2", "sku-gone", now - timedelta(hours=2)),
                ("m5:0", "u2", "sku-new", now - timedelta(minutes=5)),
            ]
            db[interactions.COLLECTION].insert_many(
                [
                    interactions.StoredInteraction(i, u, item, "view", at, 1.0).to_document()
                    for i, u, item, at in rows
                ]
            )

            everything = read_store(db)
            named = [[everything.item_ids[r] for r in h] for h in everything.histories]
            assert everything.item_ids == ["sku-a", "sku-b", "sku-new", "sku-old"]
            assert named == [["sku-old", "sku-a", "sku-b"], ["sku-new"]]
            assert everything.first == now - timedelta(days=20)
            assert everything.last == now - timedelta(minutes=5)
            assert everything.database == name and everything.cold == frozenset()

            recent = read_store(db, since_days=7)
            assert [[recent.item_ids[r] for r in h] for h in recent.histories] == [
                ["sku-a", "sku-b"],
                ["sku-new"],
            ]
            assert recent.cold == frozenset({"sku-old"})
            assert recent.first == now - timedelta(hours=1)
        finally:
            client.drop_database(name)
