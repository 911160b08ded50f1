"""End to end: a user's recommendations change after their new events pass through ingest
(HTTP), Kafka and the profile updater into MongoDB (real services, tiny models)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import httpx
import pytest
from lumen.v1 import inference_pb2 as pb
from lumen.v1 import inference_pb2_grpc as pb_grpc

from tests.integration.inference_helpers import start_inference, tiny_registry
from tests.support.stack import ServiceProcess, Stack, wait_for

WRITE_KEY = "lumen-dev-key"


@pytest.fixture(scope="module")
def server(stack: Stack) -> Iterator[ServiceProcess]:
    service = start_inference(
        stack, tiny_registry(), LUMEN_INFERENCE_SUPPORT_CONSUMER_ENABLED="false"
    )
    yield service
    service.stop()


def test_recommendations_change_after_new_events(
    ingest: ServiceProcess, profiles: ServiceProcess, server: ServiceProcess
) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"

    def view(item: str) -> None:
        response = httpx.post(
            f"http://127.0.0.1:{ingest.ports['http']}/v1/track",
            json={
                "userId": user,
                "event": "Item Viewed",
                "properties": {"itemId": item},
                "messageId": uuid.uuid4().hex,
            },
            auth=(WRITE_KEY, ""),
            timeout=10,
        )
        assert response.status_code == 200, response.text

    with grpc.insecure_channel(f"127.0.0.1:{server.ports['grpc']}") as channel:
        stub = pb_grpc.RecommendationServiceStub(channel)

        def recommend() -> pb.RecommendResponse:
            return stub.Recommend(pb.RecommendRequest(user_id=user, k=2), timeout=5)

        before = recommend()
        assert before.source == pb.RECOMMENDATION_SOURCE_TRENDING  # no profile yet

        view("m1")
        first = wait_for(
            lambda: (r := recommend()).source == pb.RECOMMENDATION_SOURCE_PERSONALISED and r,
            timeout=120,
        )
        assert isinstance(first, pb.RecommendResponse)
        assert [i.item_id for i in first.items] == ["m2", "m3"]
        assert first.items[0].reason == "because you viewed Toy Story"

        view("m5")

        def shows_m6() -> pb.RecommendResponse | None:
            response = recommend()
            return response if "m6" in [i.item_id for i in response.items] else None

        second = wait_for(shows_m6, timeout=120)
        assert isinstance(second, pb.RecommendResponse)
        assert [(i.item_id, i.reason) for i in second.items] == [
            ("m2", "because you viewed Toy Story"),
            ("m6", "because you viewed Money Heist"),
        ]
