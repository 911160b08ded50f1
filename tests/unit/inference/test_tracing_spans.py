"""Inference's own spans on the SDK's in-memory exporter (a local provider: the process-wide
one is never touched): the batcher's queue wait and ONNX execution in each caller's trace,
exemplars naming that trace, and the support router continuing a record's traceparent."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON
from opentelemetry.trace import SpanKind, StatusCode, format_trace_id
from prometheus_client import REGISTRY
from prometheus_client.openmetrics.exposition import generate_latest

from services.inference import spans, support
from services.inference.batcher import BatchSpec, DynamicBatcher, Tensors
from services.inference.intent import IntentResult
from services.inference.settings import BatchingConfig, InferenceSettings
from shared.messages import SupportMessage
from shared.tracing import span_context_from_headers

SPEC = BatchSpec(frozenset({"x"}), frozenset({"y"}))


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as pool:
        yield pool


def double(inputs: Tensors) -> Tensors:
    if float(inputs["x"].min()) < 0:
        raise ValueError("negative input")
    return {"y": inputs["x"] * 2}


def children_of(spans_: tuple[ReadableSpan, ...], parent: ReadableSpan) -> dict[str, ReadableSpan]:
    parent_id = parent.context.span_id
    return {s.name: s for s in spans_ if s.parent is not None and s.parent.span_id == parent_id}


async def test_each_request_of_a_shared_execution_gets_its_queue_and_execution_spans(
    tracer: trace.Tracer, exporter: InMemorySpanExporter, executor: ThreadPoolExecutor
) -> None:
    config = BatchingConfig(max_batch_size=8, max_queue_delay_us=50_000, preferred_batch_sizes=[3])
    batcher = DynamicBatcher("traced-model", 4, double, SPEC, config, executor, tracer=tracer)

    async def call(rows: int) -> None:
        with tracer.start_as_current_span(f"request of {rows}"):
            await batcher.infer({"x": np.ones((rows, 1), dtype=np.float32)})

    await asyncio.gather(call(1), call(2))
    await batcher.close()
    finished = exporter.get_finished_spans()
    requests = [s for s in finished if s.name.startswith("request of")]
    assert len(requests) == 2
    for request in requests:
        own = children_of(finished, request)
        assert set(own) == {spans.QUEUE_SPAN, spans.EXECUTION_SPAN}
        queued, executed = own[spans.QUEUE_SPAN], own[spans.EXECUTION_SPAN]
        assert executed.attributes is not None and queued.attributes is not None
        assert executed.attributes[spans.MODEL] == "traced-model"
        assert executed.attributes[spans.VERSION] == "4"
        # One execution of both requests: the batch's rows, each request's own.
        assert executed.attributes[spans.BATCH_ROWS] == 3
        assert executed.attributes[spans.BATCH_REQUESTS] == 2
        assert executed.attributes[spans.REQUEST_ROWS] == int(request.name.split()[-1])
        # The queue wait ends where the execution starts, and both sit inside the request.
        assert queued.end_time == executed.start_time
        assert request.start_time is not None and request.end_time is not None
        assert queued.start_time is not None and executed.end_time is not None
        assert request.start_time <= queued.start_time <= request.end_time
        assert executed.end_time <= request.end_time


async def test_a_failed_execution_is_an_error_span(
    tracer: trace.Tracer, exporter: InMemorySpanExporter, executor: ThreadPoolExecutor
) -> None:
    config = BatchingConfig(max_batch_size=1)
    batcher = DynamicBatcher("failing-model", 1, double, SPEC, config, executor, tracer=tracer)
    with tracer.start_as_current_span("request"), pytest.raises(ValueError):
        await batcher.infer({"x": -np.ones((1, 1), dtype=np.float32)})
    await batcher.close()
    executed = [s for s in exporter.get_finished_spans() if s.name == spans.EXECUTION_SPAN]
    assert len(executed) == 1
    assert executed[0].status.status_code is StatusCode.ERROR
    assert executed[0].events[0].name == "exception"


async def test_queue_and_compute_histograms_carry_the_sampled_trace_as_exemplar(
    tracer: trace.Tracer, executor: ThreadPoolExecutor
) -> None:
    batcher = DynamicBatcher(
        "exemplar-model", 2, double, SPEC, BatchingConfig(), executor, tracer=tracer
    )
    with tracer.start_as_current_span("request") as span:
        await batcher.infer({"x": np.ones((1, 1), dtype=np.float32)})
    await batcher.close()
    trace_id = format_trace_id(span.get_span_context().trace_id)
    exposition = generate_latest(REGISTRY).decode()
    for histogram in (
        "lumen_inference_model_queue_seconds",
        "lumen_inference_model_compute_seconds",
    ):
        lines = [
            line
            for line in exposition.splitlines()
            if line.startswith(f"{histogram}_bucket") and 'model="exemplar-model"' in line
        ]
        assert any(f'trace_id="{trace_id}"' in line for line in lines), histogram


async def test_untraced_callers_and_tracing_off_record_nothing(
    exporter: InMemorySpanExporter, executor: ThreadPoolExecutor
) -> None:
    # Tracing is off in the unit tests' process: the batcher keeps no tracer at all.
    assert spans.request_tracer() is None
    batcher = DynamicBatcher("untraced-model", 1, double, SPEC, BatchingConfig(), executor)
    result = await batcher.infer({"x": np.ones((1, 1), dtype=np.float32)})
    await batcher.close()
    assert float(result["y"][0, 0]) == 2.0
    assert exporter.get_finished_spans() == ()


# --- the support router ---------------------------------------------------------------------


@dataclass
class Record:
    value: bytes
    headers: list[tuple[str, bytes]]
    key: bytes = b"conv-1"
    partition: int = 0
    offset: int = 7


@dataclass
class Producer:
    sent: list[dict[str, Any]] = field(default_factory=list)

    def send(self, topic: str, **record: Any) -> None:
        self.sent.append({"topic": topic, **record})

    def flush(self, timeout: float) -> None:
        pass


@dataclass
class Config:
    extra: dict[str, object] = field(default_factory=dict)  # no routing map of its own


@dataclass
class Loaded:
    name: str = "intent-classifier"
    version: int = 3
    config: Config = field(default_factory=Config)


class Classifier:
    """Answers "refund" for every text, from a span of the loop's side (standing for the
    batcher) so the test sees which context the classification ran in."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self.tracer = tracer

    async def classify(self, texts: list[str], top_k: int) -> tuple[list[IntentResult], Loaded]:
        with self.tracer.start_as_current_span("model call"):
            return [IntentResult("refund", 0.9, False, []) for _ in texts], Loaded()


