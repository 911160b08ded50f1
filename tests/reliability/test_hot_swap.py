"""Model hot swap under load: two models get two new versions each while clients call the typed
APIs without pause; not one call fails, and every answer comes from a whole model version."""

from __future__ import annotations

import threading
import time
from collections import Counter

import grpc
from lumen.v1 import inference_pb2 as pb
from lumen.v1 import inference_pb2_grpc as pb_grpc

from tests.integration.inference_helpers import start_inference, tiny_registry
from tests.reliability.services import record
from tests.support.private_platform import PrivatePlatform
from tests.support.stack import wait_for
from tests.unit.inference import tiny_models as tiny


def test_hot_swap_of_two_models_under_load_fails_no_call(platform: PrivatePlatform) -> None:
    registry = tiny_registry()
    server = start_inference(
        platform.stack(), registry, LUMEN_INFERENCE_SUPPORT_CONSUMER_ENABLED="false"
    )
    versions: Counter[tuple[str, str]] = Counter()
    failures: list[str] = []
    stop = threading.Event()

    def intents() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{server.ports['grpc']}") as channel:
            stub = pb_grpc.IntentServiceStub(channel)
            while not stop.is_set():
                try:
                    r = stub.ClassifyIntent(
                        pb.ClassifyIntentRequest(text="refund please"), timeout=5
                    )
                    versions["intent", r.model_version] += 1
                    if r.prediction.intent != "refund":
                        failures.append(f"intent answered {r.prediction.intent}")
                except grpc.RpcError as exc:
                    failures.append(f"ClassifyIntent {exc.code()}: {exc.details()}")

    def recommendations() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{server.ports['grpc']}") as channel:
            stub = pb_grpc.RecommendationServiceStub(channel)
            while not stop.is_set():
                try:
                    r = stub.Recommend(
                        pb.RecommendRequest(anonymous_id="swap-load", k=2, context_item_ids=["m1"]),
                        timeout=5,
                    )
                    versions["recommender", r.model_version] += 1
                    if len(r.items) != 2:
                        failures.append(f"Recommend returned {len(r.items)} items")
                except grpc.RpcError as exc:
                    failures.append(f"Recommend {exc.code()}: {exc.details()}")

    threads = [
        threading.Thread(target=f) for f in (intents, intents, recommendations, recommendations)
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    try:
        for version in (2, 3):
            wait_for(
                lambda v=version: versions["intent", str(v - 1)] >= 20
                and versions["recommender", str(v - 1)] >= 20,
                timeout=30,
            )
            tiny.write_intent(registry, version)
            tiny.write_recommender(registry, version, boost=0.01 * version)
        wait_for(
            lambda: versions["intent", "3"] >= 20 and versions["recommender", "3"] >= 20, timeout=30
        )
    finally:
        stop.set()
        for t in threads:
            t.join()
        server.stop()
    record(
        "fault_model_hot_swap",
        {
            "calls": sum(versions.values()),
            "failed_calls": len(failures),
            "calls_per_model_version": {f"{m} v{v}": n for (m, v), n in sorted(versions.items())},
            "swaps": 4,
            "duration_seconds": round(time.monotonic() - started, 1),
        },
    )
    assert failures == []
    assert set(versions) == {(m, v) for m in ("intent", "recommender") for v in ("1", "2", "3")}
