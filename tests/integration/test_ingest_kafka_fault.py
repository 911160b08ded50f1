"""With its Kafka stopped, ingest answers 503 and acknowledges nothing; when Kafka is back it
recovers by itself. Runs its own broker (var/test-ingest-fault, ports 19192/19193) so the
shared test Kafka is never touched."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import grpc
import httpx
import pytest
from lumen.v1 import events_pb2, events_pb2_grpc

from lumen_cli.platform import kafka
from lumen_cli.platform.services import grpc_serving
from shared.topics import EVENTS_RAW
from tests.integration.test_ingest import KEYS, TopicReader, start_ingest
from tests.support.stack import REPO, ServiceProcess, wait_for

FAULT_ENV = {
    "LUMEN_VAR_DIR": str(REPO / "var" / "test-ingest-fault"),
    "LUMEN_CACHE_DIR": str(REPO / "var" / "cache"),
    "LUMEN_LOCAL_KAFKA_PORT": "19192",
    "LUMEN_LOCAL_KAFKA_CONTROLLER_PORT": "19193",
    "LUMEN_LOCAL_KAFKA_HEAP": "256m",
}


@pytest.fixture
def own_kafka(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in FAULT_ENV.items():
        monkeypatch.setenv(name, value)
    kafka.stop()  # a broker left over from an interrupted run
    bootstrap = kafka.start()
    try:
        yield bootstrap
    finally:
        # monkeypatch restores the environment after this, so stop with our variables set.
        os.environ.update(FAULT_ENV)
        kafka.stop()


def track(service: ServiceProcess, user: str, message_id: str) -> httpx.Response:
    return httpx.post(
        f"http://127.0.0.1:{service.ports['http']}/v1/track",
        auth=(KEYS["web"], ""),
        json={"userId": user, "event": "Fault", "messageId": message_id},
        timeout=15,
    )


def test_kafka_down_means_503_and_recovery_is_automatic(own_kafka: str) -> None:
    service = start_ingest(
        {
            "LUMEN_KAFKA_BOOTSTRAP_SERVERS": own_kafka,
            "LUMEN_KAFKA_TOPIC_PARTITIONS": "2",
            "LUMEN_INGEST_PRODUCE_TIMEOUT_SECONDS": "2",
            "LUMEN_INGEST_KAFKA_PROBE_INTERVAL_SECONDS": "0.5",
            "LUMEN_LOG_FORMAT": "text",
        },
        name="ingest-fault",
    )
    user = f"fault-{uuid.uuid4().hex[:8]}"
    base = f"http://127.0.0.1:{service.ports['http']}"
    try:
        assert track(service, user, "before").status_code == 200

        kafka.stop()
        refused: list[str] = []
        for i in range(5):
            response = track(service, user, f"down-{i}")
            assert response.status_code == 503, response.text
            assert int(response.headers["Retry-After"]) >= 1
            assert response.json()["reason"] == "kafka_unavailable"
            refused.append(f"down-{i}")
        wait_for(lambda: httpx.get(f"{base}/readyz").status_code == 503, timeout=5)
        assert not grpc_serving(f"127.0.0.1:{service.ports['grpc']}")
        with grpc.insecure_channel(f"127.0.0.1:{service.ports['grpc']}") as channel:
            stub = events_pb2_grpc.EventServiceStub(channel)
            event = events_pb2.Event(type=events_pb2.EVENT_TYPE_TRACK, user_id=user, event="F")
            with pytest.raises(grpc.RpcError) as unavailable:
                stub.Publish(
                    events_pb2.PublishRequest(events=[event]),
                    metadata=(("authorization", "Bearer " + KEYS["web"]),),
                )
            assert unavailable.value.code() == grpc.StatusCode.UNAVAILABLE
        assert httpx.get(f"{base}/healthz").status_code == 200, "alive, only not ready"

        kafka.start()
        wait_for(lambda: httpx.get(f"{base}/readyz").status_code == 200, timeout=30)
        wait_for(lambda: grpc_serving(f"127.0.0.1:{service.ports['grpc']}"), timeout=5)
        # The client's retry of a refused event is stored: it was never marked as seen.
        retried = wait_for(lambda: track(service, user, "down-0").status_code == 200, timeout=30)
        assert retried
        assert track(service, user, "after").status_code == 200
    finally:
        service.stop()

    reader = TopicReader(own_kafka, (EVENTS_RAW.name,))
    try:
        reader.consumer.seek_to_beginning()
        reader.wait(EVENTS_RAW.name, lambda e: e.get("userId") == user, 3, timeout=15)
        for _ in range(3):  # anything written after those three would show up now
            reader.poll()
    finally:
        reader.close()
    ids = [e["messageId"] for _, _, e in reader.records if e.get("userId") == user]
    assert ids == ["before", "down-0", "after"], ids
