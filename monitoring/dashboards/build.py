"""Grafana dashboards as code: ``python -m monitoring.dashboards.build`` writes
``monitoring/grafana/dashboards/*.json`` (``--check`` fails if the files differ from the code).

Every panel query uses only metrics some Lumen process exports; the integration test
``tests/integration/test_monitoring_prometheus.py`` evaluates each one against a real Prometheus.
Queries filter on the ``env`` (and, on the overview, ``service``) labels Prometheus attaches.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "grafana" / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}
E = 'env=~"$env"'
ES = 'env=~"$env", service=~"$service"'
RI = "$__rate_interval"
SCHEMA_VERSION = 39


@dataclass
class Query:
    expr: str
    legend: str = ""
    instant: bool = False


@dataclass
class Panel:
    title: str
    queries: list[Query]
    kind: str = "timeseries"
    unit: str = "short"
    description: str = ""
    # (value, colour) steps above the base green; e.g. [(0.01, "red")].
    thresholds: list[tuple[float, str]] = field(default_factory=list)
    mappings: list[dict[str, Any]] = field(default_factory=list)
    width: int = 8
    height: int = 8
    min: float | None = None
    max: float | None = None


@dataclass
class Dashboard:
    uid: str
    title: str
    description: str
    rows: list[tuple[str, list[Panel]]]
    service_variable: bool = False
    # More query variables: (name, label, label_values query).
    variables: list[tuple[str, str, str]] = field(default_factory=list)
    tags: list[str] = field(default_factory=lambda: ["lumen"])


def q(expr: str, legend: str = "", instant: bool = False) -> Query:
    return Query(" ".join(expr.split()), legend, instant)


def p99(metric: str, by: str = "", selector: str = E) -> str:
    group = f"le, {by}" if by else "le"
    return f"histogram_quantile(0.99, sum by ({group}) (rate({metric}_bucket{{{selector}}}[{RI}])))"


def error_ratio(metric: str, bad: str, selector: str, by: str = "") -> str:
    """Bad share of a counter; a missing bad series counts as 0, a missing counter as no data."""
    grp = f" by ({by})" if by else ""
    return (
        f"(sum{grp} (rate({metric}{{{selector}, {bad}}}[{RI}])) or {'0 * ' if by else ''}"
        f"{f'sum{grp} (rate({metric}{{{selector}}}[{RI}]))' if by else 'vector(0)'})"
        f" / sum{grp} (rate({metric}{{{selector}}}[{RI}]))"
    )


STATUS_MAPPING = {
    "type": "value",
    "options": {
        "0": {"text": "OK", "color": "green", "index": 0},
        "1": {"text": "WARNING", "color": "yellow", "index": 1},
        "2": {"text": "STALLED", "color": "red", "index": 2},
        "3": {"text": "STOPPED", "color": "dark-red", "index": 3},
    },
}
UP_MAPPING = {
    "type": "value",
    "options": {
        "0": {"text": "DOWN", "color": "red", "index": 0},
        "1": {"text": "UP", "color": "green", "index": 1},
    },
}


def overview() -> Dashboard:
    grpc_bad = 'code!="OK"'
    http_bad = 'status=~"5..|INTERNAL|UNAVAILABLE|DEADLINE_EXCEEDED|UNKNOWN|DATA_LOSS"'
    return Dashboard(
        "lumen-overview",
        "Lumen / Overview",
        "Rate, errors and duration (RED) of every Lumen service, and whether Prometheus reaches it.",
        [
            (
                "Targets",
                [
                    Panel(
                        "Targets up",
                        [q(f"up{{{ES}}}", "{{service}}", instant=True)],
                        "stat",
                        mappings=[UP_MAPPING],
                        thresholds=[(1, "green")],
                        width=24,
                        height=4,
                    ),
                ],
            ),
            (
                "Ingest",
                [
                    Panel(
                        "Ingest requests/s",
                        [
                            q(
                                f"sum by (transport) (rate(lumen_ingest_requests_total{{{ES}}}[{RI}]))",
                                "{{transport}}",
                            )
                        ],
                        unit="reqps",
                    ),
                    Panel(
                        "Ingest server-error ratio",
                        [q(error_ratio("lumen_ingest_requests_total", http_bad, ES), "errors")],
                        unit="percentunit",
                        thresholds=[(0.001, "red")],
                        min=0,
                    ),
                    Panel(
                        "Ingest p99 latency",
                        [q(p99("lumen_ingest_request_duration_seconds", "route", ES), "{{route}}")],
                        unit="s",
                        thresholds=[(0.025, "red")],
                    ),
                ],
            ),
            (
                "Profiles",
                [
                    Panel(
                        "Profile events applied/s",
                        [
                            q(
                                f"sum by (type) (rate(lumen_profiles_events_processed_total{{{ES}}}[{RI}]))",
                                "{{type}}",
                            )
                        ],
                        unit="ops",
                    ),
                    Panel(
                        "Profile events failed ratio",
                        [
                            q(
                                f"(sum (rate(lumen_profiles_events_failed_total{{{ES}}}[{RI}])) or vector(0)) / sum (rate(lumen_profiles_events_processed_total{{{ES}}}[{RI}]))",
                                "failed",
                            )
                        ],
                        unit="percentunit",
                        thresholds=[(0.001, "red")],
                        min=0,
                    ),
                    Panel(
                        "Profile batch write p99",
                        [q(p99("lumen_profiles_mongo_write_duration_seconds", selector=ES), "p99")],
                        unit="s",
                        thresholds=[(0.25, "red")],
                    ),
                ],
            ),
            (
                "Inference",
                [
                    Panel(
                        "Inference calls/s",
                        [
                            q(
                                f"sum by (method) (rate(lumen_inference_grpc_requests_total{{{ES}}}[{RI}]))",
                                "{{method}}",
                            )
                        ],
                        unit="reqps",
                    ),
                    Panel(
                        "Inference error ratio",
                        [
                            q(
                                error_ratio(
                                    "lumen_inference_grpc_requests_total", grpc_bad, ES, by="method"
                                ),
                                "{{method}}",
                            )
                        ],
                        unit="percentunit",
                        thresholds=[(0.001, "red")],
                        min=0,
                    ),
                    Panel(
                        "Inference p99 latency",
                        [q(p99("lumen_inference_grpc_seconds", "method", ES), "{{method}}")],
                        unit="s",
                        thresholds=[(0.010, "red")],
                    ),
                ],
            ),
            (
                "Exporter",
                [
                    Panel(
                        "Exporter dependencies",
                        [
                            q(
                                f"lumen_exporter_dependency_up{{{ES}}}",
                                "{{dependency}}",
                                instant=True,
                            )
                        ],
                        "stat",
                        mappings=[UP_MAPPING],
                        thresholds=[(1, "green")],
                    ),
                    Panel(
                        "Exporter read duration",
                        [q(f"lumen_exporter_poll_duration_seconds{{{ES}}}", "{{dependency}}")],
                        unit="s",
                    ),
                    Panel(
                        "Exporter read errors/s",
                        [
                            q(
                                f"sum by (dependency) (rate(lumen_exporter_poll_errors_total{{{ES}}}[{RI}]))",
                                "{{dependency}}",
                            )
                        ],
                        unit="ops",
                        thresholds=[(0.01, "red")],
                    ),
                ],
            ),
        ],
        service_variable=True,
    )


def ingestion() -> Dashboard:
    return Dashboard(
        "lumen-ingestion",
        "Lumen / Ingestion",
        "The Segment-compatible front door: accepted, rejected and duplicate events, Kafka acknowledgements.",
        [
            (
                "Events",
                [
                    Panel(
                        "Accepted events/s by type",
                        [
                            q(
                                f"sum by (type) (rate(lumen_ingest_events_accepted_total{{{E}}}[{RI}]))",
                                "{{type}}",
                            )
                        ],
                        unit="ops",
                    ),
                    Panel(
                        "Rejected events/s by reason",
                        [
                            q(
                                f"sum by (reason) (rate(lumen_ingest_events_rejected_total{{{E}}}[{RI}]))",
                                "{{reason}}",
                            )
                        ],
                        unit="ops",
                    ),
                    Panel(
                        "Duplicate events/s",
                        [
                            q(
                                f"sum (rate(lumen_ingest_events_duplicate_total{{{E}}}[{RI}]))",
                                "duplicates",
                            )
                        ],
                        unit="ops",
                    ),
                    Panel(
                        "messageIds remembered for dedupe",
                        [
                            q(
                                f"sum by (instance) (lumen_ingest_dedupe_entries{{{E}}})",
                                "{{instance}}",
                            )
                        ],
                        description="Per ingest process; bounded by LUMEN_INGEST_DEDUPE_MAX_ENTRIES (a few hundred bytes of memory each).",
                    ),
                ],
            ),
            (
                "Requests",
                [
                    Panel(
                        "Requests/s by route and status",
                        [
                            q(
                                f"sum by (route, status) (rate(lumen_ingest_requests_total{{{E}}}[{RI}]))",
                                "{{route}} {{status}}",
                            )
                        ],
                        unit="reqps",
                    ),
                    Panel(
                        "Request latency p99 by route",
                        [q(p99("lumen_ingest_request_duration_seconds", "route"), "{{route}}")],
                        unit="s",
                        thresholds=[(0.025, "red")],
                    ),
                    Panel(
                        "Events per request (mean)",
                        [
                            q(
                                f"sum (rate(lumen_ingest_batch_size_events_sum{{{E}}}[{RI}])) / sum (rate(lumen_ingest_batch_size_events_count{{{E}}}[{RI}]))",
                                "events/request",
                            )
                        ],
                    ),
                ],
            ),
            (
                "Kafka producer",
                [
                    Panel(
                        "Kafka acknowledgement p99",
                        [q(p99("lumen_ingest_kafka_produce_duration_seconds"), "p99")],
                        unit="s",
                        thresholds=[(0.025, "red")],
                    ),
                    Panel(
                        "Kafka reachable",
                        [q(f"min (lumen_ingest_kafka_up{{{E}}})", "kafka", instant=True)],
                        "stat",
                        mappings=[UP_MAPPING],
                        thresholds=[(1, "green")],
                    ),
                    Panel(
                        "Requests in flight",
                        [q(f"sum (lumen_ingest_in_flight_requests{{{E}}})", "in flight")],
                    ),
                ],
            ),
            (
                "Failures",
                [
                    Panel(
                        "Requests not acknowledged by Kafka/s",
                        [
                            q(
                                f"sum (rate(lumen_ingest_kafka_produce_failures_total{{{E}}}[{RI}]))",
                                "503",
                            )
                        ],
                        unit="reqps",
                        thresholds=[(0.01, "red")],
                    ),
                    Panel(
                        "Rejected events written to the DLQ/s",
                        [
                            q(f"sum (rate(lumen_ingest_dlq_events_total{{{E}}}[{RI}]))", "written"),
                            q(
                                f"sum (rate(lumen_ingest_dlq_failures_total{{{E}}}[{RI}]))",
                                "write failed",
                            ),
                        ],
                        unit="ops",
                    ),
                    Panel(
                        "Rate-limited requests/s by source",
                        [
                            q(
                                f"sum by (source) (rate(lumen_ingest_rate_limited_total{{{E}}}[{RI}]))",
                                "{{source}}",
                            )
                        ],
                        unit="reqps",
                        description="Answered 429 (HTTP) or RESOURCE_EXHAUSTED (gRPC): the source sends faster than LUMEN_INGEST_RATE_LIMIT_* allows.",
                    ),
                ],
            ),
        ],
    )


def streaming() -> Dashboard:
    fresh = (
        f'sum (rate(lumen_profiles_processing_lag_seconds_bucket{{{E}, le="1.0"}}[{RI}])) '
        f"/ sum (rate(lumen_profiles_processing_lag_seconds_count{{{E}}}[{RI}]))"
    )
    return Dashboard(
        "lumen-streaming",
        "Lumen / Streaming",
        "Kafka consumer lag (messages, seconds, Burrow-style status), profile freshness, throughput and the DLQ.",
        [
            (
                "Consumer lag",
                [
                    Panel(
                        "Lag (messages) by group",
                        [
                            q(
                                f"sum by (group, topic) (lumen:kafka_consumergroup_lag_messages:sum{{{E}}})",
                                "{{group}} {{topic}}",
                            )
                        ],
                    ),
                    Panel(
                        "Lag (estimated seconds) by group",
                        [
                            q(
                                f"max by (group) (lumen_kafka_consumergroup_lag_seconds{{{E}}})",
                                "{{group}}",
                            )
                        ],
                        unit="s",
                        thresholds=[(1, "yellow"), (30, "red")],
                    ),
                    Panel(
                        "Group status",
                        [
                            q(
                                f"max by (group) (lumen_kafka_consumergroup_status{{{E}}})",
                                "{{group}}",
                                instant=True,
                            )
                        ],
                        "stat",
                        mappings=[STATUS_MAPPING],
                        thresholds=[(1, "yellow"), (2, "red")],
                    ),
                ],
            ),
            (
                "Freshness",
                [
                    Panel(
                        "Events fresh within 1 s (SLO 99 %)",
                        [q(fresh, "fresh")],
                        unit="percentunit",
                        thresholds=[(0.99, "green")],
                        min=0,
                        max=1,
                    ),
                    Panel(
                        "Event-to-profile p99",
                        [q(p99("lumen_profiles_processing_lag_seconds"), "p99")],
                        unit="s",
                        thresholds=[(1, "red")],
                    ),
                    Panel(
                        "Freshness budget burn rate (1 h)",
                        [
                            q(
                                f"lumen:profiles_freshness:error_ratio_rate1h{{{E}}} / 0.01",
                                "burn rate",
                            )
                        ],
                        thresholds=[(6, "yellow"), (14.4, "red")],
                    ),
                ],
            ),
            (
                "Throughput",
                [
                    Panel(
                        "Messages/s appended by topic",
                        [
                            q(
                                f"sum by (topic) (lumen_kafka_partition_produce_rate{{{E}}})",
                                "{{topic}}",
                            )
                        ],
                        unit="ops",
                    ),
                    Panel(
                        "Profile events applied/s",
                        [
                            q(
                                f"sum (rate(lumen_profiles_events_processed_total{{{E}}}[{RI}]))",
                                "applied",
                            )
                        ],
                        unit="ops",
                    ),
                    Panel(
                        "Records per profile batch (mean)",
                        [
                            q(
                                f"sum (rate(lumen_profiles_batch_size_events_sum{{{E}}}[{RI}])) / sum (rate(lumen_profiles_batch_size_events_count{{{E}}}[{RI}]))",
                                "records/batch",
                            )
                        ],
                    ),
                ],
            ),
            (
                "Profile updater",
                [
                    Panel(
                        "Seconds since the last profile commit",
                        [
                            q(
                                f"time() - max (lumen_profiles_last_commit_timestamp_seconds{{{E}}})",
                                "since last commit",
                            )
                        ],
                        unit="s",
                        thresholds=[(30, "yellow"), (120, "red")],
                    ),
                    Panel(
                        "profiles.updated messages/s by kind",
                        [
                            q(
                                f"sum by (kind) (rate(lumen_profiles_updates_published_total{{{E}}}[{RI}]))",
                                "{{kind}}",
                            )
                        ],
                        unit="ops",
                    ),
                    Panel(
                        "Replayed records skipped/s",
                        [
                            q(
                                f"sum (rate(lumen_profiles_events_skipped_total{{{E}}}[{RI}]))",
                                "skipped",
                            )
                        ],
                        unit="ops",
                    ),
                    Panel(
                        "Retried failures/s by kind",
                        [
                            q(
                                f"sum by (kind) (rate(lumen_profiles_errors_total{{{E}}}[{RI}]))",
                                "{{kind}}",
                            )
                        ],
                        unit="ops",
                        description="MongoDB writes, profiles.updated publishes or internal errors the updater retried.",
                        thresholds=[(0.1, "red")],
                    ),
                    Panel(
                        "Partitions per worker",
                        [
                            q(
                                f"sum by (instance) (lumen_profiles_assigned_partitions{{{E}}})",
                                "{{instance}}",
                            )
                        ],
                        description="Partitions of events.raw each worker owns: the group's balance after a rebalance.",
                    ),
                    Panel(
                        "Erasures applied",
                        [
                            q(
                                f"sum (increase(lumen_profiles_erasures_total{{{E}}}[$__range]))",
                                "erasures",
                                instant=True,
                            )
                        ],
                        "stat",
                    ),
                ],
            ),
            (
                "Dead-letter queue",
                [
                    Panel(
                        "DLQ messages/s",
                        [
                            q(
                                f'sum (lumen_kafka_partition_produce_rate{{{E}, topic="events.dlq"}})',
                                "events.dlq",
                            )
                        ],
                        unit="ops",
                        thresholds=[(1, "red")],
                    ),
                    Panel(
                        "DLQ share of events",
                        [
                            q(
                                f'sum (lumen_kafka_partition_produce_rate{{{E}, topic="events.dlq"}}) / sum (lumen_kafka_partition_produce_rate{{{E}, topic="events.raw"}})',
                                "share",
                            )
                        ],
                        unit="percentunit",
                        thresholds=[(0.01, "red")],
                    ),
                    Panel(
                        "DLQ size (messages)",
                        [
                            q(
                                f'sum (lumen_kafka_partition_end_offset{{{E}, topic="events.dlq"}})',
                                "end offset",
                                instant=True,
                            )
                        ],
                        "stat",
                    ),
                ],
            ),
            (
                "Storage",
                [
                    Panel(
                        "MongoDB data size",
                        [q(f"lumen_mongodb_collection_size_bytes{{{E}}}", "{{collection}}")],
                        unit="bytes",
                    ),
                    Panel(
                        "MongoDB index size",
                        [q(f"lumen_mongodb_index_size_bytes{{{E}}}", "{{collection}}")],
                        unit="bytes",
                    ),
                    Panel(
                        "Profile batch write p99",
                        [q(p99("lumen_profiles_mongo_write_duration_seconds"), "p99")],
                        unit="s",
                        thresholds=[(0.25, "red")],
                    ),
                ],
            ),
        ],
    )


def inference() -> Dashboard:
    M = f'{E}, model=~"$model"'
    by_version = "model, version"
    return Dashboard(
        "lumen-inference",
        "Lumen / Inference",
        "Calls, latency against the 10 ms SLO and errors per gRPC method of the inference server; "
        "per model and version: load state, throughput, compute and queue time, dynamic batching.",
        [
            (
                "Calls",
                [
                    Panel(
                        "gRPC calls/s by method",
                        [
                            q(
                                f"sum by (method) (rate(lumen_inference_grpc_requests_total{{{E}}}[{RI}]))",
                                "{{method}}",
                            )
                        ],
                        unit="reqps",
                    ),
                    Panel(
                        "gRPC p99 by method (SLO 10 ms)",
                        [q(p99("lumen_inference_grpc_seconds", "method"), "{{method}}")],
                        unit="s",
                        thresholds=[(0.010, "red")],
                    ),
                    Panel(
                        "gRPC error ratio",
                        [
                            q(
                                error_ratio(
                                    "lumen_inference_grpc_requests_total",
                                    'code!="OK"',
                                    E,
                                    by="method",
                                ),
                                "{{method}}",
                            )
                        ],
                        unit="percentunit",
                        thresholds=[(0.001, "red")],
                        min=0,
                    ),
                ],
            ),
            (
                "Models",
                [
                    Panel(
                        "Model versions loaded",
                        [
                            q(
                                f"max by ({by_version}) (lumen_inference_model_loaded{{{M}}})",
                                "{{model}} v{{version}}",
                                instant=True,
                            )
                        ],
                        "stat",
                        description="1 while a version is loaded and serving; 0 once it was unloaded or replaced.",
                        mappings=[UP_MAPPING],
                        thresholds=[(1, "green")],
                    ),
                    Panel(
                        "Rows inferred/s by model version",
                        [
                            q(
                                f"sum by ({by_version}) (rate(lumen_inference_model_inferences_total{{{M}}}[{RI}]))",
                                "{{model}} v{{version}}",
                            )
                        ],
                        unit="ops",
                    ),
                    Panel(
                        "Model request failure ratio",
                        [
                            q(
                                error_ratio(
                                    "lumen_inference_model_requests_total",
                                    'outcome="failure"',
                                    M,
                                    by=by_version,
                                ),
                                "{{model}} v{{version}}",
                            )
                        ],
                        unit="percentunit",
                        thresholds=[(0.001, "red")],
                        min=0,
                    ),
                    Panel(
                        "Compute p99 by model version",
                        [
                            q(
                                p99("lumen_inference_model_compute_seconds", by_version, M),
                                "{{model}} v{{version}}",
                            )
                        ],
                        unit="s",
                        description="onnxruntime time of one execution (a whole batch).",
                        thresholds=[(0.010, "red")],
                    ),
                    Panel(
                        "Batch queue wait p99",
                        [
                            q(
                                p99("lumen_inference_model_queue_seconds", by_version, M),
                                "{{model}} v{{version}}",
                            )
                        ],
                        unit="s",
                        description="Time a request waits for its dynamic batch to run.",
                    ),
                    Panel(
                        "Average batch size",
                        [
                            q(
                                f"sum by ({by_version}) (rate(lumen_inference_model_inferences_total{{{M}}}[{RI}])) / sum by ({by_version}) (rate(lumen_inference_model_executions_total{{{M}}}[{RI}]))",
                                "{{model}} v{{version}}",
                            )
                        ],
                        description="Rows per onnxruntime execution: above 1 while dynamic batching merges requests.",
                    ),
                    Panel(
                        "Requests waiting in the batch queue",
                        [
                            q(
                                f"sum by ({by_version}) (lumen_inference_model_queue_depth{{{M}}})",
                                "{{model}} v{{version}}",
                            )
                        ],
                    ),
                ],
            ),
            (
                "Recommendations and profile store",
                [
                    Panel(
                        "Recommend answers by source",
                        [
                            q(
                                f"sum by (source) (rate(lumen_inference_recommend_responses_total{{{E}}}[{RI}]))",
                                "{{source}}",
                            )
                        ],
                        unit="reqps",
                        description="personalised, trending (no usable profile) or trending_degraded (the profile store failed).",
                    ),
                    Panel(
                        "Profile store reachable",
                        [
                            q(
                                f"min (lumen_inference_profile_store_up{{{E}}})",
                                "profile store",
                                instant=True,
                            )
                        ],
                        "stat",
                        mappings=[UP_MAPPING],
                        thresholds=[(1, "green")],
                    ),
                    Panel(
                        "Profile reads failed/s",
                        [
                            q(
                                f"sum (rate(lumen_inference_profile_store_errors_total{{{E}}}[{RI}]))",
                                "failed",
                            ),
                            q(
                                f"sum (rate(lumen_inference_profile_unreadable_total{{{E}}}[{RI}]))",
                                "undecodable",
                            ),
                        ],
                        unit="ops",
                        thresholds=[(0.1, "red")],
                        description="Reads that failed or timed out, and profiles whose item lists could not be decoded; both answer from trending.",
                    ),
                ],
            ),
            trainer_row(),
            (
                "Support routing (support.messages -> support.intents)",
                [
                    Panel(
                        "Support messages by outcome",
                        [
                            q(
                                f"sum by (outcome) (rate(lumen_inference_support_messages_total{{{E}}}[{RI}]))",
                                "{{outcome}}",
                            )
                        ],
                        unit="ops",
                        description="classified (published with a route), invalid (published with its error and the out-of-scope route) or failed (the batch failed and is read again, so a message can count more than once).",
                    ),
                ],
            ),
        ],
        variables=[("model", "Model", f"label_values(lumen_inference_model_loaded{{{E}}}, model)")],
    )


def trainer_row() -> tuple[str, list[Panel]]:
    """The recommender's retraining (services/trainer): when it last ran, how long runs take,
    what they decided, and the served version's offline quality."""
    return (
        "Trainer (recommender retraining)",
        [
            Panel(
                "Time since the last run",
                [
                    q(f"time() - max (lumen_trainer_last_run_timestamp_seconds{{{E}}})", "any run"),
                    q(
                        f"time() - max (lumen_trainer_last_success_timestamp_seconds{{{E}}})",
                        "successful run",
                    ),
                ],
                "stat",
                unit="s",
                description="A successful run ended with a decision (published, refused, skipped, forced); before the first one, the served version's creation counts. Alert: LumenTrainerNoSuccessfulRun after two intervals.",
                width=6,
            ),
            Panel(
                "Runs by outcome",
                [
                    q(
                        f"sum by (outcome) (increase(lumen_trainer_runs_total{{{E}}}[$__range]))",
                        "{{outcome}}",
                        instant=True,
                    )
                ],
                "bargauge",
                description="published and forced: a new version serves; refused: it did not beat the served one; skipped: nothing new to learn from; failed: an error or a timeout (the trainer's log says which).",
                width=6,
            ),
            Panel(
                "Run duration",
                [
                    q(
                        f"sum (increase(lumen_trainer_run_duration_seconds_sum{{{E}}}[$__range])) / sum (increase(lumen_trainer_run_duration_seconds_count{{{E}}}[$__range]))",
                        "average",
                        instant=True,
                    ),
                    q(
                        f"histogram_quantile(0.9, sum by (le) (increase(lumen_trainer_run_duration_seconds_bucket{{{E}}}[$__range])))",
                        "p90",
                        instant=True,
                    ),
                ],
                "stat",
                unit="s",
                width=6,
            ),
            Panel(
                "Training now",
                [q(f"max (lumen_trainer_running{{{E}}})", "running", instant=True)],
                "stat",
                mappings=[
                    {
                        "type": "value",
                        "options": {
                            "0": {"text": "IDLE", "color": "green", "index": 0},
                            "1": {"text": "TRAINING", "color": "blue", "index": 1},
                        },
                    }
                ],
                width=6,
            ),
            Panel(
                "Served recommender version",
                [q(f"max (lumen_trainer_served_version{{{E}}})", "version", instant=True)],
                "stat",
                width=6,
            ),
            Panel(
                "Served version's offline quality",
                [
                    q(
                        f"max by (metric) (lumen_trainer_served_quality{{{E}}})",
                        "{{metric}}",
                    )
                ],
                unit="percentunit",
                description="hr@10 and ndcg@10 of the served version on its held-out events, as the run that published it measured them (or its config.json records).",
                min=0,
                width=9,
            ),
            Panel(
                "New interactions waiting",
                [q(f"sum (lumen_trainer_new_interactions{{{E}}})", "waiting")],
                description="Interactions stored after those the last run read; a run starts at LUMEN_TRAINER_MIN_NEW_INTERACTIONS.",
                width=9,
            ),
        ],
    )


