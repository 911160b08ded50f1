"""The ingest service against the real Kafka: each call type, dedupe, partial batches, every
kind of bad request, rate limits, erasure, gRPC, and graceful drain."""

from __future__ import annotations

import base64
import shutil
import signal
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import httpx
import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition
from lumen.v1 import events_pb2, events_pb2_grpc

from lumen_cli.platform.services import grpc_serving, http_ok
from services.ingest.auth import WriteKeys
from services.ingest.grpc_api import ERRORS_TRAILER
from services.ingest.openapi import openapi_document
from shared.events import DELETE_TYPE, MAX_ID_LENGTH, decode
from shared.topics import EVENTS_DLQ, EVENTS_RAW
from tests.support.stack import ServiceProcess, Stack, free_port, start_service, wait_for

KEYS = {"web": "web-write-key", "limited": "limited-write-key"}
WRITE_KEYS = ",".join(WriteKeys.entry(source, key) for source, key in KEYS.items())
CATALOG_KEY, ADMIN_KEY = "backend-catalog-key", "ops-admin-key"
KEY_SETTINGS = {
    "LUMEN_INGEST_WRITE_KEYS": WRITE_KEYS,
    "LUMEN_INGEST_CATALOG_KEYS": WriteKeys.entry("backend", CATALOG_KEY),
    "LUMEN_INGEST_ADMIN_KEYS": WriteKeys.entry("ops", ADMIN_KEY),
}


def start_ingest(env: dict[str, str], name: str = "ingest-under-test") -> ServiceProcess:
    http, grpc_port, metrics = free_port(), free_port(), free_port()
    return start_service(
        name,
        "services.ingest",
        {
            **KEY_SETTINGS,
            **env,
            "LUMEN_INGEST_HTTP_PORT": str(http),
            "LUMEN_INGEST_GRPC_PORT": str(grpc_port),
            "LUMEN_INGEST_METRICS_PORT": str(metrics),
        },
        ready=lambda: http_ok(f"http://127.0.0.1:{http}/readyz"),
        ports={"http": http, "grpc": grpc_port, "metrics": metrics},
    )


