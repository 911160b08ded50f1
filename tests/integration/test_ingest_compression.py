"""Compressed request bodies against the real ingest and Kafka: gzip and deflate accepted,
a compression bomb refused quickly with bounded memory, corrupt bodies and unknown codings
refused; Segment's and RudderStack's own Python libraries, unchanged, deliver every call type."""

from __future__ import annotations

import base64
import gzip
import socket
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient

from lumen_cli.platform.services import http_ok
from shared.topics import EVENTS_RAW
from tests.integration.test_ingest import TopicReader
from tests.support.bombs import zeros_bomb
from tests.support.stack import ServiceProcess, Stack, free_port, start_service

DEV_KEY = "lumen-dev-key"
MB = 1 << 20


@pytest.fixture(scope="module")
def reader(stack: Stack, ingest: ServiceProcess) -> Iterator[TopicReader]:
    topics = TopicReader(stack.kafka_bootstrap, (EVENTS_RAW.name,))
    yield topics
    topics.close()


@pytest.fixture(scope="module")
def base_url(ingest: ServiceProcess) -> str:
    return f"http://127.0.0.1:{ingest.ports['http']}"


@pytest.fixture(scope="module")
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, auth=(DEV_KEY, ""), timeout=30) as client:
        yield client


def uid(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) of a process, in kB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def still_serving(http: httpx.Client) -> None:
    response = http.post("/v1/track", json={"userId": uid(), "event": "Alive"})
    assert response.status_code == 200, response.text


def test_gzip_and_deflate_bodies_are_accepted(http: httpx.Client, reader: TopicReader) -> None:
    user = uid()
    batch = {"batch": [{"type": "track", "userId": user, "event": f"Gzip {i}"} for i in range(3)]}
    sent = [
        ("/v1/batch", "gzip", gzip.compress(orjson.dumps(batch))),
        (
            "/v1/track",
            "deflate",
            zlib.compress(orjson.dumps({"userId": user, "event": "Zlib Deflate"})),
        ),
        (
            "/v1/track",
            "deflate",
            raw_deflate(orjson.dumps({"userId": user, "event": "Raw Deflate"})),
        ),
        (
            "/v1/identify",
            "x-gzip",
            gzip.compress(orjson.dumps({"userId": user, "traits": {"plan": "pro"}})),
        ),
    ]
    for path, encoding, body in sent:
        response = http.post(
            path,
            content=body,
            headers={"Content-Encoding": encoding, "Content-Type": "application/json"},
        )
        assert (response.status_code, response.json()) == (200, {"success": True}), encoding

    found = reader.wait(EVENTS_RAW.name, lambda e: e.get("userId") == user, 6)
    names = sorted(e.get("event", e["type"]) for _, e in found)
    assert names == ["Gzip 0", "Gzip 1", "Gzip 2", "Raw Deflate", "Zlib Deflate", "identify"]
    identify = next(e for _, e in found if e["type"] == "identify")
    assert identify["traits"] == {"plan": "pro"}


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_compression_bomb_is_refused_quickly_with_bounded_memory(
    http: httpx.Client, ingest: ServiceProcess, framing: str
) -> None:
    if framing == "chunked":
        # 1 GB of zeros in about 1 MB, sent without Content-Length: the compressed size alone
        # would not stop it before the decompressor sees it.
        bomb = zeros_bomb(1024)
        decompressed = 1024 * MB

        def chunks() -> Iterator[bytes]:
            for i in range(0, len(bomb), 64 * 1024):
                yield bomb[i : i + 64 * 1024]

        content: Any = chunks()
    else:
        # 400 MB of zeros in about 410 KB: under the 500 KB limit on the compressed body.
        bomb = zeros_bomb(400)
        decompressed = 400 * MB
        content = bomb
        assert len(bomb) < 500 * 1024
    pid = ingest.proc.pid
    before = memory_kb(pid)
    started = time.monotonic()
    response = http.post("/v1/batch", content=content, headers={"Content-Encoding": "gzip"})
    elapsed = time.monotonic() - started
    after = memory_kb(pid)

    assert response.status_code == 413, response.text
    body = response.json()
    assert body["reason"] == "size_violation" and body["field"] == "body"
    assert "decompressed" in body["error"]
    assert elapsed < 3.0, elapsed
    grown_kb = max(after["VmRSS"] - before["VmRSS"], after["VmHWM"] - before["VmHWM"])
    print(
        f"\nbomb {len(bomb)} B -> {decompressed // MB} MB ({framing}): 413 in {elapsed:.3f} s, "
        f"ingest VmRSS {before['VmRSS']} -> {after['VmRSS']} kB, "
        f"VmHWM {before['VmHWM']} -> {after['VmHWM']} kB"
    )
    assert grown_kb * 1024 < decompressed // 50, grown_kb
    still_serving(http)


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", b"definitely not gzip"),
        ("gzip", gzip.compress(b'{"userId": "u", "event": "Cut"}')[:-6]),
        ("deflate", b"\xff\xfe\xfd\xfc"),
    ],
    ids=["garbage", "truncated", "bad-deflate"],
)
def test_a_corrupt_compressed_body_is_a_bad_request(
    http: httpx.Client, encoding: str, body: bytes
) -> None:
    response = http.post("/v1/track", content=body, headers={"Content-Encoding": encoding})
    assert response.status_code == 400, response.text
    assert response.json()["reason"] == "invalid_encoding"
    assert encoding in response.json()["error"]
    still_serving(http)


