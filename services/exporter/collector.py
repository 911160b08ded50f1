"""Turns the cached Kafka, MongoDB and business snapshots into metric families at scrape time.

Nothing here talks to a dependency: a scrape costs the copy of a few dictionaries.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from services.exporter.business import BusinessFigures
from services.exporter.channels import channel_metrics
from services.exporter.lag import LagSnapshot
from services.exporter.mongo_source import MongoSnapshot
from services.exporter.polling import Poller


class ExporterCollector(Collector):
    def __init__(
        self,
        kafka: Poller[LagSnapshot],
        mongo: Poller[MongoSnapshot],
        business: BusinessFigures | None,
    ) -> None:
        self.kafka = kafka
        self.mongo = mongo
        self.business = business

    def collect(self) -> Iterator[Metric]:
        yield from self._health()
        kafka = self.kafka.state().value
        if kafka is not None:
            yield from kafka_metrics(kafka)
        mongo = self.mongo.state().value
        if mongo is not None:
            yield from mongo_metrics(mongo)
        if self.business is not None:
            yield from business_metrics(self.business, time.time())
            yield from channel_metrics(self.business.channels)

    def _health(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "lumen_exporter_dependency_up",
            "1 when the exporter's last read of the dependency succeeded.",
            labels=["dependency"],
        )
        errors = CounterMetricFamily(
            "lumen_exporter_poll_errors", "Failed reads of a dependency.", labels=["dependency"]
        )
        duration = GaugeMetricFamily(
            "lumen_exporter_poll_duration_seconds",
            "Duration of the last read of a dependency.",
            labels=["dependency"],
        )
        success = GaugeMetricFamily(
            "lumen_exporter_last_success_timestamp_seconds",
            "Unix time of the last successful read of a dependency.",
            labels=["dependency"],
        )
        for poller in (self.kafka, self.mongo):
            state = poller.state()
            up.add_metric([poller.name], 1.0 if state.up else 0.0)
            errors.add_metric([poller.name], state.errors)
            duration.add_metric([poller.name], state.last_duration)
            if state.last_success is not None:
                success.add_metric([poller.name], state.last_success)
        yield from (up, errors, duration, success)


def _gauge(name: str, doc: str, labels: list[str], rows: Any) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for values, value in rows:
        family.add_metric([str(v) for v in values], float(value))
    return family


def kafka_metrics(snap: LagSnapshot) -> Iterator[Metric]:
    yield _gauge(
        "lumen_kafka_partition_end_offset",
        "Log end offset of a partition.",
        ["topic", "partition"],
        (((t, p), o) for (t, p), o in snap.end_offsets.items()),
    )
    yield _gauge(
        "lumen_kafka_partition_produce_rate",
        "Messages per second appended to a partition over the exporter's lag window.",
        ["topic", "partition"],
        (((t, p), r) for (t, p), r in snap.produce_rates.items()),
    )
    labels = ["group", "topic", "partition"]
    rows = snap.partitions
    yield _gauge(
        "lumen_kafka_consumergroup_committed_offset",
        "Offset committed by a consumer group.",
        labels,
        (((r.group, r.topic, r.partition), r.committed) for r in rows),
    )
    yield _gauge(
        "lumen_kafka_consumergroup_lag_messages",
        "Messages between a group's committed offset and the partition's end offset.",
        labels,
        (((r.group, r.topic, r.partition), r.lag_messages) for r in rows),
    )
    yield _gauge(
        "lumen_kafka_consumergroup_lag_seconds",
        "Estimated age of the oldest unconsumed message (interpolated from end-offset history).",
        labels,
        (((r.group, r.topic, r.partition), r.lag_seconds) for r in rows),
    )
    yield _gauge(
        "lumen_kafka_consumergroup_status",
        "Burrow-style group status: 0 ok, 1 warning, 2 stalled, 3 stopped.",
        ["group"],
        (((g,), int(s)) for g, s in snap.group_status.items()),
    )
    yield _gauge(
        "lumen_kafka_consumergroup_members",
        "Active members of a consumer group.",
        ["group"],
        (((g,), n) for g, n in snap.group_members.items()),
    )


def mongo_metrics(snap: MongoSnapshot) -> Iterator[Metric]:
    cols = snap.collections.items()
    yield _gauge(
        "lumen_mongodb_collection_documents",
        "Documents in a collection.",
        ["collection"],
        (((n,), s.documents) for n, s in cols),
    )
    yield _gauge(
        "lumen_mongodb_collection_size_bytes",
        "Uncompressed data size of a collection.",
        ["collection"],
        (((n,), s.size_bytes) for n, s in cols),
    )
    yield _gauge(
        "lumen_mongodb_collection_storage_bytes",
        "Disk space of a collection's data.",
        ["collection"],
        (((n,), s.storage_bytes) for n, s in cols),
    )
    yield _gauge(
        "lumen_mongodb_index_size_bytes",
        "Total size of a collection's indexes.",
        ["collection"],
        (((n,), s.index_bytes) for n, s in cols),
    )
    yield _gauge(
        "lumen_mongodb_active_users",
        "Profiles whose lastSeen falls in the window.",
        ["window"],
        (((w,), n) for w, n in snap.active_users.items()),
    )


def _counter(name: str, doc: str, labels: list[str], rows: Any) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=labels)
    for values, value in rows:
        family.add_metric([str(v) for v in values], float(value))
    return family


def business_metrics(figures: BusinessFigures, now: float) -> Iterator[Metric]:
    snap = figures.snapshot(now)
    yield _counter(
        "lumen_business_events",
        "Events on events.raw by Segment type.",
        ["type"],
        (((t,), n) for t, n in snap.events_by_type.items()),
    )
    yield _counter(
        "lumen_business_funnel_events",
        "Events per funnel step (view, add_to_cart, checkout, purchase).",
        ["step"],
        (((s,), n) for s, n in snap.funnel.items()),
    )
    yield _counter("lumen_business_orders", "Order Completed events.", [], [((), snap.orders)])
    yield _counter(
        "lumen_business_revenue",
        "Revenue of Order Completed events, in the base currency (LUMEN_CURRENCY_BASE), or "
        "in the order's own currency when no rate converts it.",
        ["currency"],
        (((c,), v) for c, v in snap.revenue.items()),
    )
    yield _counter(
        "lumen_business_refunds",
        "Amounts of Order Refunded and Order Cancelled events, in the same currencies as "
        "lumen_business_revenue (net revenue: revenue less refunds).",
        ["currency"],
        (((c,), v) for c, v in snap.refunds.items()),
    )
    yield _counter(
        "lumen_business_recommendation_events",
        "Recommendation impressions and clicks (events carrying properties.recommendationId).",
        ["action"],
        (((a,), n) for a, n in snap.recommendations.items()),
    )
    yield _counter(
        "lumen_business_support_intents",
        "Classified support messages by intent.",
        ["intent"],
        (((i,), n) for i, n in snap.intents.items()),
    )
    yield _counter(
        "lumen_business_support_out_of_scope",
        "Support messages classified out of scope.",
        [],
        [((), snap.out_of_scope)],
    )
    yield _counter(
        "lumen_business_support_feedback",
        "What support agents did with the assistant's suggested replies (support.feedback): "
        "action accept, edit or reject, by the suggestion's intent and model version.",
        ["intent", "model_version", "action"],
        ((key, n) for key, n in snap.feedback.items()),
    )
    yield _gauge(
        "lumen_business_trending_category_events",
        "Events naming a category over the trending window; only the top categories.",
        ["category", "rank"],
        (((c, rank), n) for rank, (c, n) in enumerate(snap.trending, start=1)),
    )
