"""Ingest's spans on the SDK's in-memory exporter: the record span and the context its headers
carry, its end on delivery, the HTTP span names, and a log line inside a span naming it."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from types import SimpleNamespace

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id

from services.ingest import spans
from services.ingest.errors import Unavailable
from services.ingest.spans import RecordSpan, http_span_details
from shared.logging import JsonFormatter
from shared.tracing import MESSAGE_ID_ATTRIBUTE, span_context_from_headers
from tests.unit.ingest.test_core import make, track


async def test_record_span_is_a_producer_child_whose_context_the_headers_carry(
    tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    with tracer.start_as_current_span("POST /v1/track", kind=SpanKind.SERVER) as request:
        record = RecordSpan("events.raw", "m-1", tracer=tracer)
    delivery: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    record.end_on_delivery(delivery)
    # In flight until Kafka acknowledges: only the request span has ended.
    assert [s.name for s in exporter.get_finished_spans()] == ["POST /v1/track"]
    delivery.set_result(SimpleNamespace(partition=3, offset=41))
    await asyncio.sleep(0)

    span = next(s for s in exporter.get_finished_spans() if s.name == "events.raw publish")
    assert span.kind is SpanKind.PRODUCER
    assert span.parent is not None and span.parent.span_id == request.get_span_context().span_id
    assert span.attributes is not None
    assert dict(span.attributes) == {
        "messaging.system": "kafka",
        "messaging.operation.type": "send",
        "messaging.operation.name": "publish",
        "messaging.destination.name": "events.raw",
        "messaging.destination.partition.id": "3",
        "messaging.kafka.offset": 41,
        MESSAGE_ID_ATTRIBUTE: "m-1",
    }
    carried = span_context_from_headers(record.headers)
    assert carried is not None
    assert (carried.trace_id, carried.span_id) == (span.context.trace_id, span.context.span_id)


async def test_a_failed_delivery_ends_the_span_as_an_error(
    tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    record = RecordSpan("events.raw", "m-2", tracer=tracer)
    delivery: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    record.end_on_delivery(delivery)
    delivery.set_exception(TimeoutError("no ack"))
    await asyncio.sleep(0)
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None and "messaging.kafka.offset" not in span.attributes
    assert [event.name for event in span.events] == ["exception"]


def test_without_tracing_the_record_carries_no_trace_headers() -> None:
    # The process-wide provider is the API's no-op one here: nothing to propagate.
    record = RecordSpan("events.raw", "m-3")
    assert record.headers == []
    assert not record.span.is_recording()


@pytest.mark.parametrize(
    ("method", "path", "name"),
    [
        ("POST", "/v1/track", "POST /v1/track"),
        ("POST", "/v1/batch", "POST /v1/batch"),
        ("DELETE", "/v1/users/alice@example.com", "DELETE /v1/users/{userId}"),
        ("POST", "/v1/../../etc/passwd", "POST"),
        ("GET", "/nowhere/at/all", "GET"),
    ],
)
def test_http_spans_are_named_by_route_never_by_a_user_id(
    method: str, path: str, name: str
) -> None:
    assert http_span_details({"method": method, "path": path})[0] == name


def test_instrumentations_are_not_installed_while_tracing_is_off() -> None:
    async def app(scope: object, receive: object, send: object) -> None: ...

    assert spans.instrument_http(app) is app
    assert spans.grpc_interceptors() == []


async def test_a_log_line_inside_the_request_span_names_its_trace(
    tracer: trace.Tracer,
) -> None:
    ingestor, kafka = make()
    kafka.fail = True
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("ingest"))
    logger = logging.getLogger("services.ingest.core")
    logger.addHandler(handler)
    try:
        with (
            tracer.start_as_current_span("POST /v1/track", kind=SpanKind.SERVER) as request,
            pytest.raises(Unavailable),
        ):
            await ingestor.ingest([track("m-4")], "track", "web")
    finally:
        logger.removeHandler(handler)
    (line,) = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["msg"] == "Kafka did not acknowledge; answering 503"
    context = request.get_span_context()
    assert line["trace_id"] == format_trace_id(context.trace_id)
    assert line["span_id"] == format_span_id(context.span_id)


class _RecordingKafka:
    """Stands in for aiokafka's producer: records each send and acknowledges it at once."""

    def __init__(self) -> None:
        self.sent: list[list[tuple[str, bytes]] | None] = []

    async def send(self, topic: str, **record: object) -> asyncio.Future[object]:
        self.sent.append(record.get("headers"))  # type: ignore[arg-type]
        delivery: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        delivery.set_result(SimpleNamespace(partition=0, offset=len(self.sent)))
        return delivery


@pytest.mark.parametrize("sampled", [False, True])
async def test_an_unsampled_request_sends_its_context_once_instead_of_a_span_per_record(
    monkeypatch: pytest.MonkeyPatch, sampled: bool
) -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

    from services.ingest import producer as producer_module
    from shared.settings import KafkaSettings

    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_ON if sampled else ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    local = provider.get_tracer("test")
    monkeypatch.setattr(producer_module, "tracing_enabled", lambda: True)
    monkeypatch.setattr(spans, "_tracer", local)
    events = producer_module.EventProducer(KafkaSettings())
    kafka = _RecordingKafka()
    events._producer = kafka

    with local.start_as_current_span("POST /v1/batch", kind=SpanKind.SERVER) as request:
        await events.send_many("events.raw", [(b"u", b"{}")] * 3, message_ids=["m-1", "m-2", "m-3"])
    await asyncio.sleep(0)

    request_trace = format_trace_id(request.get_span_context().trace_id)
    carried = [span_context_from_headers(headers or []) for headers in kafka.sent]
    assert all(c is not None and format_trace_id(c.trace_id) == request_trace for c in carried)
    publishes = [s for s in exporter.get_finished_spans() if s.name == "events.raw publish"]
    if sampled:
        assert len(publishes) == 3  # one span per record, each record carrying its own
        assert len({c.span_id for c in carried if c is not None}) == 3
    else:
        assert publishes == []
        # The one request context, with the unsampled flag the consumers follow.
        assert {c.span_id for c in carried if c is not None} == {request.get_span_context().span_id}
        assert all(c is not None and not c.trace_flags.sampled for c in carried)
    provider.shutdown()
