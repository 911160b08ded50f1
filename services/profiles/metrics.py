"""Prometheus metrics of the profile updater (``lumen_profiles_*``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from shared.metrics import FRESHNESS_BUCKETS, LATENCY_BUCKETS

EVENTS_PROCESSED = Counter(
    "lumen_profiles_events_processed_total", "Events applied to profiles, by type.", ["type"]
)
EVENTS_SKIPPED = Counter(
    "lumen_profiles_events_skipped_total",
    "Records skipped because MongoDB already holds their effect (replays).",
)
EVENTS_FAILED = Counter(
    "lumen_profiles_events_failed_total", "Events sent to the DLQ, by kind of error.", ["kind"]
)
ERRORS = Counter(
    "lumen_profiles_errors_total",
    "Failures the updater recovered from by retrying, by kind (mongo, publish, internal).",
    ["kind"],
)
# Every kind exported from the start: no retry yet reads as 0, not as a missing series.
for _kind in ("mongo", "publish", "internal"):
    ERRORS.labels(_kind)
PROFILES_ERASED = Counter("lumen_profiles_erasures_total", "Erasure (delete) events applied.")
MESSAGES_PUBLISHED = Counter(
    "lumen_profiles_updates_published_total",
    "Messages written to profiles.updated, by kind (update, tombstone).",
    ["kind"],
)
PROCESSING_LAG = Histogram(
    "lumen_profiles_processing_lag_seconds",
    "Time from the event's time (its timestamp) to the commit of its profile write.",
    buckets=FRESHNESS_BUCKETS,
)
BATCH_SIZE = Histogram(
    "lumen_profiles_batch_size_events", "Records per MongoDB transaction.",
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000, 10000),
)  # fmt: skip
MONGO_WRITE_SECONDS = Histogram(
    "lumen_profiles_mongo_write_duration_seconds",
    "Duration of one batch transaction (reads, bulk writes, commit).",
    buckets=LATENCY_BUCKETS,
)
LAST_COMMIT = Gauge(
    "lumen_profiles_last_commit_timestamp_seconds", "Unix time of the last committed batch."
)
ASSIGNED_PARTITIONS = Gauge(
    "lumen_profiles_assigned_partitions", "Partitions of the events topic this worker owns."
)
