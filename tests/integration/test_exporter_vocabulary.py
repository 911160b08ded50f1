"""The exporter's business figures follow the event vocabulary for records read from the real
``events.raw``: every spelling of every row moves the funnel, orders, revenue and
recommendation counters as ``tests/unit/shared/test_vocabulary_roles.py`` expects."""

from __future__ import annotations

import uuid

import orjson
from kafka import KafkaProducer

from services.exporter.business import BusinessFigures
from services.exporter.business_consumer import BusinessConsumer
from shared.settings import KafkaSettings
from shared.topics import EVENTS_RAW, SUPPORT_INTENTS
from shared.vocabulary import FUNNEL_ORDER
from tests.support.stack import Stack, start_group_at_end, wait_for
from tests.unit.shared.test_vocabulary_roles import EXPECTED


def test_every_vocabulary_event_from_kafka_moves_the_business_figures(stack: Stack) -> None:
    run = uuid.uuid4().hex[:8]
    group = f"test-vocabulary-{run}"
    for topic in (EVENTS_RAW.name, SUPPORT_INTENTS.name):
        start_group_at_end(stack.kafka_bootstrap, group, topic)
    figures = BusinessFigures(trending_window_seconds=60, trending_top=5, max_label_values=50)
    consumer = BusinessConsumer(
        KafkaSettings(bootstrap_servers=stack.kafka_bootstrap), group, figures
    )
    properties = {"itemId": "7", "total": 11.0, "currency": "EUR", "recommendationId": f"r-{run}"}
    producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
    consumer.start()
    try:
        for name in EXPECTED:
            event = {"type": "track", "userId": f"u-{run}", "event": name, "properties": properties}
            producer.send(EVENTS_RAW.name, key=f"u-{run}".encode(), value=orjson.dumps(event))
        producer.flush(timeout=10)

        def all_read() -> bool:
            return figures.snapshot(0.0).events_by_type["track"] == len(EXPECTED)

        assert wait_for(all_read, timeout=60)
        snapshot = figures.snapshot(0.0)
        funnel = dict.fromkeys(FUNNEL_ORDER, 0)
        recommendations = {"impression": 0, "click": 0}
        for expected in EXPECTED.values():
            if expected.funnel:
                funnel[expected.funnel] += 1
            if expected.recommendation:
                recommendations[expected.recommendation] += 1
        orders = sum(expected.order for expected in EXPECTED.values())
        assert snapshot.funnel == funnel
        assert snapshot.recommendations == recommendations
        assert (snapshot.orders, snapshot.revenue) == (orders, {"EUR": 11.0 * orders})
        refunds = sum(expected.revenue < 0 for expected in EXPECTED.values())
        assert snapshot.refunds == {"EUR": 11.0 * refunds}
    finally:
        producer.close()
        consumer.stop()
