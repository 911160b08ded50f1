"""Collect agents' labels for training: ``support.messages`` + ``support.labels`` in, MongoDB
``support_messages`` (texts, TTL) and ``support_labels`` out (shared/support_labels.py).

One consumer thread of its own group reads both topics, so routing never waits on these
writes. A batch's messages are written before its labels (a label in the same batch as its
message finds the text); offsets are committed after the writes (at-least-once, and every
write is an idempotent upsert by message id, so a replay changes nothing).

Settings: ``LUMEN_LABELS_*`` (``services.inference.settings.LabelSettings``).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from pymongo.database import Database

from services.inference import metrics
from services.inference.settings import LabelSettings
from shared import support_labels
from shared.kafka_config import kafka_python_config
from shared.messages import MessageError, SupportLabel, SupportMessage
from shared.settings import KafkaSettings
from shared.topics import SUPPORT_LABELS, SUPPORT_MESSAGES

log = logging.getLogger(__name__)
DAY_SECONDS = 86_400


def split_batch(
    records: list[Any], max_chars: int, now: datetime
) -> tuple[list[support_labels.SeenMessage], list[support_labels.Label], int]:
    """(messages with an id and a text, labels, records skipped as invalid)."""
    messages, labels, skipped = [], [], 0
    for record in records:
        try:
            if record.topic == SUPPORT_LABELS.name:
                label = SupportLabel.decode(record.value)
                labels.append(
                    support_labels.Label(
                        label.conversation_id,
                        label.message_id,
                        label.label,
                        label.agent_id,
                        support_labels.labelled_time(label.labelled_at, now),
                    )
                )
                continue
            message = SupportMessage.decode(record.value)
        except MessageError as exc:
            skipped += 1
            log.warning("skipping an invalid %s record: %s", record.topic, exc)
            continue
        if message.message_id is None or not (message.text or "").strip():
            continue  # nothing a label could refer to
        text = " ".join((message.text or "").split())[:max_chars]
        messages.append(
            support_labels.SeenMessage(message.conversation_id, message.message_id, text)
        )
    return messages, labels, skipped


class LabelCollector:
    def __init__(
        self, db: Database, kafka: KafkaSettings, settings: LabelSettings, max_chars: int
    ) -> None:
        self.db = db
        self.kafka = kafka
        self.settings = settings
        self.max_chars = max_chars
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="label-collector", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def close(self, timeout: float = 10.0) -> None:
        self.stop.set()
        self.thread.join(timeout)

    def handle(self, records: list[Any]) -> None:
        now = datetime.now(UTC)
        messages, labels, skipped = split_batch(records, self.max_chars, now)
        support_labels.record_messages(self.db, messages, now)
        support_labels.record_labels(self.db, labels, now)
        metrics.LABEL_RECORDS.labels("message").inc(len(messages))
        metrics.LABEL_RECORDS.labels("label").inc(len(labels))
        metrics.LABEL_RECORDS.labels("invalid").inc(skipped)

    def _run(self) -> None:
        try:
            support_labels.ensure_indexes(
                self.db, int(self.settings.message_ttl_days * DAY_SECONDS)
            )
        except Exception:  # the writes work without them; say so and carry on
            log.exception("could not create the support label indexes")
        consumer = KafkaConsumer(
            SUPPORT_MESSAGES.name,
            SUPPORT_LABELS.name,
            group_id=self.settings.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset=self.settings.offset_reset,
            client_id="lumen-inference-labels",
            **kafka_python_config(self.kafka),
        )
        log.info(
            "label collector consuming",
            extra={"fields": {"group": self.settings.consumer_group, "database": self.db.name}},
        )
        try:
            while not self.stop.is_set():
                polled = consumer.poll(timeout_ms=500, max_records=500)
                records = [r for batch in polled.values() for r in batch]
                if not records:
                    continue
                try:
                    self.handle(records)
                    consumer.commit()
                except Exception:
                    metrics.LABEL_RECORDS.labels("failed").inc(len(records))
                    log.exception("label batch failed; retrying it")
                    for partition, batch in polled.items():
                        consumer.seek(
                            TopicPartition(partition.topic, partition.partition), batch[0].offset
                        )
                    self.stop.wait(1.0)
        finally:
            consumer.close()
