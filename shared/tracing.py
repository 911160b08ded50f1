"""OpenTelemetry tracing for every Lumen service, configured the standard way.

Call ``configure_tracing("ingest")`` once at start-up, after ``configure_logging``. Everything
is read from OpenTelemetry's own environment variables:

- ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT``: where spans go
  (OTLP over gRPC, e.g. ``http://127.0.0.1:4317``). **When neither is set, tracing is off**:
  no SDK tracer provider is installed, ``trace.get_tracer`` returns the API's no-op tracer and
  spans cost a few attribute look-ups. ``OTEL_SDK_DISABLED=true`` turns it off as well.
- ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG``: sampling (the SDK's default is
  ``parentbased_always_on``; ``parentbased_traceidratio`` with ``0.01`` keeps 1 %).
- ``OTEL_SERVICE_NAME`` (overrides the name passed in), ``OTEL_RESOURCE_ATTRIBUTES``.
- ``OTEL_EXPORTER_OTLP_HEADERS``, ``_CERTIFICATE``, ``_INSECURE``, ``_TIMEOUT``, ``OTEL_BSP_*``:
  read by the exporter and the batch span processor themselves.

What the instrumenting code uses (all of it harmless when tracing is off):

- ``tracer(name)``: the tracer of a module (``tracer(__name__)``).
- ``tracing_enabled()``: whether an SDK provider was installed (skip installing the maintained
  instrumentations, e.g. pymongo's command listener, when it is not).
- ``inject_kafka_headers(headers)`` before a produce: the record headers with the current
  span's W3C ``traceparent`` (and ``tracestate``) added; nothing is added without a span.
- ``extract_kafka_context(headers)`` on consume: the parent ``Context`` to start the consume span
  in (``tracer.start_as_current_span(..., context=ctx, kind=SpanKind.CONSUMER)``).
- ``span_links(batch_headers)``: one ``Link`` per distinct event trace in a batch, for a batch
  span that has many parents.
- ``observe_with_exemplar(histogram, seconds)``: ``histogram.observe`` with the current trace
  id as an exemplar when the span is sampled, so a slow bucket in Grafana links to its trace.
- ``current_trace_ids()``: ``(trace_id, span_id)`` in hex for log lines (shared/logging.py).
- ``MESSAGE_ID_ATTRIBUTE``: the span attribute holding an event's ``messageId``, which
  ``lumen trace <messageId>`` looks traces up by (set it on the ingest span of each event).

Kafka headers are lists of ``(str, bytes)`` tuples, as aiokafka, kafka-python and Faust use;
reading also accepts a mapping of name to bytes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.trace import Link, format_span_id, format_trace_id

log = logging.getLogger(__name__)

MESSAGE_ID_ATTRIBUTE = "lumen.message_id"
# OpenTelemetry's messaging semantic conventions (attribute names as the spec spells them).
MESSAGING_SYSTEM = "messaging.system"
MESSAGING_OPERATION_TYPE = "messaging.operation.type"
MESSAGING_OPERATION_NAME = "messaging.operation.name"
MESSAGING_DESTINATION = "messaging.destination.name"
MESSAGING_PARTITION = "messaging.destination.partition.id"
MESSAGING_OFFSET = "messaging.kafka.offset"
MESSAGING_CONSUMER_GROUP = "messaging.consumer.group.name"
MESSAGING_BATCH_COUNT = "messaging.batch.message_count"
# The W3C Trace Context header names (what the default propagator writes).
TRACE_HEADERS = ("traceparent", "tracestate")
# The SDK's default span link limit (OTEL_SPAN_LINK_COUNT_LIMIT); links past it are dropped.
MAX_LINKS = 128

KafkaHeaders = Sequence[tuple[str, bytes]]
HeadersIn = Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None

_enabled = False


class _Observer(Protocol):
    def observe(self, amount: float, exemplar: dict[str, str] | None = None) -> None: ...


# --- set-up -----------------------------------------------------------------------------------


def exporter_endpoint(environ: Mapping[str, str] | None = None) -> str | None:
    """The configured OTLP traces endpoint, or None when tracing is off (unset or disabled)."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    endpoint = (endpoint or "").strip()
    return endpoint or None


def build_tracer_provider(
    service_name: str,
    environ: Mapping[str, str] | None = None,
    exporter: Any = None,
) -> Any:
    """An SDK ``TracerProvider`` from the OTEL_* variables, or None when tracing is off.

    ``exporter`` replaces the OTLP exporter (tests pass the SDK's in-memory one; spans are then
    exported synchronously). The SDK modules are imported only here, so a service with tracing
    off never loads them.
    """
    env = os.environ if environ is None else environ
    if exporter is None and exporter_endpoint(env) is None:
        return None
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    # Resource.create merges OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME; the explicit name
    # is only the fallback, so an operator's OTEL_SERVICE_NAME wins.
    attributes = {} if env.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
    provider = TracerProvider(resource=Resource.create(attributes))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        return provider
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or ""
    )
    if protocol and protocol != "grpc":
        raise ValueError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol} is not supported: Lumen exports OTLP over "
            "gRPC (unset it or set it to 'grpc'; the collector's gRPC port is usually 4317)"
        )
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def configure_tracing(service_name: str, exporter: Any = None) -> bool:
    """Install the SDK tracer provider when an OTLP endpoint is configured; True when on.

    Call once per process. With tracing off nothing is installed and every helper of this
    module, and every ``tracer().start_as_current_span``, is a no-op.
    """
    global _enabled
    provider = build_tracer_provider(service_name, exporter=exporter)
    if provider is None:
        log.info("tracing off", extra={"fields": {"reason": "no OTLP endpoint configured"}})
        return False
    trace.set_tracer_provider(provider)
    _enabled = True
    log.info(
        "tracing on",
        extra={
            "fields": {
                "endpoint": exporter_endpoint() or "in-process exporter",
                "sampler": os.environ.get("OTEL_TRACES_SAMPLER", "parentbased_always_on"),
                "sampler_arg": os.environ.get("OTEL_TRACES_SAMPLER_ARG"),
            }
        },
    )
    return True


