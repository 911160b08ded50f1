"""The inference server over gRPC on tiny registry models, against the real mongod."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import inference.grpc_service_pb2 as v2
import inference.grpc_service_pb2_grpc as v2_grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from lumen.v1 import inference_pb2 as pb
from lumen.v1 import inference_pb2_grpc as pb_grpc
from pymongo import MongoClient

from models.runtime import TextTokenizer
from services.inference.v2_codec import decode_output
from tests.integration.inference_helpers import metric, start_inference, tiny_registry
from tests.support.stack import ServiceProcess, Stack, wait_for
from tests.unit.inference import tiny_models as tiny


@pytest.fixture(scope="module")
def server(stack: Stack) -> Iterator[ServiceProcess]:
    service = start_inference(stack, tiny_registry())
    yield service
    service.stop()


@pytest.fixture(scope="module")
def channel(server: ServiceProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{server.ports['grpc']}") as ch:
        yield ch


@pytest.fixture(scope="module")
def db(stack: Stack) -> Iterator[object]:
    client: MongoClient[dict[str, object]] = MongoClient(stack.mongo_uri)
    yield client[stack.mongo_database]
    client.close()


def code_of(call: object) -> grpc.StatusCode:
    try:
        call()  # type: ignore[operator]
    except grpc.RpcError as exc:
        return exc.code()
    raise AssertionError("the call succeeded")


def test_health_per_service_and_v2_server_endpoints(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in (
        "",
        "lumen.v1.IntentService",
        "lumen.v1.RecommendationService",
        "lumen.v1.SearchService",
        "inference.GRPCInferenceService",
    ):
        status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
        assert status == health_pb2.HealthCheckResponse.SERVING, service
    stub = v2_grpc.GRPCInferenceServiceStub(channel)
    assert stub.ServerLive(v2.ServerLiveRequest(), timeout=5).live
    assert stub.ServerReady(v2.ServerReadyRequest(), timeout=5).ready
    assert stub.ServerMetadata(v2.ServerMetadataRequest(), timeout=5).name == "lumen-inference"
    assert stub.ModelReady(v2.ModelReadyRequest(name="recommender", version="1"), timeout=5).ready
    assert not stub.ModelReady(
        v2.ModelReadyRequest(name="recommender", version="2"), timeout=5
    ).ready
    meta = stub.ModelMetadata(v2.ModelMetadataRequest(name="recommender"), timeout=5)
    assert meta.versions == ["1"] and meta.platform == "onnxruntime_onnx"
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [
        ("recent_items", "INT64", [-1, -1]),
        ("exclude_mask", "BOOL", [-1, 8]),
        ("k", "INT64", [1]),
    ]


def test_model_infer_with_a_generic_v2_request_matches_the_typed_api(
    channel: grpc.Channel, tmp_path: Path
) -> None:
    text = "what is my balance"
    typed = pb_grpc.IntentServiceStub(channel).ClassifyIntent(
        pb.ClassifyIntentRequest(text=text, top_k=3), timeout=5
    )
    (tmp_path / "tokenizer.json").write_text(tiny.tokenizer_json())
    tokens = TextTokenizer(tmp_path / "tokenizer.json").encode([text])
    stub = v2_grpc.GRPCInferenceServiceStub(channel)
    tensor = v2.ModelInferRequest.InferInputTensor
    # One request in raw form, one with typed contents: both are part of the protocol.
    raw_request = v2.ModelInferRequest(
        model_name="intent-classifier",
        id="raw",
        inputs=[tensor(name=n, datatype="INT64", shape=list(a.shape)) for n, a in tokens.items()],
        raw_input_contents=[a.astype("<i8").tobytes() for a in tokens.values()],
        outputs=[v2.ModelInferRequest.InferRequestedOutputTensor(name="probabilities")],
    )
    typed_request = v2.ModelInferRequest(
        model_name="intent-classifier",
        model_version="1",
        inputs=[
            tensor(
                name=n,
                datatype="INT64",
                shape=list(a.shape),
                contents=v2.InferTensorContents(int64_contents=a.ravel().tolist()),
            )
            for n, a in tokens.items()
        ],
    )
    for request in (raw_request, typed_request):
        response = stub.ModelInfer(request, timeout=5)
        assert response.model_name == "intent-classifier" and response.model_version == "1"
        probs = decode_output(response.outputs[0], response.raw_output_contents[0])[0]
        best = int(np.argmax(probs))
        assert tiny.INTENTS[best] == typed.prediction.intent == "balance"
        assert float(probs[best]) == pytest.approx(typed.prediction.confidence, abs=1e-6)
        alternatives = [(a.intent, a.confidence) for a in typed.prediction.alternatives]
        expected = sorted(
            ((tiny.INTENTS[i], float(p)) for i, p in enumerate(probs)), key=lambda pair: -pair[1]
        )
        assert [a[0] for a in alternatives] == [e[0] for e in expected]
    assert typed.model_name == "intent-classifier" and typed.model_version == "1"


def test_classify_intent_single_batch_and_out_of_scope(channel: grpc.Channel) -> None:
    stub = pb_grpc.IntentServiceStub(channel)
    batch = stub.ClassifyIntentBatch(
        pb.ClassifyIntentBatchRequest(
            texts=["refund", "the weather is love", "transfer money"], top_k=2
        ),
        timeout=5,
    )
    got = [(p.intent, p.out_of_scope, len(p.alternatives)) for p in batch.predictions]
    assert got == [("refund", False, 2), ("out_of_scope", True, 2), ("transfer", False, 2)]


def test_every_error_case_returns_its_status(channel: grpc.Channel) -> None:
    v2_stub = v2_grpc.GRPCInferenceServiceStub(channel)
    intents = pb_grpc.IntentServiceStub(channel)
    recs = pb_grpc.RecommendationServiceStub(channel)
    search = pb_grpc.SearchServiceStub(channel)
    tensor = v2.ModelInferRequest.InferInputTensor
    ids = v2.InferTensorContents(int64_contents=[2, 3])

    def infer(model: str = "intent-classifier", version: str = "", **kw: object) -> object:
        inputs = kw.get("inputs") or [
            tensor(name="input_ids", datatype="INT64", shape=[1, 2], contents=ids),
            tensor(name="attention_mask", datatype="INT64", shape=[1, 2], contents=ids),
        ]
        return lambda: v2_stub.ModelInfer(
            v2.ModelInferRequest(model_name=model, model_version=version, inputs=inputs), timeout=5
        )

    not_found = grpc.StatusCode.NOT_FOUND
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(infer("no-such-model")) == not_found
    assert code_of(infer(version="9")) == not_found
    assert (
        code_of(lambda: v2_stub.ModelMetadata(v2.ModelMetadataRequest(name="nope"), timeout=5))
        == not_found
    )
    floats = v2.InferTensorContents(fp32_contents=[1.0, 2.0])
    wrong_dtype = [
        tensor(name="input_ids", datatype="FP32", shape=[1, 2], contents=floats),
        tensor(name="attention_mask", datatype="INT64", shape=[1, 2], contents=ids),
    ]
    assert code_of(infer(inputs=wrong_dtype)) == invalid
    wrong_shape = [
        tensor(name="input_ids", datatype="INT64", shape=[2], contents=ids),
        tensor(name="attention_mask", datatype="INT64", shape=[2], contents=ids),
    ]
    assert code_of(infer(inputs=wrong_shape)) == invalid
    wrong_count = [
        tensor(name="input_ids", datatype="INT64", shape=[1, 3], contents=ids),
        tensor(name="attention_mask", datatype="INT64", shape=[1, 2], contents=ids),
    ]
    assert code_of(infer(inputs=wrong_count)) == invalid

    def recommender_inputs(recent: list[int], k: int = 3) -> list[object]:
        rows = v2.InferTensorContents(int64_contents=recent)
        mask = v2.InferTensorContents(bool_contents=[False] * 8)
        return [
            tensor(name="recent_items", datatype="INT64", shape=[1, len(recent)], contents=rows),
            tensor(name="exclude_mask", datatype="BOOL", shape=[1, 8], contents=mask),
            tensor(
                name="k",
                datatype="INT64",
                shape=[1],
                contents=v2.InferTensorContents(int64_contents=[k]),
            ),
        ]

    # Values the graph cannot run (a row past the 8 items, more than the 4 trained history
    # positions, k above the catalogue) are the caller's error, found before batching.
    for bad in (
        recommender_inputs([0, 99]),
        recommender_inputs([0, 1, 2, 3, 4]),
        recommender_inputs([0], k=9),
    ):
        assert code_of(infer("recommender", inputs=bad)) == invalid
    assert infer("recommender", inputs=recommender_inputs([-1, 0], k=8))().outputs  # type: ignore[operator]
    assert (
        code_of(lambda: intents.ClassifyIntent(pb.ClassifyIntentRequest(text="  "), timeout=5))
        == invalid
    )
    assert (
        code_of(
            lambda: intents.ClassifyIntent(pb.ClassifyIntentRequest(text="x" * 2001), timeout=5)
        )
        == invalid
    )
    assert (
        code_of(
            lambda: intents.ClassifyIntent(pb.ClassifyIntentRequest(text="hi", top_k=21), timeout=5)
        )
        == invalid
    )
    assert (
        code_of(lambda: intents.ClassifyIntentBatch(pb.ClassifyIntentBatchRequest(), timeout=5))
        == invalid
    )
    assert (
        code_of(lambda: recs.Recommend(pb.RecommendRequest(user_id="u", k=101), timeout=5))
        == invalid
    )
    assert code_of(lambda: recs.Recommend(pb.RecommendRequest(k=5), timeout=5)) == invalid
    assert (
        code_of(lambda: search.SearchItems(pb.SearchItemsRequest(query="toy", k=-1), timeout=5))
        == invalid
    )
    assert (
        code_of(lambda: search.SearchItems(pb.SearchItemsRequest(query=""), timeout=5)) == invalid
    )


def test_recommendations_follow_the_profile_with_reasons(channel: grpc.Channel, db: object) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    db["profiles"].insert_one({"_id": user, "recentItems": ["m1"], "purchasedItems": ["m2"]})  # type: ignore[index]
    stub = pb_grpc.RecommendationServiceStub(channel)
    response = stub.Recommend(pb.RecommendRequest(user_id=user, k=3), timeout=5)
    assert response.source == pb.RECOMMENDATION_SOURCE_PERSONALISED
    assert response.model_name == "recommender" and response.model_version == "1"
    assert [i.item_id for i in response.items][:2] == ["m2", "m3"]  # m1 suggests m2, then m3
    assert response.items[0].title == "Space Robots"
    assert response.items[0].reason == "because you viewed Toy Story"
    assert response.recommendation_id
    seen_excluded = stub.Recommend(
        pb.RecommendRequest(user_id=user, k=3, exclude_seen=True), timeout=5
    )
    assert {"m1", "m2"}.isdisjoint(i.item_id for i in seen_excluded.items)
    romance = stub.Recommend(
        pb.RecommendRequest(user_id=user, k=3, categories=["Romance"]), timeout=5
    )
    assert [i.item_id for i in romance.items] == ["m3"]
    # The item being looked at counts as the newest one and is never recommended itself.
    context = stub.Recommend(
        pb.RecommendRequest(user_id=user, k=2, context_item_ids=["m5"]), timeout=5
    )
    assert [(i.item_id, i.reason) for i in context.items] == [
        ("m2", "because you viewed Toy Story"),
        ("m6", "because you viewed Money Heist"),
    ]


def test_unknown_user_gets_what_is_trending_and_is_told_so(
    channel: grpc.Channel, db: object, server: ServiceProcess
) -> None:
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = int(hour.timestamp())
    db["trends"].insert_many(  # type: ignore[index]
        [
            {
                "_id": f"1h|item|{start}|{item}",
                "window": "1h",
                "kind": "item",
                "key": item,
                "start": hour,
                "views": views,
                "purchases": 0,
                "expiresAt": hour + timedelta(hours=3),
            }
            for item, views in (("m7", 50), ("m4", 40), ("m2", 10))
        ]
    )
    stub = pb_grpc.RecommendationServiceStub(channel)

    def trending() -> pb.RecommendResponse | None:
        r = stub.Recommend(
            pb.RecommendRequest(anonymous_id=f"anon-{uuid.uuid4().hex}", k=2), timeout=5
        )
        return r if [i.item_id for i in r.items] == ["m7", "m4"] else None

    response = wait_for(trending, timeout=10)
    assert isinstance(response, pb.RecommendResponse)
    assert response.source == pb.RECOMMENDATION_SOURCE_TRENDING
    assert response.items[0].reason == "trending now"
    assert metric(server, "lumen_inference_recommend_responses_total", source="trending") >= 1


def test_semantic_search_ranks_and_filters_the_catalogue(channel: grpc.Channel) -> None:
    stub = pb_grpc.SearchServiceStub(channel)
    response = stub.SearchItems(pb.SearchItemsRequest(query="space robots", k=3), timeout=5)
    assert response.hits[0].item_id == "m2" and response.hits[0].title == "Space Robots"
    assert response.model_name == "item-search" and len(response.hits) == 3
    drama = stub.SearchItems(
        pb.SearchItemsRequest(query="space robots", k=5, categories=["Drama"]), timeout=5
    )
    assert {h.item_id for h in drama.hits} == {"m6", "m8"}


def test_metrics_expose_per_model_version_series(
    channel: grpc.Channel, server: ServiceProcess
) -> None:
    stub = pb_grpc.IntentServiceStub(channel)
    for _ in range(3):
        stub.ClassifyIntent(pb.ClassifyIntentRequest(text="refund"), timeout=5)
    labels = {"model": "intent-classifier", "version": "1"}
    assert metric(server, "lumen_inference_model_requests_total", outcome="success", **labels) >= 3
    assert metric(server, "lumen_inference_model_inferences_total", **labels) >= 3
    assert metric(server, "lumen_inference_model_executions_total", **labels) >= 1
    assert metric(server, "lumen_inference_model_queue_seconds_count", **labels) >= 3
    assert metric(server, "lumen_inference_model_compute_seconds_count", **labels) >= 1
    assert metric(server, "lumen_inference_model_loaded", **labels) == 1
