"""Prometheus conventions shared by every service.

All metrics are prefixed ``lumen_``, use base units (``_seconds``, ``_bytes``) and counters end
in ``_total``. Every process exports ``lumen_build_info`` so dashboards can show versions.
"""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import REGISTRY, CollectorRegistry, Gauge, start_http_server

# Latency buckets (seconds) that bracket Lumen's SLOs: 10 ms inference, 25 ms ingest, 1 s freshness.
# Laid out by hand (fmt: skip): two rows by magnitude read better than one value per line.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.075,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
# Freshness and lag buckets (seconds): from sub-second to minutes.
FRESHNESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)


def lumen_version() -> str:
    try:
        return version("lumen")
    except PackageNotFoundError:
        return "0.0.0+unknown"


def register_build_info(service: str, registry: CollectorRegistry = REGISTRY) -> None:
    """Export ``lumen_build_info{service,version,python} 1``."""
    gauge = Gauge(
        "lumen_build_info",
        "Lumen build information; always 1.",
        ["service", "version", "python"],
        registry=registry,
    )
    gauge.labels(service, lumen_version(), platform.python_version()).set(1)


def serve_metrics(host: str, port: int, registry: CollectorRegistry = REGISTRY) -> None:
    """Serve ``/metrics`` from a background thread (for services without an HTTP app)."""
    start_http_server(port, addr=host, registry=registry)
