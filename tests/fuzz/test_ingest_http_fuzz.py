"""Property-based fuzzing of ingest's HTTP API with hypothesis: random, wrong-typed, truncated,
invalid-UTF-8, deeply nested and oversized payloads. Whatever arrives, the answer is a JSON
2xx or 4xx (never a 5xx), a refusal names its reason, and ingest keeps serving."""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz.strategies import JSON_VALUES, WRONG_TYPED_VALUES
from tests.reliability.services import WRITE_KEY
from tests.support.stack import ServiceProcess

ROUTES = [
    "/v1/track",
    "/v1/identify",
    "/v1/page",
    "/v1/screen",
    "/v1/group",
    "/v1/alias",
    "/v1/batch",
    "/v1/import",
    "/v1/nonsense",
]
FIELDS = [
    "userId",
    "anonymousId",
    "event",
    "messageId",
    "previousId",
    "groupId",
    "type",
    "properties",
    "traits",
    "context",
    "integrations",
    "timestamp",
    "sentAt",
]
fuzz = settings(settings.get_profile("lumen-fuzz"))


def post(service: ServiceProcess, route: str, body: bytes) -> httpx.Response:
    return httpx.post(
        f"http://127.0.0.1:{service.ports['http']}{route}",
        content=body,
        auth=(WRITE_KEY, ""),
        headers={"Content-Type": "application/json"},
        timeout=15,
    )


