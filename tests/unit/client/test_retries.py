"""The client's retry policy against a real gRPC server on 127.0.0.1 that fails on purpose."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field

import grpc
import pytest
from lumen.v1 import events_pb2, events_pb2_grpc, inference_pb2, inference_pb2_grpc

from lumen_client import (
    AsyncLumenClient,
    DeadlineExceeded,
    InvalidArgument,
    LumenClient,
    RetryPolicy,
    Unavailable,
)
from tests.support.stack import free_port

FAST = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.05)


@dataclass
class Script:
    """How the fake server answers: fail ``failures`` times with ``code``, then succeed."""

    failures: int = 0
    code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
    delay: float = 0.0
    calls: int = 0
    peers: list[str] = field(default_factory=list)
    metadata: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, context: grpc.ServicerContext) -> bool:
        with self.lock:
            self.calls += 1
            self.peers.append(context.peer())
            self.metadata.append({k: str(v) for k, v in context.invocation_metadata()})
            failing = self.calls <= self.failures
        if self.delay:
            time.sleep(self.delay)
        if failing:
            context.abort(self.code, f"scripted failure {self.calls}")
        return True


class Intents(inference_pb2_grpc.IntentServiceServicer):
    def __init__(self, script: Script) -> None:
        self.script = script

    def ClassifyIntent(self, request, context):
        self.script.answer(context)
        prediction = inference_pb2.IntentPrediction(intent="card_arrival", confidence=0.9)
        return inference_pb2.ClassifyIntentResponse(
            prediction=prediction, model_name="intent-classifier", model_version="1"
        )


class Events(events_pb2_grpc.EventServiceServicer):
    def __init__(self, script: Script) -> None:
        self.script = script

    def Publish(self, request, context):
        self.script.answer(context)
        return events_pb2.PublishResponse(accepted=len(request.events))


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()
    srv = grpc.server(futures.ThreadPoolExecutor(4))
    inference_pb2_grpc.add_IntentServiceServicer_to_server(Intents(script), srv)
    events_pb2_grpc.add_EventServiceServicer_to_server(Events(script), srv)
    port = srv.add_insecure_port("127.0.0.1:0")
    srv.start()
    yield f"127.0.0.1:{port}", script
    srv.stop(None)


def test_unavailable_is_retried_until_it_succeeds(server: tuple[str, Script]) -> None:
    target, script = server
    script.failures = 2
    with LumenClient(target, retries=FAST, timeout=5) as client:
        result = client.classify_intent("where is my card?")
    assert result.prediction.intent == "card_arrival"
    assert script.calls == 3


def test_gives_up_after_max_attempts(server: tuple[str, Script]) -> None:
    target, script = server
    script.failures = 100
    with LumenClient(target, retries=FAST, timeout=5) as client, pytest.raises(Unavailable):
        client.classify_intent("hello")
    assert script.calls == FAST.max_attempts


def test_other_errors_are_not_retried(server: tuple[str, Script]) -> None:
    target, script = server
    script.failures, script.code = 5, grpc.StatusCode.INVALID_ARGUMENT
    with LumenClient(target, retries=FAST) as client, pytest.raises(InvalidArgument) as raised:
        client.classify_intent("")
    assert script.calls == 1
    assert "scripted failure 1" in raised.value.details


def test_retries_stay_within_the_deadline(server: tuple[str, Script]) -> None:
    target, script = server
    script.failures, script.delay = 100, 0.15
    slow_backoff = RetryPolicy(max_attempts=50, initial_backoff=0.05, max_backoff=0.05)
    started = time.monotonic()
    with (
        LumenClient(target, retries=slow_backoff, timeout=0.5) as client,
        pytest.raises((DeadlineExceeded, Unavailable)),
    ):
        client.classify_intent("hello")
    # 50 attempts would take > 7 s; the shared 0.5 s deadline stops them after a few.
    assert time.monotonic() - started < 2.0
    assert 1 <= script.calls < 10


def test_publishing_without_message_ids_is_not_retried(server: tuple[str, Script]) -> None:
    target, script = server
    script.failures = 1
    event = {"type": "track", "userId": "u1", "event": "Item Viewed"}
    with LumenClient(ingest_target=target, retries=FAST) as client, pytest.raises(Unavailable):
        client.publish_events([event])
    assert script.calls == 1


def test_publishing_with_message_ids_is_retried(server: tuple[str, Script]) -> None:
    target, script = server
    script.failures = 2
    events = [
        {
            "type": "track",
            "userId": "u1",
            "event": "Item Viewed",
            "messageId": "m-1",
            "properties": {"itemId": "50"},
            "timestamp": "2024-05-01T10:00:00Z",
        }
    ]
    with LumenClient(ingest_target=target, retries=FAST, write_key="k-123") as client:
        result = client.publish_events(events)
    assert (result.accepted, script.calls) == (1, 3)
    assert script.metadata[-1]["authorization"] == "Bearer k-123"


def test_one_connection_is_reused_across_calls(server: tuple[str, Script]) -> None:
    target, script = server
    with LumenClient(target, retries=FAST) as client:
        for _ in range(5):
            client.classify_intent("hello")
        assert client.channel(target) is client.channel(target)
    # Every call arrived from the same client socket (same peer address and port).
    assert len(set(script.peers)) == 1


def test_unreachable_server_raises_unavailable_after_retries() -> None:
    target = f"127.0.0.1:{free_port()}"  # nothing listens here
    started = time.monotonic()
    with LumenClient(target, retries=FAST, timeout=3) as client, pytest.raises(Unavailable):
        client.classify_intent("hello")
    assert time.monotonic() - started < 3


def test_backoff_grows_exponentially_with_full_jitter() -> None:
    policy = RetryPolicy(max_attempts=10, initial_backoff=0.1, max_backoff=1.0, multiplier=2)
    rng = random.Random(7)
    for retry, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        samples = [policy.backoff(retry, rng) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        # Jitter spreads the pauses over the whole range rather than one fixed value.
        assert max(samples) > 0.8 * ceiling and min(samples) < 0.2 * ceiling


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


async def test_the_asyncio_client_retries_and_gives_up_alike(server: tuple[str, Script]) -> None:
    target, script = server
    script.failures = 2
    async with AsyncLumenClient(target, retries=FAST, timeout=5) as client:
        result = await client.classify_intent("where is my card?")
        assert (result.prediction.intent, script.calls) == ("card_arrival", 3)
        script.failures, script.calls = 100, 0
        with pytest.raises(Unavailable):
            await client.classify_intent("hello")
    assert script.calls == FAST.max_attempts


def test_the_retry_policy_is_grpcs_service_config() -> None:
    config = json.loads(FAST.service_config(["lumen.v1.IntentService"]))
    (method,) = config["methodConfig"]
    assert method["name"] == [{"service": "lumen.v1.IntentService"}]
    assert method["retryPolicy"] == {
        "maxAttempts": 4,
        "initialBackoff": "0.01s",
        "maxBackoff": "0.05s",
        "backoffMultiplier": 2.0,
        "retryableStatusCodes": ["UNAVAILABLE"],
    }
    assert "retryPolicy" not in json.loads(RetryPolicy(1).service_config(["x"]))["methodConfig"][0]
