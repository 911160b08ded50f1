"""shared/tracing: set-up from the OTEL_* variables and the helpers, on the SDK's in-memory
exporter (spans from a local provider, so the process-wide provider is never touched)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind, format_span_id, format_trace_id
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.openmetrics.exposition import generate_latest

from shared import tracing

ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}


# --- configuration ----------------------------------------------------------------------------


def test_no_endpoint_means_off() -> None:
    assert tracing.exporter_endpoint({}) is None
    assert tracing.build_tracer_provider("ingest", {}) is None


def test_sdk_disabled_wins_over_an_endpoint() -> None:
    env = {**ENDPOINT, "OTEL_SDK_DISABLED": "true"}
    assert tracing.exporter_endpoint(env) is None
    assert tracing.build_tracer_provider("ingest", env) is None


def test_traces_endpoint_is_preferred_over_the_generic_one() -> None:
    env = {**ENDPOINT, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4317"}
    assert tracing.exporter_endpoint(env) == "http://collector:4317"
    assert tracing.exporter_endpoint(ENDPOINT) == "http://127.0.0.1:4317"


def test_provider_names_the_service_and_reads_resource_attributes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    provider = tracing.build_tracer_provider("ingest", ENDPOINT)
    try:
        attributes = provider.resource.attributes
        assert attributes["service.name"] == "ingest"
        assert attributes["deployment.environment"] == "test"
    finally:
        provider.shutdown()


def test_otel_service_name_overrides_the_default_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "ingest-eu")
    provider = tracing.build_tracer_provider("ingest", {**ENDPOINT, "OTEL_SERVICE_NAME": "x"})
    try:
        assert provider.resource.attributes["service.name"] == "ingest-eu"
    finally:
        provider.shutdown()


def test_sampler_comes_from_the_standard_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.01")
    provider = tracing.build_tracer_provider("ingest", ENDPOINT)
    try:
        assert "0.01" in provider.sampler.get_description()
    finally:
        provider.shutdown()


def test_an_http_protocol_is_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="gRPC"):
        tracing.build_tracer_provider(
            "ingest", {**ENDPOINT, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
        )


def _run(code: str, env: dict[str, str]) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ".", **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


PROBE = """
import json, os, sys
from opentelemetry import trace
from shared import tracing
on = tracing.configure_tracing("ingest")
with tracing.tracer("probe").start_as_current_span("s") as span:
    recording = span.is_recording()
    headers = tracing.inject_kafka_headers([("a", b"1")])