def business() -> Dashboard:
    R = "$__range"
    return Dashboard(
        "lumen-business",
        "Lumen / Business",
        "KPIs from the event stream and MongoDB: events, funnel, revenue, acquisition channels, trends, support intents, active users.",
        [
            (
                "Activity",
                [
                    Panel(
                        "Events per minute by type",
                        [
                            q(
                                f"sum by (type) (rate(lumen_business_events_total{{{E}}}[{RI}])) * 60",
                                "{{type}}",
                            )
                        ],
                        unit="short",
                    ),
                    Panel(
                        "Active users",
                        [
                            q(
                                f"max by (window) (lumen_mongodb_active_users{{{E}}})",
                                "{{window}}",
                                instant=True,
                            )
                        ],
                        "stat",
                    ),
                    Panel(
                        "Profiles and items",
                        [
                            q(
                                f'max by (collection) (lumen_mongodb_collection_documents{{{E}, collection=~"profiles|items"}})',
                                "{{collection}}",
                                instant=True,
                            )
                        ],
                        "stat",
                    ),
                ],
            ),
            (
                "Commerce",
                [
                    Panel(
                        "Funnel (view -> add to cart -> purchase)",
                        [
                            q(
                                f"sum by (step) (increase(lumen_business_funnel_events_total{{{E}}}[{R}]))",
                                "{{step}}",
                                instant=True,
                            )
                        ],
                        "bargauge",
                    ),
                    Panel(
                        "View-to-purchase conversion",
                        [
                            q(
                                f'sum (increase(lumen_business_funnel_events_total{{{E}, step="purchase"}}[{R}])) / sum (increase(lumen_business_funnel_events_total{{{E}, step="view"}}[{R}]))',
                                "conversion",
                                instant=True,
                            )
                        ],
                        "stat",
                        unit="percentunit",
                    ),
                    Panel(
                        "Revenue and refunds per hour by currency",
                        [
                            q(
                                f"sum by (currency) (rate(lumen_business_revenue_total{{{E}}}[{RI}])) * 3600",
                                "{{currency}}",
                            ),
                            q(
                                f"sum by (currency) (rate(lumen_business_refunds_total{{{E}}}[{RI}])) * 3600",
                                "{{currency}} refunded",
                            ),
                        ],
                    ),
                ],
            ),
            (
                "Acquisition channels",
                [
                    Panel(
                        "Events per minute by channel",
                        [
                            q(
                                f"sum by (channel) (rate(lumen_business_channel_events_total{{{E}}}[{RI}])) * 60",
                                "{{channel}}",
                            )
                        ],
                        description="The acquisition channel each event's own context names (UTM campaign, referrer, page; shared/attribution.py); unattributed: events without one (server-side calls).",
                    ),
                    Panel(
                        "Views and purchases by channel",
                        [
                            q(
                                f'sum by (channel, step) (increase(lumen_business_channel_funnel_events_total{{{E}, step=~"view|purchase"}}[{R}])) > 0',
                                "{{channel}} {{step}}",
                                instant=True,
                            )
                        ],
                        "bargauge",
                    ),
                    Panel(
                        "Orders by channel",
                        [
                            q(
                                f"sum by (channel) (increase(lumen_business_channel_orders_total{{{E}}}[{R}])) > 0",
                                "{{channel}}",
                                instant=True,
                            )
                        ],
                        "bargauge",
                        description="unattributed: orders sent without campaign, referrer or page context (most backends' orders); the buyer's first and last touch are on their profile.",
                    ),
                ],
            ),
            (
                "Trends and recommendations",
                [
                    Panel(
                        "Trending categories (last hour)",
                        [
                            q(
                                f"max by (category) (lumen_business_trending_category_events{{{E}}})",
                                "{{category}}",
                                instant=True,
                            )
                        ],
                        "bargauge",
                    ),
                    Panel(
                        "Orders per minute",
                        [q(f"sum (rate(lumen_business_orders_total{{{E}}}[{RI}])) * 60", "orders")],
                    ),
                    Panel(
                        "Recommendation click-through",
                        [
                            q(
                                f'sum (increase(lumen_business_recommendation_events_total{{{E}, action="click"}}[{R}])) / sum (increase(lumen_business_recommendation_events_total{{{E}, action="impression"}}[{R}]))',
                                "CTR",
                                instant=True,
                            )
                        ],
                        "stat",
                        unit="percentunit",
                    ),
                ],
            ),
            (
                "Support",
                [
                    Panel(
                        "Support intents",
                        [
                            q(
                                f"sum by (intent) (increase(lumen_business_support_intents_total{{{E}}}[{R}]))",
                                "{{intent}}",
                                instant=True,
                            )
                        ],
                        "bargauge",
                    ),
                    Panel(
                        "Out-of-scope share",
                        [
                            q(
                                f"sum (increase(lumen_business_support_out_of_scope_total{{{E}}}[{R}])) / sum (increase(lumen_business_support_intents_total{{{E}}}[{R}]))",
                                "out of scope",
                                instant=True,
                            )
                        ],
                        "stat",
                        unit="percentunit",
                        thresholds=[(0.2, "yellow"), (0.4, "red")],
                    ),
                ],
            ),
            (
                "Support assistant",
                [
                    Panel(
                        "Suggestion acceptance rate",
                        [
                            q(
                                f'sum (increase(lumen_business_support_feedback_total{{{E}, action="accept"}}[{R}])) / sum (increase(lumen_business_support_feedback_total{{{E}}}[{R}]))',
                                "accepted",
                                instant=True,
                            )
                        ],
                        "stat",
                        unit="percentunit",
                        description="Share of agents' feedback on suggested replies (support.feedback) that accepted the reply as it was; edits and rejections are the rest.",
                        width=6,
                    ),
                    Panel(
                        "Feedback by action and model version",
                        [
                            q(
                                f"sum by (action, model_version) (rate(lumen_business_support_feedback_total{{{E}}}[{RI}]))",
                                "{{action}} v{{model_version}}",
                            )
                        ],
                        unit="ops",
                        width=9,
                    ),
                    Panel(
                        "Acceptance by intent",
                        [
                            q(
                                f'sum by (intent) (increase(lumen_business_support_feedback_total{{{E}, action="accept"}}[{R}])) / sum by (intent) (increase(lumen_business_support_feedback_total{{{E}}}[{R}]))',
                                "{{intent}}",
                                instant=True,
                            )
                        ],
                        "bargauge",
                        unit="percentunit",
                        width=9,
                    ),
                    Panel(
                        "Hand-off rate",
                        [
                            q(
                                f'sum (increase(lumen_inference_assist_suggestions_total{{{E}, outcome!="answered"}}[{R}])) / sum (increase(lumen_inference_assist_suggestions_total{{{E}}}[{R}]))',
                                "handed off",
                                instant=True,
                            )
                        ],
                        "stat",
                        unit="percentunit",
                        description="Support messages the assistant handed to a human (out of scope, confidence below LUMEN_ASSIST_MIN_CONFIDENCE, or no knowledge base) among all it answered.",
                        thresholds=[(0.3, "yellow"), (0.6, "red")],
                        width=6,
                    ),
                    Panel(
                        "Answers by outcome",
                        [
                            q(
                                f"sum by (outcome) (rate(lumen_inference_assist_suggestions_total{{{E}}}[{RI}]))",
                                "{{outcome}}",
                            )
                        ],
                        unit="ops",
                        width=9,
                    ),
                    Panel(
                        "Time to first suggestion",
                        [
                            q(
                                f'histogram_quantile(0.5, sum by (le) (rate(lumen_inference_assist_time_to_suggestion_seconds_bucket{{{E}, turn="first"}}[{RI}])))',
                                "p50",
                            ),
                            q(
                                f'histogram_quantile(0.95, sum by (le) (rate(lumen_inference_assist_time_to_suggestion_seconds_bucket{{{E}, turn="first"}}[{RI}])))',
                                "p95",
                            ),
                        ],
                        unit="s",
                        description="From a conversation's first message reaching support.messages to its suggestion on support.intents.",
                        width=9,
                    ),
                ],
            ),
        ],
    )


