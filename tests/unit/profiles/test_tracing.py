"""The profile updater's spans on the SDK's in-memory exporter: each event's trace continued
from its record headers, the batch write span (parent, links), the context profiles.updated
carries on, and a log line inside the write naming its trace."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, format_trace_id
from pymongo.errors import AutoReconnect

from services.profiles.app import create_app
from services.profiles.result import BatchResult, Record
from services.profiles.settings import ProfilesSettings
from services.profiles.spans import WRITE_SPAN, BatchSpans, publishing
from shared.logging import JsonFormatter
from shared.tracing import inject_kafka_headers, span_context_from_headers


def sent(tracer: trace.Tracer, offset: int) -> tuple[SimpleNamespace, trace.SpanContext]:
    """A record as ingest writes it: its headers carry its PRODUCER span's context."""
    span = tracer.start_span("events.raw publish", kind=SpanKind.PRODUCER)
    span.end()
    headers = inject_kafka_headers(context=trace.set_span_in_context(span))
    message = SimpleNamespace(topic="events.raw", partition=1, offset=offset, headers=headers)
    return message, span.get_span_context()


def untraced(offset: int, headers: Any = None) -> SimpleNamespace:
    return SimpleNamespace(topic="events.raw", partition=1, offset=offset, headers=headers)


def by_name(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


def test_an_event_trace_goes_on_through_consume_write_and_publish(
    tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    message, producer = sent(tracer, offset=7)
    with BatchSpans([message], "lumen-profiles", tracer) as spans:
        assert trace.get_current_span() is spans.write
        with publishing("profiles.updated", 1, tracer) as headers:
            published = span_context_from_headers(headers)

    (consume,) = by_name(exporter, "events.raw process")
    (write,) = by_name(exporter, WRITE_SPAN)
    (send,) = by_name(exporter, "profiles.updated publish")
    assert consume.kind is SpanKind.CONSUMER
    assert consume.parent is not None and consume.parent.span_id == producer.span_id
    assert {consume.context.trace_id, write.context.trace_id, send.context.trace_id} == {
        producer.trace_id
    }
    assert write.parent is not None and write.parent.span_id == consume.context.span_id
    assert [link.context.span_id for link in write.links] == [producer.span_id]
    assert send.kind is SpanKind.PRODUCER and send.parent is not None
    assert send.parent.span_id == write.context.span_id
    assert published is not None and published.span_id == send.context.span_id
    assert consume.attributes is not None
    assert consume.attributes["messaging.system"] == "kafka"
    assert consume.attributes["messaging.destination.name"] == "events.raw"
    assert consume.attributes["messaging.destination.partition.id"] == "1"
    assert consume.attributes["messaging.kafka.offset"] == 7
    assert consume.attributes["messaging.consumer.group.name"] == "lumen-profiles"


def test_a_batch_links_every_event_trace_and_each_trace_leads_to_the_write(
    tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    first, first_producer = sent(tracer, offset=1)
    second, second_producer = sent(tracer, offset=2)
    bare = untraced(3, headers=[("traceparent", b"not a trace context")])
    with BatchSpans([first, bare, second], "g", tracer):
        pass

    consumes = by_name(exporter, "events.raw process")
    (write,) = by_name(exporter, WRITE_SPAN)
    # The record without a valid context gets no span of its own; the batch still counts it.
    assert sorted(s.parent.span_id for s in consumes if s.parent) == sorted(
        [first_producer.span_id, second_producer.span_id]
    )
    assert write.attributes is not None and write.attributes["messaging.batch.message_count"] == 3
    assert write.context.trace_id == first_producer.trace_id
    assert [link.context.span_id for link in write.links] == [
        first_producer.span_id,
        second_producer.span_id,
    ]
    (other,) = [s for s in consumes if s.context.trace_id == second_producer.trace_id]
    assert [link.context.span_id for link in other.links] == [write.context.span_id]


def test_the_write_joins_the_first_sampled_event_trace(
    tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    unsampled = untraced(
        1, headers=[("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")]
    )
    sampled, producer = sent(tracer, offset=2)
    with BatchSpans([unsampled, sampled], "g", tracer):
        pass
    (write,) = by_name(exporter, WRITE_SPAN)
    assert write.context.trace_id == producer.trace_id


def test_a_batch_without_traced_records_is_a_trace_of_its_own(
    tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    with BatchSpans([untraced(1), untraced(2, headers=[("other", b"x")])], "g", tracer):
        pass
    (write,) = exporter.get_finished_spans()
    assert write.name == WRITE_SPAN and write.parent is None and not write.links


def test_a_failed_batch_ends_its_spans_as_errors(
    tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    message, _ = sent(tracer, offset=1)
    with pytest.raises(RuntimeError), BatchSpans([message], "g", tracer):
        raise RuntimeError("store broken")
    (write,) = by_name(exporter, WRITE_SPAN)
    assert write.status.status_code is StatusCode.ERROR
    assert by_name(exporter, "events.raw process")  # ended too, not left open


def test_a_retry_logged_inside_the_write_names_its_trace_and_the_span_says_what_it_did(
    tracer: trace.Tracer, exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    updater = create_app(ProfilesSettings()).updater
    attempts: list[list[Record]] = []

    async def flaky(records: list[Record]) -> BatchResult:
        attempts.append(records)
        if len(attempts) == 1:
            raise AutoReconnect("primary stepped down")
        return BatchResult(skipped=1)

    monkeypatch.setattr(updater, "_write_once", flaky)
    message, producer = sent(tracer, offset=5)
    event = SimpleNamespace(message=SimpleNamespace(key=b"u1", value=b"{}", **vars(message)))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("profiles"))
    logger = logging.getLogger("services.profiles.agents")
    logger.addHandler(handler)

    async def run() -> bool:
        with BatchSpans([event.message], "g", tracer) as spans:
            return await updater.process([event], spans)

    try:
        assert asyncio.run(run()) is True
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(text) for text in stream.getvalue().splitlines()]
    (retry,) = [line for line in lines if line["msg"] == "writing a batch failed; retrying"]
    (write,) = by_name(exporter, WRITE_SPAN)
    assert retry["trace_id"] == format_trace_id(producer.trace_id)
    assert retry["span_id"] == format(write.context.span_id, "016x")
    assert write.attributes is not None
    assert (write.attributes["lumen.batch.applied"], write.attributes["lumen.batch.skipped"]) == (
        0,
        1,
    )
