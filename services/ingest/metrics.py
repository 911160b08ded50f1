"""Prometheus metrics of the ingest service (``lumen_ingest_*``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from shared.metrics import LATENCY_BUCKETS

REQUESTS = Counter(
    "lumen_ingest_requests_total",
    "Requests by transport, route and status.",
    ["transport", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "lumen_ingest_request_duration_seconds",
    "Request latency by transport and route.",
    ["transport", "route"],
    buckets=LATENCY_BUCKETS,
)
EVENTS_ACCEPTED = Counter(
    "lumen_ingest_events_accepted_total", "Events acknowledged by Kafka, by type.", ["type"]
)
EVENTS_REJECTED = Counter(
    "lumen_ingest_events_rejected_total", "Events refused, by typed reason.", ["reason"]
)
EVENTS_DUPLICATE = Counter(
    "lumen_ingest_events_duplicate_total", "Events dropped as duplicates of an earlier messageId."
)
PRODUCE_SECONDS = Histogram(
    "lumen_ingest_kafka_produce_duration_seconds",
    "Time from handing a request's events to Kafka until all are acknowledged.",
    buckets=LATENCY_BUCKETS,
)
BATCH_SIZE = Histogram(
    "lumen_ingest_batch_size_events",
    "Events per request.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
IN_FLIGHT = Gauge("lumen_ingest_in_flight_requests", "Requests being processed.")
DEDUPE_ENTRIES = Gauge(
    "lumen_ingest_dedupe_entries",
    "messageIds remembered for duplicate detection (at most LUMEN_INGEST_DEDUPE_MAX_ENTRIES).",
)
KAFKA_UP = Gauge("lumen_ingest_kafka_up", "1 when the producer is connected to Kafka.")
PRODUCE_FAILURES = Counter(
    "lumen_ingest_kafka_produce_failures_total",
    "Requests whose events Kafka did not acknowledge in time (answered 503).",
)
RATE_LIMITED = Counter(
    "lumen_ingest_rate_limited_total", "Requests refused by the rate limit, by source.", ["source"]
)
DLQ_WRITTEN = Counter("lumen_ingest_dlq_events_total", "Rejected events written to events.dlq.")
DLQ_FAILURES = Counter(
    "lumen_ingest_dlq_failures_total", "Rejected events that could not be written to events.dlq."
)
DLQ_SUPPRESSED = Counter(
    "lumen_ingest_dlq_suppressed_total",
    "Rejected events beyond LUMEN_INGEST_MAX_REPORTED_ERRORS in one request: counted in the "
    "answer, neither listed nor written to events.dlq.",
)
TIMESTAMPS_CLAMPED = Counter(
    "lumen_ingest_timestamps_clamped_total",
    "Events whose timestamp was replaced by receivedAt, by reason (future_timestamp: more "
    "than LUMEN_INGEST_MAX_FUTURE_SKEW_SECONDS ahead).",
    ["reason"],
)
TIMESTAMPS_CLAMPED.labels("future_timestamp")  # a 0 series before the first clamp
