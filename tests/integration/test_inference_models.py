"""Hot swap under load with zero failed requests, and refusal of a broken version."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import inference.grpc_service_pb2 as v2
import inference.grpc_service_pb2_grpc as v2_grpc
import pytest
from lumen.v1 import inference_pb2 as pb
from lumen.v1 import inference_pb2_grpc as pb_grpc

from tests.integration.inference_helpers import metric, start_inference, tiny_registry
from tests.support.stack import ServiceProcess, Stack, wait_for
from tests.unit.inference import tiny_models as tiny


@pytest.fixture(scope="module")
def registry() -> Path:
    return tiny_registry()


@pytest.fixture(scope="module")
def server(stack: Stack, registry: Path) -> Iterator[ServiceProcess]:
    service = start_inference(stack, registry, LUMEN_INFERENCE_SUPPORT_CONSUMER_ENABLED="false")
    yield service
    service.stop()


def test_hot_swap_under_load_fails_no_request(server: ServiceProcess, registry: Path) -> None:
    versions: Counter[str] = Counter()
    failures: list[str] = []
    stop = threading.Event()

    def client() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{server.ports['grpc']}") as channel:
            stub = pb_grpc.IntentServiceStub(channel)
            while not stop.is_set():
                try:
                    r = stub.ClassifyIntent(
                        pb.ClassifyIntentRequest(text="refund please"), timeout=5
                    )
                    versions[r.model_version] += 1
                except grpc.RpcError as exc:
                    failures.append(f"{exc.code()}: {exc.details()}")

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: versions["1"] >= 20, timeout=20)
        tiny.write_intent(registry, 2)
        wait_for(lambda: versions["2"] >= 20, timeout=20)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert versions["1"] >= 20 and versions["2"] >= 20
    with grpc.insecure_channel(f"127.0.0.1:{server.ports['grpc']}") as channel:
        stub = v2_grpc.GRPCInferenceServiceStub(channel)
        ready = {
            v: stub.ModelReady(
                v2.ModelReadyRequest(name="intent-classifier", version=v), timeout=5
            ).ready
            for v in ("1", "2")
        }
    assert ready == {"1": False, "2": True}
    # Version 1 is unloaded once the grace period for requests that took it has passed.
    wait_for(
        lambda: metric(
            server, "lumen_inference_model_loaded", model="intent-classifier", version="1"
        )
        == 0,
        timeout=30,
    )


@pytest.mark.parametrize("kind", ["bad_file", "wrong_shape"])
def test_a_broken_new_version_is_refused_and_the_old_one_keeps_serving(
    server: ServiceProcess, registry: Path, kind: str
) -> None:
    version = 2 if kind == "bad_file" else 3
    if kind == "bad_file":
        tiny.write_version(
            registry,
            "recommender",
            version,
            b"\x00garbage",
            "recommendation",
            [tiny._spec("recent_items", "int64", ["batch", "history"])],
            tiny.TOP,
        )
    else:  # a valid graph whose item axis disagrees with its own config
        tiny.write_version(
            registry,
            "recommender",
            version,
            tiny.recommender_model(),
            "recommendation",
            [
                tiny._spec("recent_items", "int64", ["batch", "history"]),
                tiny._spec("exclude_mask", "bool", ["batch", 99]),
                tiny._spec("k", "int64", [1]),
            ],
            tiny.TOP,
            files={"items.json": tiny.items_json()},
        )
    wait_for(
        lambda: metric(
            server,
            "lumen_inference_model_load_failures_total",
            model="recommender",
            version=str(version),
        )
        >= 1,
        timeout=10,
    )
    with grpc.insecure_channel(f"127.0.0.1:{server.ports['grpc']}") as channel:
        stub = v2_grpc.GRPCInferenceServiceStub(channel)
        assert not stub.ModelReady(
            v2.ModelReadyRequest(name="recommender", version=str(version)), timeout=5
        ).ready
        assert stub.ModelReady(
            v2.ModelReadyRequest(name="recommender", version="1"), timeout=5
        ).ready
        r = pb_grpc.RecommendationServiceStub(channel).Recommend(
            pb.RecommendRequest(anonymous_id="nobody-yet", k=2, context_item_ids=["m1"]), timeout=5
        )
    assert r.model_version == "1" and [i.item_id for i in r.items] == ["m2", "m3"]
    assert "model version refused" in server.log()
