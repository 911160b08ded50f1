"""The profile updater's traces: each event's trace continued from its Kafka record, one span
for the batch's MongoDB write, and the context carried on to ``profiles.updated``.

For a batch (built only while tracing is on):

- ``events.raw process`` (CONSUMER), one per record that carries a W3C ``traceparent``: a child
  of ingest's ``events.raw publish`` span, so the event's trace goes on in this service. Records
  without one (written with tracing off) get no span of their own.
- ``profiles batch write`` (INTERNAL): the MongoDB transaction, with pymongo's command spans
  under it. Its parent is the first sampled record's consume span (so a batch of one event is
  one trace end to end), and it links to every record's trace; every other consume span links
  back to it, so each event's trace leads to the write that applied it.
- ``profiles.updated publish`` (PRODUCER), under the write span: its context goes in the headers
  of every ``profiles.updated`` and DLQ record the batch publishes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from shared.tracing import (
    MESSAGING_BATCH_COUNT,
    MESSAGING_CONSUMER_GROUP,
    MESSAGING_DESTINATION,
    MESSAGING_OFFSET,
    MESSAGING_OPERATION_NAME,
    MESSAGING_OPERATION_TYPE,
    MESSAGING_PARTITION,
    MESSAGING_SYSTEM,
    extract_kafka_context,
    inject_kafka_headers,
    span_context_from_headers,
    span_links,
    tracer,
)

WRITE_SPAN = "profiles batch write"

_tracer = tracer(__name__)


class KafkaMessage(Protocol):
    """What a consumed record offers (Faust's ``Message``)."""

    topic: str
    partition: int
    offset: int
    headers: Any


class BatchSpans:
    """The spans of one batch; ``with`` makes the write span current until the batch is done."""

    def __init__(
        self,
        messages: Sequence[KafkaMessage],
        consumer_group: str,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self._tracer = tracer or _tracer
        self.consume: list[Span] = []
        for message in messages:
            if span_context_from_headers(message.headers) is None:
                continue
            self.consume.append(
                self._tracer.start_span(
                    f"{message.topic} process",
                    context=extract_kafka_context(message.headers),
                    kind=SpanKind.CONSUMER,
                    attributes={
                        MESSAGING_SYSTEM: "kafka",
                        MESSAGING_OPERATION_TYPE: "process",
                        MESSAGING_OPERATION_NAME: "process",
                        MESSAGING_DESTINATION: message.topic,
                        MESSAGING_PARTITION: str(message.partition),
                        MESSAGING_OFFSET: int(message.offset),
                        MESSAGING_CONSUMER_GROUP: consumer_group,
                    },
                )
            )
        sampled = [s for s in self.consume if s.get_span_context().trace_flags.sampled]
        first = sampled or self.consume
        parent = first[0] if first else None
        self.write = self._tracer.start_span(
            WRITE_SPAN,
            context=trace.set_span_in_context(parent) if parent is not None else None,
            links=span_links(message.headers for message in messages),
            attributes={MESSAGING_BATCH_COUNT: len(messages)},
        )
        write_context = self.write.get_span_context()
        for span in self.consume:
            if span is not parent and span.is_recording():
                span.add_link(write_context)

    def __enter__(self) -> BatchSpans:
        self._current = trace.use_span(self.write, end_on_exit=False)
        self._current.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._current.__exit__(kind, error, traceback)
        if error is not None:
            self.write.set_status(Status(StatusCode.ERROR, type(error).__name__))
            if isinstance(error, Exception):
                self.write.record_exception(error)
        self.write.end()
        for span in self.consume:
            span.end()

    def describe(self, applied: int, skipped: int, poison: int) -> None:
        """What the write did, on its span."""
        self.write.set_attributes(
            {
                "lumen.batch.applied": applied,
                "lumen.batch.skipped": skipped,
                "lumen.batch.dlq": poison,
            }
        )


@contextmanager
def publishing(
    topic: str, count: int, tracer: trace.Tracer | None = None
) -> Iterator[list[tuple[str, bytes]]]:
    """A PRODUCER span for the records a batch publishes; yields the headers they carry (its
    W3C context). Called only while tracing is on."""
    with (tracer or _tracer).start_as_current_span(
        f"{topic} publish",
        kind=SpanKind.PRODUCER,
        attributes={
            MESSAGING_SYSTEM: "kafka",
            MESSAGING_OPERATION_TYPE: "send",
            MESSAGING_OPERATION_NAME: "publish",
            MESSAGING_DESTINATION: topic,
            MESSAGING_BATCH_COUNT: count,
        },
    ):
        yield inject_kafka_headers()
