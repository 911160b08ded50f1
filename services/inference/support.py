"""Event-driven intent routing: ``support.messages`` in, ``support.intents`` out.

A consumer thread polls batches, classifies their texts through the same batcher as the
gRPC API (on the server's event loop), publishes one record per message keyed by its
conversation, and commits only after the producer has flushed (at-least-once).

In: ``shared.messages.SupportMessage`` (key: conversation id). Out:
``shared.messages.SupportIntent``; a message that cannot be classified (no text, not JSON, a
field of the wrong type) carries ``error`` and the out-of-scope route. With the assistant on
and a knowledge base loaded, each classified message also carries the assistant's
``suggestion`` (schema version 2): the messages go through ``Assistant.answer``, which
classifies them (a short follow-up together with its conversation's earlier messages) and
retrieves the answer passages.

Tracing: each record is handled in a consumer span that continues the W3C ``traceparent`` of
its headers, and its ``support.intents`` record carries the context of its publish span on.
A batch is classified once: the ``support classify`` span (with the batcher's spans under it)
is in the first record's trace and links to the others.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind

from services.inference import metrics
from services.inference.assistant import Answer, Assistant, AssistRequest
from services.inference.errors import Unavailable
from services.inference.intent import IntentClassifier, IntentResult
from services.inference.settings import InferenceSettings
from shared.kafka_config import kafka_python_config
from shared.messages import (
    IntentAlternative,
    MessageError,
    Suggestion,
    SupportIntent,
    SupportMessage,
)
from shared.timestamps import now_iso
from shared.topics import SUPPORT_INTENTS, SUPPORT_MESSAGES
from shared.tracing import (
    MESSAGE_ID_ATTRIBUTE,
    MESSAGING_DESTINATION,
    MESSAGING_OFFSET,
    MESSAGING_PARTITION,
    MESSAGING_SYSTEM,
    extract_kafka_context,
    inject_kafka_headers,
)

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

CLASSIFY_TIMEOUT_SECONDS = 30.0


def model_routing(extra: dict[str, Any]) -> dict[str, str]:
    """The routing map an intent model carries (``config.json`` ``extra.routing``), if any."""
    routing = extra.get("routing")
    if not isinstance(routing, dict):
        return {}
    return {str(k): str(v) for k, v in routing.items() if isinstance(v, str) and v}


def route_for(result: IntentResult | None, routing: dict[str, str]) -> str:
    """The support queue: the intent's own entry, else the out-of-scope or default one.
    ``routing``: ``InferenceSettings.routes`` (the served model's map under the settings')."""
    fallback = routing.get("default", "")
    if result is None or result.out_of_scope:
        return routing.get("out_of_scope", fallback)
    return routing.get(result.intent, fallback)


def parse_message(raw: bytes | None, max_chars: int) -> tuple[SupportMessage, str | None]:
    """(message, error). Long texts are cut rather than refused: routing still works."""
    try:
        message = SupportMessage.decode(raw)
    except MessageError as exc:
        return SupportMessage(), str(exc)
    if message.text is None or not message.text.strip():
        return message, "no text"
    return message.model_copy(update={"text": message.text[:max_chars]}), None


def output_record(
    message: SupportMessage,
    result: IntentResult | None,
    error: str | None,
    routing: dict[str, str],
    model: tuple[str, str],
    suggestion: Suggestion | None = None,
) -> SupportIntent:
    common: dict[str, Any] = {
        "conversation_id": message.conversation_id,
        "message_id": message.message_id,
        "route": route_for(result, routing),
        "model_name": model[0],
        "model_version": model[1],
        "classified_at": now_iso("auto"),
    }
    if result is None:
        return SupportIntent(
            **common, intent=None, confidence=0.0, out_of_scope=True, alternatives=[], error=error
        )
    if suggestion is not None:
        common["suggestion"] = suggestion
    return SupportIntent(
        **common,
        intent=result.intent,
        confidence=round(result.confidence, 6),
        out_of_scope=result.out_of_scope,
        alternatives=[
            IntentAlternative(intent=i, confidence=round(c, 6)) for i, c in result.alternatives
        ],
    )


class SupportRouter:
    def __init__(
        self,
        classifier: IntentClassifier,
        settings: InferenceSettings,
        loop: asyncio.AbstractEventLoop,
        assistant: Assistant | None = None,
    ) -> None:
        self.classifier = classifier
        self.assistant = assistant
        self.settings = settings
        self.loop = loop
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="support-router", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def close(self, timeout: float = 10.0) -> None:
        self.stop.set()
        self.thread.join(timeout)

    def _run(self) -> None:
        kafka = kafka_python_config(self.settings.kafka)
        consumer = KafkaConsumer(
            SUPPORT_MESSAGES.name,
            group_id=self.settings.support_consumer_group,
            enable_auto_commit=False,
            auto_offset_reset=self.settings.support_offset_reset,
            client_id="lumen-inference-support",
            **kafka,
        )
        producer = KafkaProducer(
            acks="all", linger_ms=5, client_id="lumen-inference-support", **kafka
        )
        source = {"topic": SUPPORT_MESSAGES.name, "group": self.settings.support_consumer_group}
        log.info("support router consuming", extra={"fields": source})
        try:
            while not self.stop.is_set():
                polled = consumer.poll(timeout_ms=500, max_records=64)
                records = [r for batch in polled.values() for r in batch]
                if not records:
                    continue
                try:
                    self._handle(records, producer)
                    consumer.commit()
                except Exception:
                    log.exception("support batch failed; retrying it")
                    metrics.SUPPORT_MESSAGES.labels("failed").inc(len(records))
                    for partition, batch in polled.items():
                        consumer.seek(
                            TopicPartition(partition.topic, partition.partition), batch[0].offset
                        )
                    self.stop.wait(1.0)
        finally:
            consumer.close()
            producer.close(timeout=5)

    def _handle(self, records: list[Any], producer: KafkaProducer) -> None:
        parsed = [parse_message(r.value, self.settings.max_text_chars) for r in records]
        handled = [
            consume_span(record, message)
            for record, (message, _) in zip(records, parsed, strict=True)
        ]
        try:
            valid = [m for m, error in parsed if error is None]
            results: list[IntentResult] = []
            answered: list[Answer | None] = []
            model = ("", "")
            routing = self.settings.routes()
            if valid:
                with classify_span(handled, len(valid)):
                    # The coroutine runs on the server's loop in a copy of this thread's
                    # context: the batcher's spans land under the classify span.
                    results, answered, loaded = asyncio.run_coroutine_threadsafe(
                        self._classify(valid), self.loop
                    ).result(CLASSIFY_TIMEOUT_SECONDS)
                model = (loaded.name, str(loaded.version))
                routing = self.settings.routes(model_routing(loaded.config.extra))
            answers = iter(zip(results, answered, strict=True))
            for record, (message, error), span in zip(records, parsed, handled, strict=True):
                result, answer = next(answers) if error is None else (None, None)
                out = output_record(
                    message,
                    result,
                    error,
                    routing,
                    model,
                    answer.suggestion() if answer is not None else None,
                )
                key = record.key or (
                    str(out.conversation_id).encode() if out.conversation_id else None
                )
                span.set_attributes(
                    {"lumen.support.route": out.route, "lumen.support.intent": out.intent or ""}
                )
                with tracer.start_as_current_span(
                    f"{SUPPORT_INTENTS.name} publish",
                    context=trace.set_span_in_context(span),
                    kind=SpanKind.PRODUCER,
                    attributes={MESSAGING_DESTINATION: SUPPORT_INTENTS.name},
                ):
                    producer.send(
                        SUPPORT_INTENTS.name,
                        key=key,
                        value=out.encode(),
                        headers=inject_kafka_headers(),
                    )
                metrics.SUPPORT_MESSAGES.labels("classified" if result else "invalid").inc()
                if answer is not None:
                    observe_suggestion(answer, "kafka", record.timestamp)
            producer.flush(timeout=10)
        except Exception as exc:
            for span in handled:
                span.record_exception(exc)
                span.set_status(trace.Status(trace.StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            for span in handled:
                span.end()

    async def _classify(
        self, messages: list[SupportMessage]
    ) -> tuple[list[IntentResult], list[Answer | None], Any]:
        """(intents, the assistant's answers or None each, the intent model)."""
        texts = [m.text or "" for m in messages]
        knowledge_base = self.assistant.knowledge_base.index if self.assistant else None
        if self.assistant is None or knowledge_base is None or knowledge_base.empty:
            results, loaded = await self.classifier.classify(texts, 3)
            return results, [None] * len(results), loaded
        requests = [
            AssistRequest(text, str(m.conversation_id) if m.conversation_id is not None else "")
            for text, m in zip(texts, messages, strict=True)
        ]
        try:
            answers, loaded = await self.assistant.answer(requests)
        except Unavailable as exc:  # e.g. the encoder went away: route without suggestions
            log.warning("support messages routed without suggestions: %s", exc)
            results, loaded = await self.classifier.classify(texts, 3)
            return results, [None] * len(results), loaded
        return [a.intent for a in answers], list(answers), loaded


def observe_suggestion(answer: Answer, path: str, arrived_ms: int | None = None) -> None:
    metrics.ASSIST_SUGGESTIONS.labels(path, answer.handoff_reason or "answered").inc()
    if arrived_ms:
        turn = "later" if answer.earlier_messages else "first"
        waited = max(0.0, time.time() - arrived_ms / 1000.0)
        metrics.ASSIST_TIME_TO_SUGGESTION.labels(turn).observe(waited)


def consume_span(record: Any, message: SupportMessage) -> Span:
    """The span handling one ``support.messages`` record, continuing the trace its headers
    carry (a new trace when they carry none)."""
    attributes: dict[str, Any] = {
        MESSAGING_SYSTEM: "kafka",
        MESSAGING_DESTINATION: SUPPORT_MESSAGES.name,
        MESSAGING_PARTITION: str(record.partition),
        MESSAGING_OFFSET: record.offset,
    }
    if message.message_id:
        attributes[MESSAGE_ID_ATTRIBUTE] = str(message.message_id)
    if message.conversation_id:
        attributes["lumen.support.conversation_id"] = str(message.conversation_id)
    return tracer.start_span(
        f"{SUPPORT_MESSAGES.name} process",
        context=extract_kafka_context(record.headers),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
    )


def classify_span(handled: list[Span], texts: int) -> Any:
    """The current span of a batch's classification: a child of its first record's span,
    linked to the others'."""
    links = [Link(span.get_span_context()) for span in handled[1:]]
    return tracer.start_as_current_span(
        "support classify",
        context=trace.set_span_in_context(handled[0]),
        links=[link for link in links if link.context.is_valid],
        attributes={"lumen.support.batch_messages": len(handled), "lumen.support.texts": texts},
    )
