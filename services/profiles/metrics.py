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
    "Failures the updater recovered from, by kind: mongo (retried), publish, internal (update "
    "code failed on a record) and rejected (MongoDB refused a record): both isolated to the DLQ.",
    ["kind"],
)
# Every kind exported from the start: no retry yet reads as 0, not as a missing series.
for _kind in ("mongo", "publish", "internal", "rejected"):
    ERRORS.labels(_kind)
LIMITED = Counter(
    "lumen_profiles_limited_total",
    "Parts of events a profile cap refused (traits, trait_bytes, traits_bytes, event_names, "
    "anonymous_ids, purchased_items, trend_events) or could not apply (revenue_currency: an "
    "amount in a currency without a configured rate); the rest of each event was applied.",
    ["limit"],
)
IDENTITY_REFUSED = Counter(
    "lumen_profiles_identity_refused_total",
    "Id links (merges) the identity rules refused, by reason (identified, claimed, "
    "anonymous_ids, erased); the event was applied without the link.",
    ["reason"],
)
EVENTS_SUPPRESSED = Counter(
    "lumen_profiles_events_suppressed_total",
    "Events dropped because their id was erased (suppression list).",
)
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
    "lumen_profiles_batch_size_events",
    "Records per MongoDB transaction.",
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000, 10000),
)
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