class TopicReader:
    """Reads every partition of some topics from the offsets current at construction."""

    def __init__(self, bootstrap: str, topics: tuple[str, ...]) -> None:
        self.consumer = KafkaConsumer(
            bootstrap_servers=[bootstrap],
            enable_auto_commit=False,
            group_id=None,
            consumer_timeout_ms=200,
        )
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(self.consumer.partitions_for_topic(topic) or ())
        ]
        self.consumer.assign(partitions)
        self.consumer.seek_to_end(*partitions)
        for tp in partitions:  # resolve the end offsets now, not at the first poll
            self.consumer.position(tp)
        self.records: list[tuple[str, bytes | None, dict[str, Any]]] = []

    def poll(self) -> None:
        for batch in self.consumer.poll(timeout_ms=200).values():
            for record in batch:
                try:
                    self.records.append((record.topic, record.key, decode(record.value)))
                except ValueError:
                    continue

    def wait(
        self, topic: str, match: Callable[[dict[str, Any]], bool], count: int, timeout: float = 20.0
    ) -> list[tuple[bytes | None, dict[str, Any]]]:
        """At least ``count`` records of ``topic`` that ``match``; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            found = [(k, v) for t, k, v in self.records if t == topic and match(v)]
            if len(found) >= count or time.monotonic() > deadline:
                assert len(found) >= count, f"{len(found)} of {count} records on {topic}"
                return found
            self.poll()

    def close(self) -> None:
        self.consumer.close()


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def svc(stack: Stack) -> Iterator[ServiceProcess]:
    service = start_ingest(
        {
            **stack.env(),
            "LUMEN_INGEST_RATE_LIMIT_OVERRIDES": "limited=0.2/3",
            "LUMEN_INGEST_PRIVACY_IP": "hash",
            "LUMEN_INGEST_PRIVACY_HASH_SALT": "test-salt",
            "LUMEN_INGEST_PRIVACY_TRAIT_KEYS": "email",
            "LUMEN_INGEST_PRIVACY_TRAIT_POLICY": "drop",
        }
    )
    yield service
    service.stop()


@pytest.fixture(scope="module")
def reader(stack: Stack, svc: ServiceProcess) -> Iterator[TopicReader]:
    topics = TopicReader(stack.kafka_bootstrap, (EVENTS_RAW.name, EVENTS_DLQ.name))
    yield topics
    topics.close()


@pytest.fixture(scope="module")
def http(svc: ServiceProcess) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=f"http://127.0.0.1:{svc.ports['http']}", auth=(KEYS["web"], ""), timeout=10
    ) as client:
        yield client


def uid(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def still_serving(http: httpx.Client) -> None:
    response = http.post("/v1/track", json={"userId": uid(), "event": "Alive"})
    assert response.status_code == 200, response.text


# ---------------------------------------------------------------------------- HTTP


def test_each_call_type_lands_keyed_and_enriched(http: httpx.Client, reader: TopicReader) -> None:
    user, anon = uid(), uid("anon")
    calls: dict[str, dict[str, Any]] = {
        "track": {
            "userId": user,
            "event": "Item Viewed",
            "properties": {"itemId": "42"},
            "context": {"ip": "203.0.113.9"},
        },
        "identify": {"userId": user, "traits": {"email": "a@example.com", "plan": "pro"}},
        "page": {"userId": user, "name": "Home", "properties": {"path": "/"}},
        "screen": {"userId": user, "name": "Settings"},
        "group": {"userId": user, "groupId": "acme", "traits": {"seats": 5}},
        "alias": {"userId": user, "previousId": anon},
    }
    sent_at = datetime.now(UTC).isoformat()
    for call_type, body in calls.items():
        response = http.post(
            f"/v1/{call_type}", json={**body, "sentAt": sent_at, "timestamp": sent_at}
        )
        assert (response.status_code, response.json()) == (200, {"success": True}), call_type
    anonymous = http.post("/v1/track", json={"anonymousId": anon, "event": "Anon Viewed"})
    assert anonymous.status_code == 200

    found = reader.wait(EVENTS_RAW.name, lambda e: e.get("userId") == user, len(calls))
    by_type = {event["type"]: (key, event) for key, event in found}
    assert set(by_type) == set(calls)
    for call_type, (key, event) in by_type.items():
        assert key == user.encode(), call_type
        assert event["sourceId"] == "web"
        assert event["messageId"] and event["receivedAt"].endswith("Z")
        assert event["originalTimestamp"] == sent_at and event["sentAt"] == sent_at
        assert event["timestamp"].endswith("Z")
    assert by_type["track"][1]["properties"] == {"itemId": "42"}
    assert by_type["track"][1]["context"]["ip"].startswith("hmac-sha256:"), "ip hashed"
    assert by_type["identify"][1]["traits"] == {"plan": "pro"}, "email dropped"
    assert by_type["alias"][1]["previousId"] == anon
    [(anon_key, anon_event)] = reader.wait(
        EVENTS_RAW.name, lambda e: e.get("anonymousId") == anon, 1
    )
    assert anon_key == anon.encode() and anon_event["event"] == "Anon Viewed"


def test_duplicate_message_id_is_written_once(http: httpx.Client, reader: TopicReader) -> None:
    user, message_id = uid(), uid("msg")
    event = {"userId": user, "event": "Bought", "messageId": message_id}
    first, second = http.post("/v1/track", json=event), http.post("/v1/track", json=event)
    in_batch = http.post("/v1/batch", json={"batch": [{**event, "type": "track"}]})
    assert first.json() == {"success": True}
    assert second.status_code == 200 and second.json()["duplicates"] == 1
    assert in_batch.status_code == 200 and in_batch.json()["duplicates"] == 1
    # Same key, same partition: once the later marker is read, a second copy would have been too.
    assert http.post("/v1/track", json={"userId": user, "event": "Marker"}).status_code == 200
    reader.wait(EVENTS_RAW.name, lambda e: e.get("userId") == user and e["event"] == "Marker", 1)
    copies = reader.wait(EVENTS_RAW.name, lambda e: e.get("messageId") == message_id, 1)
    assert len(copies) == 1


def test_batch_with_three_bad_events_stores_the_rest(
    http: httpx.Client, reader: TopicReader
) -> None:
    run = uid("batch")
    batch: list[dict[str, Any]] = [
        {"type": "track", "userId": f"{run}-{i}", "event": "Bulk", "properties": {"run": run}}
        for i in range(100)
    ]
    batch[7] = {"type": "track", "userId": f"{run}-7", "properties": {"run": run}}  # no event
    batch[42] = {"type": "identify", "userId": f"{run}-42", "traits": ["not", "an", "object"]}
    batch[99] = {
        "type": "track",
        "userId": f"{run}-99",
        "event": "Big",
        "properties": {"run": run, "blob": "x" * 40_000},
    }
    response = http.post("/v1/batch", json={"batch": batch})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and body["accepted"] == 97
    assert [(r["index"], r["reason"], r["field"]) for r in body["rejected"]] == [
        (7, "schema_violation", "event"),
        (42, "schema_violation", "traits"),
        (99, "size_violation", "event"),
    ]
    stored = reader.wait(
        EVENTS_RAW.name,
        lambda e: (e.get("properties") or {}).get("run") == run and e.get("event") == "Bulk",
        97,
    )
    assert len(stored) == 97
    assert all(key == event["userId"].encode() for key, event in stored)
    dlq = reader.wait(
        EVENTS_DLQ.name,
        lambda d: str((d.get("payload") or {}).get("userId", "")).startswith(run),
        3,
    )
    assert sorted((d["index"], d["reason"]) for _, d in dlq) == [
        (7, "schema_violation"),
        (42, "schema_violation"),
        (99, "size_violation"),
    ]


@pytest.mark.parametrize(
    ("case", "status", "reason", "field"),
    [
        ("body over 500 KB", 413, "size_violation", "body"),
        ("event over 32 KB", 400, "size_violation", "event"),
        ("malformed JSON", 400, "malformed_json", "body"),
        ("invalid UTF-8", 400, "invalid_utf8", "body"),
        ("wrong type of userId", 400, "schema_violation", "userId"),
        ("wrong type of properties", 400, "schema_violation", "properties"),
        ("missing userId and anonymousId", 400, "schema_violation", "userId"),
        ("alias without previousId", 400, "schema_violation", "previousId"),
        ("missing write key", 401, "unauthorized", None),
        ("wrong write key", 401, "unauthorized", None),
    ],
)
def test_bad_requests_get_a_status_and_a_reason(
    svc: ServiceProcess, http: httpx.Client, case: str, status: int, reason: str, field: str | None
) -> None:
    url = f"http://127.0.0.1:{svc.ports['http']}"
    user = uid()
    requests: dict[str, Callable[[], httpx.Response]] = {
        "body over 500 KB": lambda: http.post(
            "/v1/batch",
            json={
                "batch": [
                    {
                        "type": "track",
                        "userId": user,
                        "event": "x",
                        "properties": {"p": "y" * 20_000},
                    }
                ]
                * 30
            },
        ),
        "event over 32 KB": lambda: http.post(
            "/v1/track", json={"userId": user, "event": "x", "properties": {"p": "y" * 33_000}}
        ),
        "malformed JSON": lambda: http.post("/v1/track", content=b'{"userId": "u", "event": '),
        "invalid UTF-8": lambda: http.post(
            "/v1/track", content=b'{"userId": "\xff\xfe", "event": "x"}'
        ),
        "wrong type of userId": lambda: http.post("/v1/track", json={"userId": [1], "event": "x"}),
        "wrong type of properties": lambda: http.post(
            "/v1/track", json={"userId": user, "event": "x", "properties": "p"}
        ),
        "missing userId and anonymousId": lambda: http.post("/v1/track", json={"event": "x"}),
        "alias without previousId": lambda: http.post("/v1/alias", json={"userId": user}),
        "missing write key": lambda: httpx.post(
            f"{url}/v1/track", json={"userId": user, "event": "x"}
        ),
        "wrong write key": lambda: httpx.post(
            f"{url}/v1/track", auth=("nope", ""), json={"userId": user, "event": "x"}
        ),
    }
    response = requests[case]()
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["reason"] == reason and body["error"]
    assert body.get("field") == field
    still_serving(http)


def test_write_key_in_the_body_is_accepted_and_not_stored(
    svc: ServiceProcess, reader: TopicReader
) -> None:
    user = uid()
    response = httpx.post(
        f"http://127.0.0.1:{svc.ports['http']}/v1/track",
        json={"userId": user, "event": "x", "writeKey": KEYS["web"]},
    )
    assert response.status_code == 200, response.text
    [(_, event)] = reader.wait(EVENTS_RAW.name, lambda e: e.get("userId") == user, 1)
    assert "writeKey" not in event


def test_rate_limit_answers_429_with_retry_after(svc: ServiceProcess, http: httpx.Client) -> None:
    url = f"http://127.0.0.1:{svc.ports['http']}/v1/track"
    statuses = []
    for _ in range(6):
        response = httpx.post(url, auth=(KEYS["limited"], ""), json={"userId": uid(), "event": "x"})
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert int(response.headers["Retry-After"]) >= 1
            assert response.json()["reason"] == "rate_limited"
    assert statuses[:3] == [200, 200, 200] and 429 in statuses[3:], statuses
    still_serving(http)  # another source is not limited


def test_delete_user_publishes_an_erasure_event(http: httpx.Client, reader: TopicReader) -> None:
    user = uid()
    response = http.delete(f"/v1/users/{user}", auth=(ADMIN_KEY, ""))
    assert response.status_code == 202, response.text
    message_id = response.json()["messageId"]
    [(key, event)] = reader.wait(EVENTS_RAW.name, lambda e: e.get("userId") == user, 1)
    assert key == user.encode()
    assert event["type"] == DELETE_TYPE and event["messageId"] == message_id
    assert event["sourceId"] == "ops" and event["receivedAt"]
    assert httpx.delete(f"{http.base_url}/v1/users/{user}").status_code == 401
    too_long = http.delete(f"/v1/users/{'u' * (MAX_ID_LENGTH + 1)}", auth=(ADMIN_KEY, ""))
    assert too_long.status_code == 400 and too_long.json()["field"] == "userId", too_long.text


def test_operations_endpoints(svc: ServiceProcess, http: httpx.Client) -> None:
    assert http.get("/healthz").status_code == 200
    assert grpc_serving(f"127.0.0.1:{svc.ports['grpc']}"), "gRPC health follows readiness"
    assert http.get("/readyz").json() == {"status": "ready"}
    assert http.get("/openapi.json").json() == openapi_document()
    assert http.get("/metrics").status_code == 404, "metrics are not on the public port"
    metrics = httpx.get(f"http://127.0.0.1:{svc.ports['metrics']}/metrics").text
    for name in (
        "lumen_ingest_requests_total{",
        "lumen_ingest_events_accepted_total{",
        "lumen_ingest_events_rejected_total{",
        "lumen_ingest_kafka_produce_duration_seconds_bucket",
        "lumen_ingest_batch_size_events_bucket",
        "lumen_ingest_in_flight_requests",
        "lumen_ingest_kafka_up 1.0",
    ):
        assert name in metrics, name


# ---------------------------------------------------------------------------- gRPC


def test_grpc_publish_stream_delete_and_status_codes(
    svc: ServiceProcess, reader: TopicReader
) -> None:
    user = uid()
    auth = (("authorization", "Bearer " + KEYS["web"]),)
    good = events_pb2.Event(
        type=events_pb2.EVENT_TYPE_TRACK, user_id=user, event="Grpc", message_id=uid("msg")
    )
    bad = events_pb2.Event(type=events_pb2.EVENT_TYPE_TRACK, user_id=user)
    with grpc.insecure_channel(f"127.0.0.1:{svc.ports['grpc']}") as channel:
        stub = events_pb2_grpc.EventServiceStub(channel)
        reply = stub.Publish(events_pb2.PublishRequest(events=[good, bad]), metadata=auth)
        assert (reply.accepted, reply.duplicates) == (1, 0)
        assert [(e.index, e.reason, e.field) for e in reply.errors] == [
            (1, "schema_violation", "event")
        ]
        assert stub.Publish(events_pb2.PublishRequest(events=[good]), metadata=auth).duplicates == 1

        with pytest.raises(grpc.RpcError) as invalid:
            stub.Publish(events_pb2.PublishRequest(events=[bad]), metadata=auth)
        assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        trailer = dict(invalid.value.trailing_metadata())[ERRORS_TRAILER]
        assert events_pb2.PublishErrorDetails.FromString(trailer).errors[0].field == "event"

        for metadata in ((), (("authorization", "Bearer wrong"),)):
            with pytest.raises(grpc.RpcError) as denied:
                stub.Publish(events_pb2.PublishRequest(events=[good]), metadata=metadata)
            assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED

        limited = (("authorization", "Bearer " + KEYS["limited"]),)
        with pytest.raises(grpc.RpcError) as exhausted:
            for _ in range(6):
                stub.Publish(events_pb2.PublishRequest(events=[good] * 3), metadata=limited)
        assert exhausted.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert int(dict(exhausted.value.trailing_metadata())["retry-after"]) >= 1

        stream = [
            events_pb2.PublishStreamRequest(
                events=[
                    events_pb2.Event(type=events_pb2.EVENT_TYPE_PAGE, user_id=user, name=f"p{i}")
                ]
                * 2
            )
            for i in range(300)
        ]
        streamed = stub.PublishStream(iter(stream), metadata=auth)
        assert (streamed.accepted, len(streamed.errors)) == (600, 0)

        admin = (("authorization", "Bearer " + ADMIN_KEY),)
        deleted = stub.DeleteUser(events_pb2.DeleteUserRequest(user_id=user), metadata=admin)
        with pytest.raises(grpc.RpcError) as too_long:
            stub.DeleteUser(
                events_pb2.DeleteUserRequest(user_id="u" * (MAX_ID_LENGTH + 1)), metadata=admin
            )
        assert too_long.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    events = reader.wait(EVENTS_RAW.name, lambda e: e.get("userId") == user, 602)
    assert sum(e["type"] == "page" for _, e in events) == 600
    assert [e["messageId"] for _, e in events if e["type"] == DELETE_TYPE] == [deleted.message_id]
    assert all(key == user.encode() for key, _ in events)


# ---------------------------------------------------------------------------- shutdown


def test_sigterm_lets_in_flight_requests_finish(stack: Stack, reader: TopicReader) -> None:
    service = start_ingest(stack.env(), name="ingest-drain")
    user = uid()
    body = orjson.dumps({"userId": user, "event": "Drained"})
    token = base64.b64encode(f"{KEYS['web']}:".encode()).decode()
    head = (
        f"POST /v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", service.ports["http"]), timeout=20) as sock:
        # The request is in flight: its head and half its body have arrived.
        sock.sendall(head.encode() + body[:10])
        metrics = f"http://127.0.0.1:{service.ports['metrics']}/metrics"
        wait_for(lambda: "lumen_ingest_in_flight_requests 1.0" in httpx.get(metrics).text)
        service.proc.send_signal(signal.SIGTERM)

        def refused() -> bool:  # no new connections while draining
            try:
                httpx.get(f"http://127.0.0.1:{service.ports['http']}/healthz", timeout=2)
            except httpx.TransportError:
                return True
            return False

        wait_for(refused, timeout=15)
        sock.sendall(body[10:])
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert service.proc.wait(30) == 0, service.log()[-2000:]
    log = service.log()
    assert log.index("draining") < log.index("ingest stopped")
    reader.wait(EVENTS_RAW.name, lambda e: e.get("userId") == user, 1)


# ---------------------------------------------------------------------------- TLS


def test_tls_for_http_and_grpc(stack: Stack, tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    context = ssl.create_default_context(cafile=str(cert))
    service = start_service(
        "ingest-tls",
        "services.ingest",
        {
            **stack.env(),
            "LUMEN_INGEST_WRITE_KEYS": WRITE_KEYS,
            "LUMEN_INGEST_METRICS_PORT": str(metrics_port),
            "LUMEN_INGEST_TLS_CERT_FILE": str(cert),
            "LUMEN_INGEST_TLS_KEY_FILE": str(key),
            "LUMEN_INGEST_HTTP_PORT": str(http_port),
            "LUMEN_INGEST_GRPC_PORT": str(grpc_port),
        },
        ready=lambda: _https_ready(f"https://127.0.0.1:{http_port}/readyz", context),
        ports={"http": http_port, "grpc": grpc_port},
    )
    try:
        response = httpx.post(
            f"https://127.0.0.1:{http_port}/v1/track",
            verify=context,
            auth=(KEYS["web"], ""),
            json={"userId": uid(), "event": "Tls"},
        )
        assert response.status_code == 200, response.text
        with pytest.raises(httpx.TransportError):  # plain HTTP is not served
            httpx.get(f"http://127.0.0.1:{http_port}/healthz", timeout=2)
        credentials = grpc.ssl_channel_credentials(cert.read_bytes())
        with grpc.secure_channel(f"127.0.0.1:{grpc_port}", credentials) as channel:
            reply = events_pb2_grpc.EventServiceStub(channel).Publish(
                events_pb2.PublishRequest(
                    events=[
                        events_pb2.Event(
                            type=events_pb2.EVENT_TYPE_TRACK, user_id=uid(), event="Tls"
                        )
                    ]
                ),
                metadata=(("authorization", "Bearer " + KEYS["web"]),),
                timeout=10,
            )
        assert reply.accepted == 1
    finally:
        service.stop()


def _https_ready(url: str, context: ssl.SSLContext) -> bool:
    try:
        return httpx.get(url, verify=context, timeout=1).status_code == 200
    except httpx.TransportError:
        return False
