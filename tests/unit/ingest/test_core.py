"""EventIngestor's decisions (dedupe only after an acknowledgement, DLQ, limits, deletion),
with an in-memory stand-in for Kafka so that failures can be injected."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import orjson
import pytest
from google.protobuf import timestamp_pb2
from lumen.v1 import events_pb2

from services.ingest.core import EventIngestor
from services.ingest.errors import RateLimited, Unavailable
from services.ingest.grpc_api import event_to_dict
from services.ingest.producer import KafkaUnavailable
from services.ingest.settings import IngestSettings
from shared.events import DELETE_TYPE


class MemoryKafka:
    """Records sends per topic; ``fail`` makes sends raise; ``gate`` holds them until set."""

    def __init__(self) -> None:
        self.topics: dict[str, list[tuple[bytes | None, dict]]] = {}
        self.fail = False
        self.ready = True
        self.gate: asyncio.Event | None = None

    async def send_many(
        self,
        topic: str,
        records: Sequence[tuple[bytes | None, bytes]],
        message_ids: Sequence[str | None] = (),
    ) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise KafkaUnavailable("broker down")
        self.topics.setdefault(topic, []).extend((k, orjson.loads(v)) for k, v in records)

    def raw(self) -> list[dict]:
        return [v for _, v in self.topics.get("events.raw", [])]


def make(**overrides: object) -> tuple[EventIngestor, MemoryKafka]:
    kafka = MemoryKafka()
    settings = IngestSettings(**overrides)  # type: ignore[arg-type]
    return EventIngestor(settings, kafka), kafka  # type: ignore[arg-type]


def track(message_id: str, user: str = "u1") -> dict:
    return {"userId": user, "event": "E", "messageId": message_id}


async def test_duplicate_is_written_once() -> None:
    ingestor, kafka = make()
    first = await ingestor.ingest([track("m1")], "track", "web")
    again = await ingestor.ingest([track("m1"), track("m1")], "track", "web")
    assert (first.accepted, again.accepted, again.duplicates) == (1, 0, 2)
    assert len(kafka.raw()) == 1
    other_source = await ingestor.ingest([track("m1")], "track", "app")
    assert other_source.accepted == 1


async def test_failed_write_is_not_remembered() -> None:
    ingestor, kafka = make()
    kafka.fail = True
    with pytest.raises(Unavailable):
        await ingestor.ingest([track("m2")], "track", "web")
    kafka.fail = False
    retry = await ingestor.ingest([track("m2")], "track", "web")
    assert retry.accepted == 1 and retry.duplicates == 0
    assert [e["messageId"] for e in kafka.raw()] == ["m2"]


async def test_concurrent_duplicate_waits_for_the_first_write() -> None:
    ingestor, kafka = make()
    kafka.gate = asyncio.Event()
    kafka.fail = True
    first = asyncio.create_task(ingestor.ingest([track("m3")], "track", "web"))
    await asyncio.sleep(0)
    second = asyncio.create_task(ingestor.ingest([track("m3")], "track", "web"))
    await asyncio.sleep(0)
    kafka.gate.set()
    for task in (first, second):
        with pytest.raises(Unavailable):
            await task  # the duplicate is not reported stored when the original failed
    kafka.fail = False
    assert (await ingestor.ingest([track("m3")], "track", "web")).accepted == 1


async def test_batch_reports_bad_events_and_sends_them_to_the_dlq() -> None:
    ingestor, kafka = make(max_event_bytes=1000)
    items = [
        {"type": "track", "userId": "u", "event": "ok"},
        {"type": "track", "userId": "u"},
        {"type": "identify", "anonymousId": "a", "traits": {"bio": "x" * 2000}},
    ]
    result = await ingestor.ingest(items, None, "web", transport="http")
    await ingestor.drain()
    assert result.accepted == 1
    assert [(i, r.reason, r.field) for i, r in result.errors] == [
        (1, "schema_violation", "event"),
        (2, "size_violation", "event"),
    ]
    dlq = [v for _, v in kafka.topics["events.dlq"]]
    assert [(d["index"], d["reason"]) for d in dlq] == [
        (1, "schema_violation"),
        (2, "size_violation"),
    ]
    assert dlq[0]["payload"] == items[1] and dlq[0]["sourceId"] == "web"


async def test_events_are_keyed_by_user_and_scrubbed() -> None:
    ingestor, kafka = make(
        privacy_ip="drop", privacy_trait_keys="email", privacy_trait_policy="drop"
    )
    await ingestor.ingest(
        [
            {
                "anonymousId": "anon",
                "traits": {"email": "e", "plan": "p"},
                "context": {"ip": "1.2.3.4"},
            }
        ],
        "identify",
        "web",
    )
    key, event = kafka.topics["events.raw"][0]
    assert key == b"anon"
    assert event["traits"] == {"plan": "p"} and "ip" not in event["context"]


async def test_rate_limit_and_fail_fast() -> None:
    ingestor, kafka = make(rate_limit_events_per_second=1, rate_limit_burst=2)
    await ingestor.ingest([track("a"), track("b")], "track", "web")
    with pytest.raises(RateLimited) as limited:
        await ingestor.ingest([track("c")], "track", "web")
    assert (limited.value.retry_after or 0) >= 1
    kafka.ready = False
    with pytest.raises(Unavailable):
        await ingestor.ingest([track("d")], "track", "other")
    assert len(kafka.raw()) == 2


async def test_delete_user_event_shape() -> None:
    ingestor, kafka = make()
    message_id = await ingestor.delete_user("u-9", "web")
    key, event = kafka.topics["events.raw"][0]
    assert key == b"u-9"
    assert set(event) == {"type", "userId", "messageId", "receivedAt", "sourceId"}
    assert (event["type"], event["userId"], event["messageId"], event["sourceId"]) == (
        DELETE_TYPE,
        "u-9",
        message_id,
        "web",
    )


def test_proto_event_becomes_segment_json() -> None:
    event = events_pb2.Event(
        type=events_pb2.EVENT_TYPE_PAGE,
        anonymous_id="a",
        name="Home",
        timestamp=timestamp_pb2.Timestamp(seconds=1735732800),
    )
    event.properties.update({"path": "/"})
    assert event_to_dict(event) == {
        "type": "page",
        "anonymousId": "a",
        "name": "Home",
        "properties": {"path": "/"},
        "timestamp": "2025-01-01T12:00:00Z",
    }
    assert "type" not in event_to_dict(events_pb2.Event(user_id="u"))
