"""Prometheus metrics of the profile updater (``lumen_profiles_*``)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from shared.metrics import FRESHNESS_BUCKETS, LATENCY_BUCKETS

EVENTS_PROCESSED = Counter(
    "lumen_profiles_events_processed_total", "Events applied to profiles, by type.", ["type"]
)
EVENTS_FAILED = Counter(
    "lumen_profiles_events_failed_total", "Events sent to the DLQ, by kind of error.", ["kind"]
)
PROCESSING_LAG = Histogram(
    "lumen_profiles_processing_lag_seconds",
    "Time from the event's receipt by ingest to its profile write.",
    buckets=FRESHNESS_BUCKETS,
)
BATCH_SIZE = Histogram(
    "lumen_profiles_batch_size_events", "Events per MongoDB bulk write.",
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2000),
)  # fmt: skip
MONGO_WRITE_SECONDS = Histogram(
    "lumen_profiles_mongo_write_duration_seconds", "Duration of one bulk write.",
    buckets=LATENCY_BUCKETS,
)  # fmt: skip
