"""MongoDB unreachable: Recommend answers trending, flagged as degraded, and says so in
metrics; the other APIs keep working."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from lumen.v1 import inference_pb2 as pb
from lumen.v1 import inference_pb2_grpc as pb_grpc

from tests.integration.inference_helpers import metric, start_inference, tiny_registry
from tests.support.stack import ServiceProcess, Stack, free_port


@pytest.fixture(scope="module")
def server(stack: Stack) -> Iterator[ServiceProcess]:
    dead = free_port()  # nothing listens there: every MongoDB call fails
    service = start_inference(
        stack,
        tiny_registry(),
        LUMEN_MONGO_URI=f"mongodb://127.0.0.1:{dead}/?serverSelectionTimeoutMS=300",
        LUMEN_MONGO_TIMEOUT_MS="300",
        LUMEN_INFERENCE_SUPPORT_CONSUMER_ENABLED="false",
    )
    yield service
    service.stop()


def test_recommend_degrades_to_trending_when_mongodb_is_down(server: ServiceProcess) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.ports['grpc']}") as channel:
        stub = pb_grpc.RecommendationServiceStub(channel)
        responses = [
            stub.Recommend(pb.RecommendRequest(user_id="someone", k=3), timeout=5) for _ in range(3)
        ]
        intent = pb_grpc.IntentServiceStub(channel).ClassifyIntent(
            pb.ClassifyIntentRequest(text="refund"), timeout=5
        )
    for response in responses:
        assert response.source == pb.RECOMMENDATION_SOURCE_TRENDING_DEGRADED
        # No trends could be read: the recommender's popularity prior fills the list.
        assert len(response.items) == 3 and response.model_name == "recommender"
    assert intent.prediction.intent == "refund"
    assert (
        metric(server, "lumen_inference_recommend_responses_total", source="trending_degraded") == 3
    )
    assert metric(server, "lumen_inference_profile_store_errors_total") >= 1
    assert metric(server, "lumen_inference_profile_store_up") == 0
