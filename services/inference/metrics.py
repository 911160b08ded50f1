"""Prometheus series of the inference server, modelled on Triton's per-model metrics.

Average batch size = rate(inferences_total) / rate(executions_total); queue and compute
time are histograms so p50/p99 can be read per model and version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from shared.metrics import LATENCY_BUCKETS

_MODEL = ["model", "version"]

REQUESTS = Counter(
    "lumen_inference_model_requests_total",
    "Inference requests per model version, by outcome (success or failure).",
    [*_MODEL, "outcome"],
)
INFERENCES = Counter(
    "lumen_inference_model_inferences_total",
    "Rows inferred (a request with a batch of 4 counts 4).",
    _MODEL,
)
EXECUTIONS = Counter(
    "lumen_inference_model_executions_total",
    "Model executions (one per dynamic batch).",
    _MODEL,
)
QUEUE_SECONDS = Histogram(
    "lumen_inference_model_queue_seconds",
    "Time a request waited in the batch queue.",
    _MODEL,
    buckets=(0.00005, 0.0001, 0.00025, *LATENCY_BUCKETS),
)
COMPUTE_SECONDS = Histogram(
    "lumen_inference_model_compute_seconds",
    "onnxruntime time of one execution (a whole batch).",
    _MODEL,
    buckets=(0.00005, 0.0001, 0.00025, *LATENCY_BUCKETS),
)
BATCH_SIZE = Histogram(
    "lumen_inference_model_batch_size",
    "Rows per execution.",
    _MODEL,
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
QUEUE_DEPTH = Gauge(
    "lumen_inference_model_queue_depth", "Requests waiting in the batch queue.", _MODEL
)


@dataclass(frozen=True)
class ModelSeries:
    """One model version's series, bound once: ``labels()`` costs a lock and a dict lookup,
    a few of them on every request of a sub-millisecond model."""

    succeeded: Any
    failed: Any
    inferences: Any
    executions: Any
    queue_seconds: Any
    compute_seconds: Any
    batch_size: Any
    queue_depth: Any

    @classmethod
    def of(cls, model: str, version: str) -> ModelSeries:
        return cls(
            succeeded=REQUESTS.labels(model, version, "success"),
            failed=REQUESTS.labels(model, version, "failure"),
            inferences=INFERENCES.labels(model, version),
            executions=EXECUTIONS.labels(model, version),
            queue_seconds=QUEUE_SECONDS.labels(model, version),
            compute_seconds=COMPUTE_SECONDS.labels(model, version),
            batch_size=BATCH_SIZE.labels(model, version),
            queue_depth=QUEUE_DEPTH.labels(model, version),
        )


MODEL_LOADED = Gauge(
    "lumen_inference_model_loaded", "1 while the model version is loaded and serving.", _MODEL
)
MODEL_LOAD_FAILURES = Counter(
    "lumen_inference_model_load_failures_total",
    "Versions refused at load time (bad file, wrong shapes, checksum).",
    _MODEL,
)
GRPC_REQUESTS = Counter(
    "lumen_inference_grpc_requests_total",
    "gRPC calls by method and status code.",
    ["method", "code"],
)
GRPC_SECONDS = Histogram(
    "lumen_inference_grpc_seconds",
    "gRPC call latency by method.",
    ["method"],
    buckets=LATENCY_BUCKETS,
)
RECOMMEND_SOURCE = Counter(
    "lumen_inference_recommend_responses_total",
    "Recommend answers by source (personalised, trending, trending_degraded).",
    ["source"],
)
PROFILE_STORE_ERRORS = Counter(
    "lumen_inference_profile_store_errors_total",
    "Profile reads that failed or timed out (Recommend degraded to trending).",
)
PROFILE_UNREADABLE = Counter(
    "lumen_inference_profile_unreadable_total",
    "Profiles read whose item lists could not be decoded (Recommend degraded to trending).",
)
PROFILE_STORE_UP = Gauge(
    "lumen_inference_profile_store_up", "1 when the last profile read succeeded."
)
SUPPORT_MESSAGES = Counter(
    "lumen_inference_support_messages_total",
    "support.messages records handled, by outcome: classified, invalid (published with its "
    "error and the out-of-scope route), failed (its batch failed and is read again).",
    ["outcome"],
)
for _outcome in ("classified", "invalid", "failed"):  # exported at 0 before the first message
    SUPPORT_MESSAGES.labels(_outcome)
LABEL_RECORDS = Counter(
    "lumen_inference_label_records_total",
    "Records the label collector handled, by kind: message (a support message's text kept for "
    "training), label (an agent's final intent), invalid (skipped), failed (its batch is read "
    "again).",
    ["kind"],
)
for _kind in ("message", "label", "invalid", "failed"):
    LABEL_RECORDS.labels(_kind)
ASSIST_SUGGESTIONS = Counter(
    "lumen_inference_assist_suggestions_total",
    "Support-assistant answers by path (kafka, grpc) and outcome: answered, or the hand-off's "
    "reason (out_of_scope, low_confidence, no_answer).",
    ["path", "outcome"],
)
for _path in ("kafka", "grpc"):
    for _outcome in ("answered", "out_of_scope", "low_confidence", "no_answer"):
        ASSIST_SUGGESTIONS.labels(_path, _outcome)
ASSIST_TIME_TO_SUGGESTION = Histogram(
    "lumen_inference_assist_time_to_suggestion_seconds",
    "From a support message's arrival on support.messages (its record timestamp) to its "
    "suggestion's publish on support.intents; turn: first (no earlier message of the "
    "conversation held) or later.",
    ["turn"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
ASSIST_KB_PASSAGES = Gauge(
    "lumen_inference_assist_kb_passages", "Knowledge-base passages the assistant holds in memory."
)
SEARCH_INDEX_ITEMS = Gauge(
    "lumen_inference_search_index_items", "Items in the live search index (searchable now)."
)
SEARCH_INDEX_UPDATES = Counter(
    "lumen_inference_search_index_updates_total",
    "Changes applied to the live search index from the catalogue's change stream, by op "
    "(upsert: embedded and indexed; remove: removed or deleted item left the index).",
    ["op"],
)
for _op in ("upsert", "remove"):
    SEARCH_INDEX_UPDATES.labels(_op)
SEARCH_INDEX_LAG_SECONDS = Histogram(
    "lumen_inference_search_index_lag_seconds",
    "From an item's updatedAt (written by the profile updater) to searchable in the index.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
SEARCH_EMBED_SECONDS = Histogram(
    "lumen_inference_search_embed_batch_seconds",
    "One encoder run of the live search index (a batch of item texts).",
    buckets=LATENCY_BUCKETS,
)
SEARCH_EMBEDDED = Counter(
    "lumen_inference_search_items_embedded_total",
    "Item texts embedded by the live search index (vectors missing or stale in item_vectors).",
)
SEARCH_INDEX_ERRORS = Counter(
    "lumen_inference_search_index_errors_total",
    "Failures of the live search index, by stage (change_stream: reopened or resumed; "
    "apply: a batch failed and the index resyncs).",
    ["stage"],
)
for _stage in ("change_stream", "apply"):
    SEARCH_INDEX_ERRORS.labels(_stage)
for _turn in ("first", "later"):  # exported before the first suggestion
    ASSIST_TIME_TO_SUGGESTION.labels(_turn)