def test_an_unknown_content_encoding_is_unsupported(http: httpx.Client) -> None:
    zstd_magic = b"\x28\xb5\x2f\xfd"
    response = http.post("/v1/track", content=zstd_magic, headers={"Content-Encoding": "zstd"})
    assert response.status_code == 415, response.text
    assert response.json()["reason"] == "unsupported_encoding"
    assert "zstd" in response.json()["error"]
    still_serving(http)


def test_the_body_timeout_applies_to_a_compressed_body(stack: Stack) -> None:
    http_port, grpc_port, metrics = free_port(), free_port(), free_port()
    service = start_service(
        "ingest-gzip-timeout",
        "services.ingest",
        {
            **stack.env(),
            "LUMEN_INGEST_BODY_TIMEOUT_SECONDS": "1",
            "LUMEN_INGEST_HTTP_PORT": str(http_port),
            "LUMEN_INGEST_GRPC_PORT": str(grpc_port),
            "LUMEN_INGEST_METRICS_PORT": str(metrics),
        },
        ready=lambda: http_ok(f"http://127.0.0.1:{http_port}/healthz"),
        ports={"http": http_port},
    )
    try:
        body = gzip.compress(orjson.dumps({"userId": uid(), "event": "Slow"}))
        token = base64.b64encode(f"{DEV_KEY}:".encode()).decode()
        head = (
            f"POST /v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {token}\r\n"
            f"Content-Encoding: gzip\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", http_port), timeout=10) as sock:
            started = time.monotonic()
            sock.sendall(head.encode() + body[:12])  # the rest never comes
            answer = sock.recv(4096)
            elapsed = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b"request_timeout" in answer
        assert 0.9 < elapsed < 5.0, elapsed
    finally:
        service.stop()


# ---------------------------------------------------------------------------- libraries

LIBRARIES = {
    "segment-gzip": lambda url, on_error: SegmentClient(
        DEV_KEY, host=url, gzip=True, on_error=on_error, max_retries=1, upload_interval=0.1
    ),
    "segment-plain": lambda url, on_error: SegmentClient(
        DEV_KEY, host=url, gzip=False, on_error=on_error, max_retries=1, upload_interval=0.1
    ),
    "rudderstack": lambda url, on_error: RudderClient(
        DEV_KEY, host=url, gzip=True, on_error=on_error, max_retries=1, upload_interval=0.1
    ),
}


@pytest.mark.parametrize("library", list(LIBRARIES))
def test_the_libraries_deliver_every_call_type(
    base_url: str, reader: TopicReader, library: str
) -> None:
    failures: list[tuple[Exception, Any]] = []
    client = LIBRARIES[library](base_url, lambda error, batch: failures.append((error, batch)))
    user, anon = uid(library), uid("anon")
    ids = {
        t: f"{library}-{t}-{uuid.uuid4().hex}"
        for t in ("identify", "track", "page", "screen", "group", "alias")
    }
    try:
        client.identify(user, {"plan": "pro"}, message_id=ids["identify"])
        client.track(user, "Product Viewed", {"product_id": "p-1"}, message_id=ids["track"])
        client.page(user, "Docs", "Home", {"path": "/"}, message_id=ids["page"])
        client.screen(user, "App", "Settings", message_id=ids["screen"])
        client.group(user, "acme", {"seats": 5}, message_id=ids["group"])
        client.alias(anon, user, message_id=ids["alias"])
        client.flush()
    finally:
        client.shutdown()
    assert failures == []

    found = reader.wait(EVENTS_RAW.name, lambda e: e.get("userId") == user, len(ids))
    by_type = {event["type"]: event for _, event in found}
    assert set(by_type) == set(ids)
    for call_type, event in by_type.items():
        assert event["messageId"] == ids[call_type], call_type
        assert event["userId"] == user
    assert by_type["track"]["event"] == "Product Viewed"
    assert by_type["track"]["properties"] == {"product_id": "p-1"}
    identify = by_type["identify"]
    # RudderStack's library sends identify traits only in context.traits.
    traits = identify["context"]["traits"] if library == "rudderstack" else identify["traits"]
    assert traits == {"plan": "pro"}
    assert by_type["group"]["groupId"] == "acme"
    assert by_type["alias"]["previousId"] == anon
    assert by_type["page"]["name"] == "Home"
    assert by_type["screen"]["name"] == "Settings"
