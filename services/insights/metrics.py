"""Prometheus metrics of the insights service (conventions in shared/metrics.py)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from shared.metrics import LATENCY_BUCKETS

GRPC_REQUESTS = Counter(
    "lumen_insights_grpc_requests_total",
    "TrendService calls by method and status code.",
    ["method", "code"],
)
GRPC_SECONDS = Histogram(
    "lumen_insights_grpc_request_seconds",
    "TrendService call latency by method.",
    ["method"],
    buckets=LATENCY_BUCKETS,
)
FORECASTS = Counter(
    "lumen_insights_forecasts_total",
    "Forecasts answered, by the method that produced them (a fallback counts as its method).",
    ["method"],
)