def tracing_enabled() -> bool:
    """Whether ``configure_tracing`` installed an SDK provider in this process."""
    return _enabled


def shutdown_tracing() -> None:
    """Flush and close the exporter (the SDK also does it at interpreter exit)."""
    provider = trace.get_tracer_provider()
    shutdown = getattr(provider, "shutdown", None)
    if callable(shutdown):
        shutdown()


def tracer(name: str) -> trace.Tracer:
    """The tracer of a module; the API's no-op tracer while tracing is off."""
    return trace.get_tracer(name)


# --- Kafka record headers ------------------------------------------------------------------------


class _HeaderListSetter(Setter[list[tuple[str, bytes]]]):
    def set(self, carrier: list[tuple[str, bytes]], key: str, value: str) -> None:
        carrier[:] = [(k, v) for k, v in carrier if k != key]
        carrier.append((key, value.encode("ascii")))


class _HeaderGetter(Getter[Mapping[str, bytes]]):
    def get(self, carrier: Mapping[str, bytes], key: str) -> list[str] | None:
        value = carrier.get(key)
        if value is None:
            return None
        try:
            return [bytes(value).decode("ascii")]
        except (UnicodeDecodeError, TypeError):
            return None  # a malformed header is ignored: the event simply starts a new trace

    def keys(self, carrier: Mapping[str, bytes]) -> list[str]:
        return list(carrier)


_SETTER = _HeaderListSetter()
_GETTER = _HeaderGetter()


def _as_mapping(headers: HeadersIn) -> dict[str, bytes]:
    if headers is None:
        return {}
    if isinstance(headers, Mapping):
        return {str(k): v for k, v in headers.items() if k in TRACE_HEADERS}
    return {str(k): v for k, v in headers if k in TRACE_HEADERS}


def inject_kafka_headers(
    headers: Iterable[tuple[str, bytes]] | None = None, context: Context | None = None
) -> list[tuple[str, bytes]]:
    """``headers`` (a new list) plus the W3C trace context of the current (or given) span.

    Existing ``traceparent``/``tracestate`` headers are replaced; without a valid span nothing
    is added, so with tracing off the record carries exactly the headers passed in.
    """
    carrier = list(headers or ())
    propagate.inject(carrier, context=context, setter=_SETTER)
    return carrier


def extract_kafka_context(headers: HeadersIn) -> Context:
    """The context carried by a record's headers (an empty one when it carries none)."""
    return propagate.extract(_as_mapping(headers), getter=_GETTER)


def span_context_from_headers(headers: HeadersIn) -> trace.SpanContext | None:
    """The remote span context of a record, or None when it carries no valid one."""
    span_context = trace.get_current_span(extract_kafka_context(headers)).get_span_context()
    return span_context if span_context.is_valid else None


def span_links(batch_headers: Iterable[HeadersIn], limit: int = MAX_LINKS) -> list[Link]:
    """One link per distinct traced record of a batch (first ``limit``), in batch order."""
    links: list[Link] = []
    seen: set[tuple[int, int]] = set()
    for headers in batch_headers:
        span_context = span_context_from_headers(headers)
        if span_context is None:
            continue
        key = (span_context.trace_id, span_context.span_id)
        if key in seen:
            continue
        seen.add(key)
        links.append(Link(span_context))
        if len(links) >= limit:
            break
    return links


# --- logs and exemplars --------------------------------------------------------------------------


def current_trace_ids() -> tuple[str, str] | None:
    """``(trace_id, span_id)`` of the current span in W3C hex, or None without one."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return format_trace_id(span_context.trace_id), format_span_id(span_context.span_id)


def trace_exemplar() -> dict[str, str] | None:
    """``{"trace_id": ...}`` for a sampled current span, else None (unsampled traces are not
    stored, so an exemplar pointing at one would lead nowhere)."""
    span_context = trace.get_current_span().get_span_context()
    if not (span_context.is_valid and span_context.trace_flags.sampled):
        return None
    return {"trace_id": format_trace_id(span_context.trace_id)}


def observe_with_exemplar(histogram: _Observer, amount: float) -> None:
    """``histogram.observe(amount)`` with the current trace as exemplar when it is sampled.

    ``histogram`` is a prometheus-client Histogram or one labelled child of it. Prometheus
    stores exemplars when scraping the OpenMetrics format with ``exemplar-storage`` enabled.
    """
    exemplar = trace_exemplar()
    if exemplar is None:
        histogram.observe(amount)
    else:
        histogram.observe(amount, exemplar=exemplar)
