"""Tracing in the inference server: the maintained gRPC server and pymongo instrumentations,
and the batcher's own spans.

A request's wait in a batch queue and the ONNX execution that answered it are recorded once
the execution is over, with their real start and end times, in the trace of each request of
the batch: an execution shared by several requests shows in each of their traces (with the
batch's rows and request count as attributes). With tracing off nothing here is installed or
called (``DynamicBatcher`` keeps no tracer).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Status, StatusCode, format_trace_id

from shared.tracing import tracing_enabled

QUEUE_SPAN = "inference queue"
PROBE_PREFIXES = ("/grpc.health.", "/grpc.reflection.")
EXECUTION_SPAN = "onnx execution"
# Attribute names of the batcher's spans (lumen.* like the rest of Lumen's own attributes).
MODEL = "lumen.model.name"
VERSION = "lumen.model.version"
REQUEST_ROWS = "lumen.inference.request_rows"
BATCH_ROWS = "lumen.inference.batch_rows"
BATCH_REQUESTS = "lumen.inference.batch_requests"


def server_interceptors() -> list[Any]:
    """The OpenTelemetry gRPC server interceptor when tracing is on (health checks and
    reflection left out: probes every few seconds would each be a trace), else nothing."""
    if not tracing_enabled():
        return []
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    return [aio_server_interceptor(filter_=not_a_probe)]


def not_a_probe(call_details: Any) -> bool:
    """Whether a call is traced: all but health checks and reflection. (The instrumentation's
    own ``filters`` parse the method name with a regular expression on every call.)"""
    return not str(call_details.method).startswith(PROBE_PREFIXES)


def instrument_pymongo() -> None:
    """Trace MongoDB commands (a span per command, a child of the calling request's span)
    when tracing is on. Must run before the clients are created: pymongo copies its global
    listeners into each client."""
    if tracing_enabled():
        from opentelemetry.instrumentation.pymongo import PymongoInstrumentor

        PymongoInstrumentor().instrument()


def untraced() -> contextlib.AbstractContextManager[Any]:
    """Around background work (the catalogue and trends refresh): its MongoDB reads answer no
    request, and a trace every refresh interval would bury the requests' own."""
    if not tracing_enabled():
        return contextlib.nullcontext()
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    return suppress_instrumentation()


def request_tracer() -> trace.Tracer | None:
    """The batcher's tracer when tracing is on, else None (the batcher then records nothing)."""
    return trace.get_tracer(__name__) if tracing_enabled() else None


def exemplar_of(context: Context | None) -> dict[str, str] | None:
    """A Prometheus exemplar naming the trace of ``context`` when it is sampled."""
    if context is None:
        return None
    span_context = trace.get_current_span(context).get_span_context()
    if not (span_context.is_valid and span_context.trace_flags.sampled):
        return None
    return {"trace_id": format_trace_id(span_context.trace_id)}


def record_execution(
    tracer: trace.Tracer,
    requests: Iterable[tuple[Context, int, int]],
    model: str,
    version: int,
    batch_rows: int,
    batch_requests: int,
    started_ns: int,
    ended_ns: int,
    error: BaseException | None = None,
) -> None:
    """For each request ``(parent context, enqueued at in ns, rows)``: its queue wait, from
    enqueue to the execution's start, then the execution, both children of its caller's span."""
    for parent, enqueued_ns, rows in requests:
        model_attributes: dict[str, str | int] = {
            MODEL: model,
            VERSION: str(version),
            REQUEST_ROWS: rows,
        }
        queued = tracer.start_span(
            QUEUE_SPAN, context=parent, start_time=enqueued_ns, attributes=model_attributes
        )
        queued.end(end_time=max(enqueued_ns, started_ns))
        executed = tracer.start_span(
            EXECUTION_SPAN,
            context=parent,
            start_time=started_ns,
            attributes={
                **model_attributes,
                BATCH_ROWS: batch_rows,
                BATCH_REQUESTS: batch_requests,
            },
        )
        if error is not None:
            executed.record_exception(error)
            executed.set_status(Status(StatusCode.ERROR, type(error).__name__))
        executed.end(end_time=ended_ns)
