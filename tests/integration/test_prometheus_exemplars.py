"""The local platform's Prometheus keeps exemplars: a histogram observed through
shared.tracing inside a sampled span is scraped (OpenMetrics) and its trace id can be queried
back, which is what links a slow latency bucket to its trace in Grafana."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import format_trace_id
from prometheus_client import CollectorRegistry, Histogram, start_http_server

from lumen_cli.platform import processes
from lumen_cli.platform import prometheus as prom
from shared import tracing
from tests.support.stack import free_port, wait_for

METRIC = f"lumen_exemplar_probe_{uuid.uuid4().hex[:8]}_seconds"


@pytest.fixture(scope="module")
def target() -> Iterator[tuple[str, str]]:
    """A /metrics endpoint with one observation carrying a sampled span's trace id."""
    registry = CollectorRegistry()
    histogram = Histogram(METRIC, "probe", registry=registry, buckets=(0.1, 1.0))
    with TracerProvider().get_tracer("probe").start_as_current_span("request") as span:
        tracing.observe_with_exemplar(histogram, 0.5)
        trace_id = format_trace_id(span.get_span_context().trace_id)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield f"127.0.0.1:{port}", trace_id
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def prometheus_url(
    tmp_path_factory: pytest.TempPathFactory, target: tuple[str, str]
) -> Iterator[str]:
    port = free_port()
    component = f"prometheus-exemplars-{uuid.uuid4().hex[:6]}"
    data: Path = tmp_path_factory.mktemp("prometheus-exemplars")
    # Any job of the project's config will do: it only has to scrape the probe.
    config = prom.render_config({"ingest": target[0]}, env_label="test", scrape_interval="1s")
    prom.start_process(config, data, "127.0.0.1", port, component, retention="1h")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        processes.stop(component, grace_seconds=10)


def _exemplars(url: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"query": f"{METRIC}_bucket", "start": "0", "end": "9999999999"})
    with urllib.request.urlopen(f"{url}/api/v1/query_exemplars?{query}", timeout=5) as response:
        answer = json.load(response)
    assert answer["status"] == "success", answer
    return [e for series in answer["data"] for e in series["exemplars"]]


def test_the_trace_id_of_an_observation_is_stored(
    prometheus_url: str, target: tuple[str, str]
) -> None:
    found = wait_for(lambda: _exemplars(prometheus_url), timeout=30, interval=0.5)
    assert isinstance(found, list)
    assert [e["labels"] for e in found] == [{"trace_id": target[1]}]
    assert float(found[0]["value"]) == 0.5