def assert_handled(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code < 500, response.text
    body = response.json()
    assert isinstance(body.get("success"), bool)
    if response.status_code >= 400:  # a reason, or one per refused event of a batch
        reasons = (
            [body.get("reason")]
            if "rejected" not in body
            else [r["reason"] for r in body["rejected"]]
        )
        assert body["success"] is False and reasons and all(reasons), body
    return body


@fuzz
@given(route=st.sampled_from(ROUTES), body=JSON_VALUES)
def test_random_json_is_answered_with_2xx_or_4xx(
    ingest: ServiceProcess, route: str, body: Any
) -> None:
    assert_handled(post(ingest, route, orjson.dumps(body)))


def valid_event() -> dict[str, Any]:
    return {
        "userId": "fuzz-u",
        "event": "Fuzzed",
        "messageId": "fuzz-m",
        "properties": {"itemId": "i1"},
        "timestamp": "2026-01-01T00:00:00Z",
    }


@fuzz
@given(field=st.sampled_from(FIELDS), value=WRONG_TYPED_VALUES)
def test_wrong_typed_fields_are_refused_by_name(
    ingest: ServiceProcess, field: str, value: Any
) -> None:
    event = valid_event() | {field: value}
    response = post(ingest, "/v1/track", orjson.dumps(event))
    body = assert_handled(response)
    if response.status_code == 400:
        assert body.get("field") in (field, "userId", "event", "type", "body"), body


@fuzz
@given(cut=st.integers(min_value=1, max_value=200))
def test_truncated_bodies_are_malformed_json(ingest: ServiceProcess, cut: int) -> None:
    raw = orjson.dumps({"batch": [valid_event(), valid_event() | {"messageId": "fuzz-2"}]})
    cut = min(cut, len(raw) - 1)
    response = post(ingest, "/v1/batch", raw[:cut])
    assert response.status_code == 400
    assert assert_handled(response)["reason"] == "malformed_json"


@fuzz
@given(
    position=st.integers(min_value=0, max_value=40),
    junk=st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"]),
)
def test_invalid_utf8_is_refused(ingest: ServiceProcess, position: int, junk: bytes) -> None:
    raw = b'{"userId": "fuzz-utf8-' + b"a" * position + junk + b'", "event": "E"}'
    response = post(ingest, "/v1/track", raw)
    assert response.status_code == 400
    assert assert_handled(response)["reason"] in ("invalid_utf8", "malformed_json")


@fuzz
@given(raw=st.binary(max_size=400))
def test_random_bytes_are_refused(ingest: ServiceProcess, raw: bytes) -> None:
    response = post(ingest, "/v1/batch", raw)
    assert response.status_code in (400, 401), response.text  # 401: bytes that parse, no key
    assert_handled(response)


@pytest.mark.parametrize("depth", [100, 1100, 50_000])
def test_deeply_nested_payloads(ingest: ServiceProcess, depth: int) -> None:
    nested = b'{"a":' * depth + b"1" + b"}" * depth
    raw = b'{"userId":"fuzz-deep","event":"Deep","properties":' + nested + b"}"
    response = post(ingest, "/v1/track", raw)
    assert_handled(response)
    if len(raw) > 32 * 1024 or depth > 1024:  # orjson's nesting limit; the per-event size limit
        assert response.status_code in (400, 413), response.text


def test_oversized_events_and_bodies(ingest: ServiceProcess) -> None:
    big_event = valid_event() | {"properties": {"blob": "x" * 40_000}}
    response = post(ingest, "/v1/track", orjson.dumps(big_event))
    assert response.status_code == 400 and assert_handled(response)["reason"] == "size_violation"
    huge = orjson.dumps({"batch": [valid_event() | {"properties": {"blob": "y" * 20_000}}] * 30})
    response = post(ingest, "/v1/batch", huge)
    assert response.status_code == 413 and assert_handled(response)["reason"] == "size_violation"
    # A declared length over the limit is refused before the body is read.
    with socket.create_connection(("127.0.0.1", ingest.ports["http"]), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 99999999\r\n\r\n{"
        )
        assert sock.recv(200).startswith(b"HTTP/1.1 413")


def _status_after_stalling(ingest: ServiceProcess, head: bytes, wait: float) -> bytes:
    """Send ``head`` (headers and part of a body), then nothing; return what the server says
    within ``wait`` seconds (b"" when it closes without a word)."""
    with socket.create_connection(("127.0.0.1", ingest.ports["http"]), timeout=wait) as sock:
        sock.sendall(head)
        try:
            return sock.recv(200)
        except TimeoutError:
            return b"<no answer>"


def test_slow_body_trickled_within_limits_is_accepted(ingest: ServiceProcess) -> None:
    raw = orjson.dumps(valid_event() | {"messageId": f"slow-{time.time_ns()}"})
    with socket.create_connection(("127.0.0.1", ingest.ports["http"]), timeout=20) as sock:
        sock.sendall(
            b"POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + WRITE_KEY.encode() + b"\r\n"
            b"Content-Length: " + str(len(raw)).encode() + b"\r\n\r\n"
        )
        for i in range(0, len(raw), 16):
            sock.sendall(raw[i : i + 16])
            time.sleep(0.05)
        assert sock.recv(200).startswith(b"HTTP/1.1 200")


def test_a_never_finishing_body_is_timed_out(ingest: ServiceProcess) -> None:
    head = (
        b"POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + WRITE_KEY.encode() + b"\r\nContent-Length: 500\r\n\r\n"
        b'{"userId": "never'
    )
    answer = _status_after_stalling(ingest, head, wait=20)
    assert answer.startswith(b"HTTP/1.1 408") or answer == b"", answer


@pytest.mark.parametrize(
    "times",
    [
        {
            "sentAt": "0200-02-20T14:05:41Z",
            "timestamp": "9999-01-01T00:00:00Z",
        },  # found by schemathesis
        {"sentAt": "9277-05-03T07:39:25Z", "timestamp": "0001-01-02T00:00:00Z"},
        {"timestamp": "9999-12-31T23:00:00-06:00"},
        {"sentAt": "0001-01-01T00:30:00+06:00"},
    ],
)
def test_extreme_dates_are_answered_without_a_server_error(
    ingest: ServiceProcess, times: dict[str, str]
) -> None:
    """Clock-skew correction and UTC conversion past year 1 or 9999 once raised OverflowError
    (a 500); now a time that cannot be represented is refused, a correction that cannot be is
    skipped."""
    body = assert_handled(
        post(
            ingest,
            "/v1/batch",
            orjson.dumps({"batch": [{"type": "identify", "userId": "fuzz-dates", **times}]}),
        )
    )
    assert body["success"] is True or body["rejected"][0]["reason"] == "schema_violation"