def test_the_router_continues_each_records_trace_and_carries_it_to_support_intents(
    tracer: trace.Tracer,
    exporter: InMemorySpanExporter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(support, "tracer", tracer)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        classifier: Any = Classifier(tracer)  # stands for IntentClassifier
        settings = InferenceSettings(routing={"refund": "payments"})
        router = support.SupportRouter(classifier, settings, loop)
        upstream = [tracer.start_span(f"upstream {i}") for i in range(2)]
        records = []
        for i, span in enumerate(upstream):
            with trace.use_span(span, end_on_exit=True):
                headers = support.inject_kafka_headers([("source", b"test")])
            message = SupportMessage(conversation_id="conv-1", message_id=f"m-{i}", text="refund")
            records.append(Record(message.encode(), headers, offset=i))
        records.append(Record(SupportMessage(message_id="untraced", text="hi").encode(), []))
        producer = Producer()
        router._handle(records, producer)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()

    finished = exporter.get_finished_spans()
    processed = [s for s in finished if s.name == "support.messages process"]
    assert len(processed) == 3
    for i, span in enumerate(upstream):
        mine = processed[i]
        assert mine.kind is SpanKind.CONSUMER
        assert mine.parent is not None and mine.parent.span_id == span.get_span_context().span_id
        assert mine.context.trace_id == span.get_span_context().trace_id
        assert mine.attributes is not None and mine.attributes["lumen.message_id"] == f"m-{i}"
        assert mine.attributes["lumen.support.route"] == "payments"
        publish = children_of(finished, mine)["support.intents publish"]
        assert publish.kind is SpanKind.PRODUCER
        # The support.intents record carries the publish span's context: the same trace.
        out = span_context_from_headers(producer.sent[i]["headers"])
        assert out is not None
        assert (out.trace_id, out.span_id) == (publish.context.trace_id, publish.context.span_id)
    # A record without traceparent starts a trace of its own.
    assert processed[2].parent is None
    # One classification for the batch, in the first record's trace, linked to the others;
    # the work on the server's loop (the batcher's spans) runs under it.
    (classified,) = [s for s in finished if s.name == "support classify"]
    assert classified.parent is not None
    assert classified.parent.span_id == processed[0].context.span_id
    assert {link.context.span_id for link in classified.links} == {
        processed[1].context.span_id,
        processed[2].context.span_id,
    }
    (model_call,) = [s for s in finished if s.name == "model call"]
    assert model_call.parent is not None and model_call.parent.span_id == classified.context.span_id


async def test_an_unsampled_caller_gets_no_batcher_spans(
    exporter: InMemorySpanExporter, executor: ThreadPoolExecutor
) -> None:
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    # The batcher's tracer would record even under an unsampled parent; the caller's trace
    # was not sampled, so the batcher does not even ask it.
    recording = TracerProvider(sampler=ALWAYS_ON)
    recording.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = recording.get_tracer("batcher")
    batcher = DynamicBatcher(
        "unsampled-model", 1, double, SPEC, BatchingConfig(), executor, tracer=tracer
    )
    with provider.get_tracer("caller").start_as_current_span("request"):
        await batcher.infer({"x": np.ones((1, 1), dtype=np.float32)})
    await batcher.close()
    assert exporter.get_finished_spans() == ()


def test_every_call_but_health_checks_and_reflection_is_traced() -> None:
    def call(method: str) -> Any:
        return SimpleNamespace(method=method)

    assert spans.not_a_probe(call("/lumen.v1.RecommendationService/Recommend"))
    assert spans.not_a_probe(call("/inference.GRPCInferenceService/ModelInfer"))
    assert not spans.not_a_probe(call("/grpc.health.v1.Health/Check"))
    assert not spans.not_a_probe(call("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"))
