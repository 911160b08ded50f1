"""The exporter's business consumer reads support.intents through its model on the real Kafka:
versioned and unversioned records count, a record that is not a SupportIntent does not."""

from __future__ import annotations

import uuid

import orjson
from kafka import KafkaProducer

from services.exporter.business import BusinessFigures
from services.exporter.business_consumer import BusinessConsumer
from shared.messages import SupportIntent
from shared.settings import KafkaSettings
from shared.topics import SUPPORT_INTENTS
from tests.support.stack import Stack, start_group_at_end, wait_for


def classified(intent: str) -> SupportIntent:
    return SupportIntent(
        conversation_id=f"c-{uuid.uuid4().hex[:8]}",
        route="support",
        model_name="intent-classifier",
        model_version="1",
        classified_at="2026-01-01T00:00:00Z",
        intent=intent,
        confidence=0.9,
        out_of_scope=False,
    )


def test_support_intents_are_read_as_messages_and_bad_ones_are_counted(stack: Stack) -> None:
    run = uuid.uuid4().hex[:8]
    group = f"test-business-{run}"
    start_group_at_end(stack.kafka_bootstrap, group, SUPPORT_INTENTS.name)
    figures = BusinessFigures(trending_window_seconds=60, trending_top=5, max_label_values=50)
    consumer = BusinessConsumer(
        KafkaSettings(bootstrap_servers=stack.kafka_bootstrap), group, figures
    )
    versioned = classified(f"refund-{run}")
    unversioned = orjson.loads(classified(f"shipping-{run}").encode())
    del unversioned["schemaVersion"]  # as written before the field existed
    not_a_message = {k: v for k, v in unversioned.items() if k != "route"}
    newer = {**unversioned, "schemaVersion": SupportIntent.latest_version + 1}
    producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
    consumer.start()
    try:
        values = [versioned.encode()] + [
            orjson.dumps(v) for v in (unversioned, not_a_message, newer)
        ]
        for value in values:
            producer.send(SUPPORT_INTENTS.name, value=value).get(timeout=10)

        def counted() -> dict[str, int] | None:
            intents = figures.snapshot(0.0).intents
            ours = {k: v for k, v in intents.items() if k.endswith(run)}
            return ours if sum(ours.values()) == 2 and consumer.unparseable == 2 else None

        assert wait_for(counted, timeout=60) == {f"refund-{run}": 1, f"shipping-{run}": 1}
    finally:
        producer.close()
        consumer.stop()