DASHBOARDS = (overview, ingestion, streaming, inference, business)


def _thresholds(steps: list[tuple[float, str]]) -> dict[str, Any]:
    base = "green" if not steps or steps[0][1] != "green" else "red"
    return {
        "mode": "absolute",
        "steps": [{"color": base, "value": None}, *({"color": c, "value": v} for v, c in steps)],
    }


def _panel(panel: Panel, pid: int, x: int, y: int) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "unit": panel.unit,
        "thresholds": _thresholds(panel.thresholds),
        "mappings": panel.mappings,
        "color": {"mode": "palette-classic"},
    }
    if panel.kind in ("stat", "bargauge"):
        defaults["color"] = {"mode": "thresholds"}
    if panel.min is not None:
        defaults["min"] = panel.min
    if panel.max is not None:
        defaults["max"] = panel.max
    options: dict[str, Any] = {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    if panel.kind in ("stat", "bargauge"):
        options = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "orientation": "horizontal",
        }
    return {
        "id": pid,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DS,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": DS,
                "expr": query.expr,
                "legendFormat": query.legend or "__auto",
                "instant": query.instant,
                "range": not query.instant,
            }
            for i, query in enumerate(panel.queries)
        ],
    }


def _variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": DS,
        "query": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"text": "All", "value": "$__all"},
        "sort": 1,
    }