print(json.dumps({
    "on": on,
    "enabled": tracing.tracing_enabled(),
    "provider": type(trace.get_tracer_provider()).__name__,
    "recording": recording,
    "header_names": [k for k, _ in headers],
    "sdk_loaded": "opentelemetry.sdk.trace" in sys.modules,
}), flush=True)
os._exit(0)  # skip the exit-time export to an endpoint where nothing listens
"""


def test_off_installs_nothing_and_spans_are_no_ops() -> None:
    out = _run(PROBE, {})
    assert out == {
        "on": False,
        "enabled": False,
        "provider": "ProxyTracerProvider",
        "recording": False,
        "header_names": ["a"],
        "sdk_loaded": False,
    }


def test_on_installs_the_sdk_provider() -> None:
    # Nothing listens on the endpoint: spans are only queued, and dropped at exit.
    out = _run(PROBE, ENDPOINT)
    assert out["on"] is True and out["enabled"] is True
    assert out["provider"] == "TracerProvider"
    assert out["recording"] is True
    assert out["header_names"] == ["a", "traceparent"]


# --- Kafka headers ----------------------------------------------------------------------------


def test_inject_then_extract_continues_the_trace(
    tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    with tracer.start_as_current_span("produce", kind=SpanKind.PRODUCER) as producer:
        headers = tracing.inject_kafka_headers([("source", b"dev")])
    assert headers[0] == ("source", b"dev")
    names = [name for name, _ in headers]
    assert names.count("traceparent") == 1
    traceparent = dict(headers)["traceparent"].decode()
    ctx = producer.get_span_context()
    ids = f"{format_trace_id(ctx.trace_id)}-{format_span_id(ctx.span_id)}"
    assert traceparent == f"00-{ids}-{int(ctx.trace_flags):02x}"
    assert ctx.trace_flags.sampled

    parent = tracing.extract_kafka_context(headers)
    with tracer.start_as_current_span("consume", context=parent, kind=SpanKind.CONSUMER):
        pass
    consume = next(s for s in exporter.get_finished_spans() if s.name == "consume")
    assert consume.context.trace_id == ctx.trace_id
    assert consume.parent is not None and consume.parent.span_id == ctx.span_id


def test_inject_replaces_a_stale_traceparent(tracer: trace.Tracer) -> None:
    stale = [("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")]
    with tracer.start_as_current_span("produce") as span:
        headers = tracing.inject_kafka_headers(stale)
    assert len([h for h in headers if h[0] == "traceparent"]) == 1
    assert (
        format_trace_id(span.get_span_context().trace_id) in dict(headers)["traceparent"].decode()
    )
    assert stale[0][1].startswith(b"00-111")  # the caller's list is left alone


def test_inject_without_a_span_adds_nothing() -> None:
    assert tracing.inject_kafka_headers(None) == []
    assert tracing.inject_kafka_headers([("k", b"v")]) == [("k", b"v")]


def test_tracestate_travels_with_the_traceparent(tracer: trace.Tracer) -> None:
    incoming = [
        ("traceparent", b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01"),
        ("tracestate", b"vendor=value"),
    ]
    with tracer.start_as_current_span("consume", context=tracing.extract_kafka_context(incoming)):
        outgoing = dict(tracing.inject_kafka_headers())
    assert outgoing["traceparent"].startswith(b"00-" + b"a" * 32)
    assert outgoing["tracestate"] == b"vendor=value"


@pytest.mark.parametrize(
    "headers",
    [
        None,
        [],
        [("traceparent", b"not a traceparent")],
        [("traceparent", b"\xff\xfe")],
        [("traceparent", b"00-" + b"0" * 32 + b"-" + b"0" * 16 + b"-01")],
    ],
)
def test_missing_or_malformed_headers_start_a_new_trace(headers: object) -> None:
    assert tracing.span_context_from_headers(headers) is None  # type: ignore[arg-type]


def test_extract_accepts_a_mapping_of_headers(tracer: trace.Tracer) -> None:
    with tracer.start_as_current_span("produce") as span:
        headers = dict(tracing.inject_kafka_headers())
    found = tracing.span_context_from_headers(headers)
    assert found is not None and found.trace_id == span.get_span_context().trace_id
    assert found.is_remote


def test_span_links_one_per_distinct_traced_record(tracer: trace.Tracer) -> None:
    batch = []
    expected = []
    for name in ("a", "b", "c"):
        with tracer.start_as_current_span(name) as span:
            batch.append(tracing.inject_kafka_headers())
            expected.append(span.get_span_context().trace_id)
    batch.insert(1, [("source", b"untraced")])
    batch.append(batch[0])  # the same record twice links once
    links = tracing.span_links(batch)
    assert [link.context.trace_id for link in links] == expected
    assert [link.context.trace_id for link in tracing.span_links(batch, limit=2)] == expected[:2]


# --- logs and exemplars -----------------------------------------------------------------------


def test_current_trace_ids_in_and_out_of_a_span(tracer: trace.Tracer) -> None:
    assert tracing.current_trace_ids() is None
    with tracer.start_as_current_span("s") as span:
        ctx = span.get_span_context()
        assert tracing.current_trace_ids() == (
            format_trace_id(ctx.trace_id),
            format_span_id(ctx.span_id),
        )


def _openmetrics(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


def test_exemplar_carries_the_sampled_trace(tracer: trace.Tracer) -> None:
    registry = CollectorRegistry()
    histogram = Histogram("lumen_test_seconds", "t", ["route"], registry=registry, buckets=(1,))
    with tracer.start_as_current_span("s") as span:
        tracing.observe_with_exemplar(histogram.labels("track"), 0.5)
        trace_id = format_trace_id(span.get_span_context().trace_id)
    text = _openmetrics(registry)
    bucket = next(line for line in text.splitlines() if 'le="1.0"' in line)
    assert f'# {{trace_id="{trace_id}"}} 0.5' in bucket


def test_no_exemplar_without_a_sampled_span() -> None:
    registry = CollectorRegistry()
    histogram = Histogram("lumen_test_seconds", "t", registry=registry, buckets=(1,))
    tracing.observe_with_exemplar(histogram, 0.5)  # no span at all
    unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("t")
    with unsampled.start_as_current_span("s"):
        tracing.observe_with_exemplar(histogram, 0.25)
    text = _openmetrics(registry)
    assert "trace_id" not in text
    assert "lumen_test_seconds_count 2.0" in text
