"""Feeds ``BusinessFigures`` from events.raw, support.intents and support.feedback with the
exporter's own group.

It starts at the latest offsets (figures are rates from the exporter's start, not a replay)
and keeps retrying while Kafka is down: kafka-python reconnects on its own.
"""

from __future__ import annotations

import logging
import threading
import time

from kafka import KafkaConsumer

from services.exporter.business import BusinessFigures
from shared.events import decode
from shared.kafka_config import kafka_python_config
from shared.messages import Message, SupportFeedback, SupportIntent
from shared.settings import KafkaSettings
from shared.topics import EVENTS_RAW, SUPPORT_FEEDBACK, SUPPORT_INTENTS

log = logging.getLogger(__name__)
# Lumen's own topics' models; events.raw records are Segment events (shared.events).
READERS: dict[str, type[Message]] = {
    SUPPORT_INTENTS.name: SupportIntent,
    SUPPORT_FEEDBACK.name: SupportFeedback,
}


class BusinessConsumer:
    def __init__(self, settings: KafkaSettings, group_id: str, figures: BusinessFigures) -> None:
        self.settings = settings
        self.group_id = group_id
        self.figures = figures
        self.unparseable = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="business-consumer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _run(self) -> None:
        consumer: KafkaConsumer | None = None
        while not self._stop.is_set():
            try:
                if consumer is None:
                    consumer = KafkaConsumer(
                        EVENTS_RAW.name,
                        SUPPORT_INTENTS.name,
                        SUPPORT_FEEDBACK.name,
                        group_id=self.group_id,
                        client_id="lumen-exporter-business",
                        auto_offset_reset="latest",
                        enable_auto_commit=True,
                        auto_commit_interval_ms=1000,
                        **kafka_python_config(self.settings),
                    )
                self._consume(consumer)
            except Exception as exc:  # Kafka unreachable at start: retry, never crash /metrics
                log.warning(
                    "business consumer error; retrying",
                    extra={"fields": {"error": repr(exc)[:300]}},
                )
                if consumer is not None:
                    consumer.close(autocommit=False)
                    consumer = None
                self._stop.wait(5.0)
        if consumer is not None:
            consumer.close()

    def _consume(self, consumer: KafkaConsumer) -> None:
        batches = consumer.poll(timeout_ms=1000, max_records=1000)
        now = time.time()
        for tp, records in batches.items():
            reader = READERS.get(tp.topic)
            for record in records:
                try:
                    message = reader.decode(record.value) if reader else decode(record.value)
                except (ValueError, TypeError):  # not JSON, not the topic's shape, or a tombstone
                    self.unparseable += 1
                    continue
                if isinstance(message, SupportIntent):
                    self.figures.observe_intent(message)
                elif isinstance(message, SupportFeedback):
                    self.figures.observe_feedback(message)
                elif isinstance(message, dict):
                    self.figures.observe_event(message, now)