def render(dashboard: Dashboard) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    pid, y = 1, 0
    for title, row in dashboard.rows:
        panels.append(
            {
                "type": "row",
                "id": pid,
                "title": title,
                "collapsed": False,
                "panels": [],
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
            }
        )
        pid, y, x = pid + 1, y + 1, 0
        for panel in row:
            if x + panel.width > 24:
                x, y = 0, y + panel.height
            panels.append(_panel(panel, pid, x, y))
            pid, x = pid + 1, x + panel.width
        y += max(p.height for p in row)
    variables = [
        {
            "type": "datasource",
            "name": "datasource",
            "label": "Data source",
            "query": "prometheus",
            "current": {"text": "Prometheus", "value": "prometheus"},
        },
        _variable("env", "Environment", "label_values(up, env)"),
    ]
    if dashboard.service_variable:
        variables.append(_variable("service", "Service", 'label_values(up{env=~"$env"}, service)'))
    variables += [_variable(name, label, query) for name, label, query in dashboard.variables]
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": dashboard.tags,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "timezone": "browser",
        "time": {"from": "now-1h", "to": "now"},
        "annotations": {"list": []},
        "templating": {"list": variables},
        "links": [
            {
                "title": "Lumen",
                "type": "dashboards",
                "tags": ["lumen"],
                "asDropdown": True,
                "icon": "external link",
                "includeVars": True,
                "keepTime": True,
                "targetBlank": False,
                "tooltip": "",
                "url": "",
            }
        ],
        "panels": panels,
    }


def rendered() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    out = {}
    for make in DASHBOARDS:
        dashboard = make()
        out[f"{dashboard.uid}.json"] = json.dumps(render(dashboard), indent=2) + "\n"
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the JSON files are stale")
    args = parser.parse_args()
    stale = []
    for name, text in rendered().items():
        path = OUT / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(
            f"stale dashboards (run python -m monitoring.dashboards.build): {stale}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
