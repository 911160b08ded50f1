"""Live search: items sent through ingest (Item Upserted / Item Deleted) are embedded by the
inference server from the catalogue's change stream and searchable within seconds; an
update changes what matches, a deletion removes the item, filters see the categories."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from lumen.v1 import inference_pb2 as pb
from lumen.v1 import inference_pb2_grpc as pb_grpc
from pymongo import MongoClient

from services.inference.item_vectors import COLLECTION as ITEM_VECTORS
from shared.model_registry import get_version
from tests.integration.inference_helpers import metric, start_inference
from tests.support.stack import ServiceProcess, Stack, wait_for

CATALOGUE_KEY = "lumen-dev-key"  # development mode: the documented key holds the catalogue scope
DEADLINE = 60.0  # generous: the change stream, the encoder and a busy machine


def start(stack: Stack, registry: Path) -> ServiceProcess:
    return start_inference(
        stack,
        registry,
        LUMEN_INFERENCE_SUPPORT_CONSUMER_ENABLED="false",
        LUMEN_INFERENCE_LIVE_SEARCH_ENABLED="true",
    )


@pytest.fixture(scope="module")
def server(stack: Stack, models_registry: Path) -> Iterator[ServiceProcess]:
    service = start(stack, models_registry)
    yield service
    service.stop()


@pytest.fixture(scope="module")
def search(server: ServiceProcess) -> Iterator[pb_grpc.SearchServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{server.ports['grpc']}") as channel:
        yield pb_grpc.SearchServiceStub(channel)


def send(ingest: ServiceProcess, event: str, item: dict[str, Any]) -> None:
    response = httpx.post(
        f"http://127.0.0.1:{ingest.ports['http']}/v1/track",
        json={
            "userId": "catalogue-service",
            "event": event,
            "messageId": uuid.uuid4().hex,
            "properties": {"item": item},
        },
        auth=(CATALOGUE_KEY, ""),
        timeout=10,
    )
    assert response.status_code == 200, response.text


def hits(
    stub: pb_grpc.SearchServiceStub, query: str, k: int = 5, categories: tuple[str, ...] = ()
) -> list[pb.SearchHit]:
    response = stub.SearchItems(
        pb.SearchItemsRequest(query=query, k=k, categories=list(categories)), timeout=10
    )
    return list(response.hits)


def until(check: Callable[[], Any]) -> Any:
    found = wait_for(check, timeout=DEADLINE)
    assert found, "not seen before the deadline"
    return found


def score_of(found: list[pb.SearchHit], item_id: str) -> float:
    return next(h.score for h in found if h.item_id == item_id)


def test_upserted_items_are_searchable_updated_filtered_and_deleted(
    ingest: ServiceProcess,
    profiles: ServiceProcess,
    server: ServiceProcess,
    search: pb_grpc.SearchServiceStub,
) -> None:
    tag = uuid.uuid4().hex[:8]
    kettle, boots = f"kettle-{tag}", f"boots-{tag}"
    home, outdoor = f"home-{tag}", f"outdoor-{tag}"
    send(
        ingest,
        "Item Upserted",
        {
            "id": kettle,
            "title": "Copper tea kettle",
            "categories": [home],
            "description": "A stovetop kettle that whistles when the water for your tea boils.",
        },
    )
    send(
        ingest,
        "Item Upserted",
        {
            "id": boots,
            "title": "Leather hiking boots",
            "categories": [outdoor],
            "description": "Waterproof boots for long walks on mountain trails.",
        },
    )
    # Found without a filter, among whatever else the catalogue holds.
    first = until(
        lambda: (h := hits(search, "copper kettle for boiling tea water", k=3))
        and kettle in [x.item_id for x in h]
        and h
    )
    top = next(h for h in first if h.item_id == kettle)
    assert top.title == "Copper tea kettle" and list(top.categories) == [home]
    tea_before = score_of(hits(search, "kettle for tea", categories=(home,)), kettle)

    # A category filter returns that category's items only.
    until(
        lambda: [h.item_id for h in hits(search, "kettle for tea", categories=(outdoor,))]
        == [boots]
    )
    both = hits(search, "kettle for tea", k=10, categories=(home, outdoor))
    assert [h.item_id for h in both] == [kettle, boots]
    response = search.SearchItems(pb.SearchItemsRequest(query="tea", k=1), timeout=10)
    assert response.model_name == "text-encoder"  # ranked by the live index

    # An update re-embeds the item: it matches its new text, not the old one.
    send(
        ingest,
        "Item Upserted",
        {
            "id": kettle,
            "title": "Wool winter sweater",
            "categories": [home],
            "description": "A warm knitted jumper for cold days.",
        },
    )
    updated = until(
        lambda: (h := hits(search, "warm wool sweater", categories=(home,)))
        and h[0].title == "Wool winter sweater"
        and h
    )
    assert updated[0].item_id == kettle
    assert score_of(hits(search, "kettle for tea", categories=(home,)), kettle) < tea_before

    # A deletion removes it from every answer.
    send(ingest, "Item Deleted", {"id": kettle})
    until(lambda: hits(search, "warm wool sweater", categories=(home,)) == [])
    assert kettle not in [h.item_id for h in hits(search, "Wool winter sweater", k=50)]
    assert [h.item_id for h in hits(search, "hiking boots", categories=(outdoor,))] == [boots]
    assert metric(server, "lumen_inference_search_index_updates_total", op="upsert") >= 3
    assert metric(server, "lumen_inference_search_index_updates_total", op="remove") >= 1
    assert metric(server, "lumen_inference_search_index_lag_seconds_count") >= 3


def test_vectors_are_cached_and_a_restarted_server_reuses_them(
    stack: Stack,
    models_registry: Path,
    ingest: ServiceProcess,
    profiles: ServiceProcess,
    server: ServiceProcess,
    search: pb_grpc.SearchServiceStub,
) -> None:
    item = f"lamp-{uuid.uuid4().hex[:8]}"
    send(ingest, "Item Upserted", {"id": item, "title": "Brass desk lamp", "categories": ["x"]})
    until(lambda: item in [h.item_id for h in hits(search, "brass desk lamp", k=3)])
    encoder = get_version("text-encoder", root=models_registry).config.sha256
    client: MongoClient[dict[str, Any]]
    with MongoClient(stack.mongo_uri) as client:
        cached = client[stack.mongo_database][ITEM_VECTORS].find_one({"_id": item})
    assert cached is not None and cached["encoder"] == encoder
    assert len(cached["vector"]) == 4 * cached["dim"]

    again = start(stack, models_registry)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{again.ports['grpc']}") as channel:
            stub = pb_grpc.SearchServiceStub(channel)
            until(lambda: item in [h.item_id for h in hits(stub, "brass desk lamp", k=3)])
        # Every live item's vector came from the cache the first server wrote.
        assert metric(again, "lumen_inference_search_items_embedded_total") == 0
        assert metric(again, "lumen_inference_search_index_items") >= 1
    finally:
        again.stop()


def kill_change_streams(client: MongoClient[dict[str, Any]], namespace: str) -> int:
    """Kill the cursors of every change stream open on ``namespace`` (idle or awaiting)."""
    found = client.admin.aggregate(
        [
            {"$currentOp": {"idleCursors": True, "allUsers": True}},
            {"$match": {"cursor.originatingCommand.pipeline.0.$changeStream": {"$exists": True}}},
        ]
    )
    cursors = [op["cursor"]["cursorId"] for op in found if op.get("ns") == namespace]
    database, collection = namespace.split(".", 1)
    if cursors:
        client[database].command("killCursors", collection, cursors=cursors)
    return len(cursors)


def test_search_keeps_answering_and_catches_up_when_the_change_stream_is_killed(
    stack: Stack,
    ingest: ServiceProcess,
    profiles: ServiceProcess,
    server: ServiceProcess,
    search: pb_grpc.SearchServiceStub,
) -> None:
    before = f"rug-{uuid.uuid4().hex[:8]}"
    send(ingest, "Item Upserted", {"id": before, "title": "Persian silk rug", "categories": ["y"]})
    until(lambda: before in [h.item_id for h in hits(search, "persian silk rug", k=3)])
    client: MongoClient[dict[str, Any]]
    with MongoClient(stack.mongo_uri) as client:
        killed = until(lambda: kill_change_streams(client, f"{stack.mongo_database}.items"))
    assert killed >= 1
    # The index is in memory: answers go on while the stream is reopened.
    assert before in [h.item_id for h in hits(search, "persian silk rug", k=3)]
    after = f"vase-{uuid.uuid4().hex[:8]}"
    send(ingest, "Item Upserted", {"id": after, "title": "Blue glass vase", "categories": ["y"]})
    until(lambda: after in [h.item_id for h in hits(search, "blue glass vase", k=3)])
