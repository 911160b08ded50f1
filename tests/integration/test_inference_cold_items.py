"""A cold item (no interactions when the model was trained) reaches users through its content
edges, over gRPC: the served recommender is fitted on the tiny catalogue with m3 ("Love
Story") never interacted with, linked by ``models/recommender/content.py`` from the warm
items its title resembles (the tiny text encoder of the same registry), and published with
m3 in ``items.json``'s cold list."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import numpy as np
import pytest
from lumen.v1 import inference_pb2 as pb
from lumen.v1 import inference_pb2_grpc as pb_grpc
from pymongo import MongoClient

from models.recommender import content
from models.recommender.model_choice import fit
from models.recommender.sequential import SequentialParams
from models.runtime.items import ItemIndex
from shared.model_registry import get_version
from tests.integration.inference_helpers import start_inference
from tests.support.stack import TEST_VAR, ServiceProcess, Stack, wait_for
from tests.unit.inference import tiny_models as tiny

COLD = "m3"
ROW = {item: row for row, item in enumerate(tiny.ITEMS)}
# Users move within two groups of warm items; nobody touches m3.
SESSIONS = [
    ["m1", "m2", "m4"],
    ["m2", "m1", "m4"],
    ["m1", "m4", "m2"],
    ["m5", "m6", "m7"],
    ["m6", "m5", "m8"],
    ["m5", "m7", "m6", "m8"],
]


def publish_cold_recommender(root: Path) -> content.ContentEdges:
    tiny.write_encoder(root)
    histories = [np.array([ROW[i] for i in s]) for s in SESSIONS]
    model = fit(histories, len(tiny.ITEMS), SequentialParams(max_len=tiny.HISTORY, ease_l2=1.0))
    # Tuning: the next item of three users, twice the cold one (so alpha is tuned on them).
    tuning = (
        [np.array([ROW["m1"]]), np.array([ROW["m2"], ROW["m1"]]), np.array([ROW["m5"]])],
        np.array([ROW[COLD], ROW[COLD], ROW["m6"]]),
    )
    edges = content.add_catalogue_content(
        model, tiny.TITLES, None, histories, tuning, encoder=get_version("text-encoder", root=root)
    )
    prior = np.bincount(np.concatenate(histories), minlength=len(tiny.ITEMS)) * 1e-4
    index = ItemIndex(tiny.ITEMS, tiny.TITLES, tiny.CATEGORIES, edges.cold_ids(tiny.ITEMS))
    staging = root / "items.json"
    index.save(staging)
    tiny.write_version(
        root,
        "recommender",
        1,
        model.to_onnx(prior.astype(np.float32)),
        "next-item-recommendation",
        [
            tiny._spec("recent_items", "int64", ["batch", "history"]),
            tiny._spec("exclude_mask", "bool", ["batch", len(tiny.ITEMS)]),
            tiny._spec("k", "int64", [1]),
        ],
        [*tiny.TOP, tiny._spec("top_reasons", "int64", ["batch", "k"])],
        files={"items.json": staging.read_text()},
        extra={"max_history": tiny.HISTORY},
        output_roles={**tiny.TOP_ROLES, "reasons": "top_reasons"},
    )
    return edges


@pytest.fixture(scope="module")
def cold_registry() -> tuple[Path, content.ContentEdges]:
    root = TEST_VAR / "models" / f"cold-{uuid.uuid4().hex[:8]}"
    root.mkdir(parents=True)
    return root, publish_cold_recommender(root)


@pytest.fixture(scope="module")
def server(
    stack: Stack, cold_registry: tuple[Path, content.ContentEdges]
) -> Iterator[ServiceProcess]:
    service = start_inference(stack, cold_registry[0])
    yield service
    service.stop()


def test_a_cold_item_is_recommended_with_a_content_reason(
    stack: Stack, server: ServiceProcess, cold_registry: tuple[Path, content.ContentEdges]
) -> None:
    _, edges = cold_registry
    assert edges.cold_ids(tiny.ITEMS) == [COLD] and edges.alpha_from == "tuning"
    # The history item m3's text resembles most (its strongest edge) names the reason.
    nearest = tiny.ITEMS[int(edges.warm[np.argmax(edges.cosine)])]
    other = "m5" if nearest != "m5" else "m6"
    user = f"cold-{uuid.uuid4().hex[:8]}"
    client: MongoClient[dict[str, object]] = MongoClient(stack.mongo_uri)
    try:
        client[stack.mongo_database]["profiles"].insert_one(
            {"_id": user, "recentItems": [other, nearest]}
        )
    finally:
        client.close()

    with grpc.insecure_channel(f"127.0.0.1:{server.ports['grpc']}") as channel:
        stub = pb_grpc.RecommendationServiceStub(channel)
        # Six unseen items: m3 (no prior, no collaborative score) earns one of three places
        # only through its content edges.
        response = stub.Recommend(
            pb.RecommendRequest(user_id=user, k=3, exclude_seen=True), timeout=5
        )
    assert response.source == pb.RECOMMENDATION_SOURCE_PERSONALISED
    by_id = {i.item_id: i for i in response.items}
    assert COLD in by_id, [i.item_id for i in response.items]
    cold = by_id[COLD]
    title = tiny.TITLES[tiny.ITEMS.index(nearest)]
    assert cold.reason_kind == pb.REASON_KIND_CONTENT
    assert cold.reason == f"similar to {title}"
    assert cold.title == "Love Story" and cold.score > 0
    warm = [i for i in response.items if i.item_id != COLD]
    assert warm and all(i.reason_kind == pb.REASON_KIND_COLLABORATIVE for i in warm)
    assert all(i.reason.startswith("because you viewed ") for i in warm)


def test_an_item_the_catalogue_removes_is_no_longer_recommended(
    stack: Stack, server: ServiceProcess
) -> None:
    user = f"cold-{uuid.uuid4().hex[:8]}"
    client: MongoClient[dict[str, object]] = MongoClient(stack.mongo_uri)
    db = client[stack.mongo_database]
    db["profiles"].insert_one({"_id": user, "recentItems": ["m1"]})
    request = pb.RecommendRequest(user_id=user, k=len(tiny.ITEMS))
    with grpc.insecure_channel(f"127.0.0.1:{server.ports['grpc']}") as channel:
        stub = pb_grpc.RecommendationServiceStub(channel)
        before = [i.item_id for i in stub.Recommend(request, timeout=5).items]
        assert len(before) == len(tiny.ITEMS)
        removed = before[0]
        try:
            title = tiny.TITLES[tiny.ITEMS.index(removed)]
            # As the profile updater marks it: inference reads the items whose updatedAt moved.
            mark = {"title": title, "removed": True, "updatedAt": datetime.now(UTC)}
            db["items"].update_one({"_id": removed}, {"$set": mark}, upsert=True)

            def without_it() -> list[str] | None:
                ids = [i.item_id for i in stub.Recommend(request, timeout=5).items]
                return ids if removed not in ids else None

            after = wait_for(without_it, timeout=10)
            assert after == [i for i in before if i != removed]
        finally:
            db["items"].delete_one({"_id": removed})  # other servers share the database
            client.close()
