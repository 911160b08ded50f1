"""Lumen services started against the private platform, and where the tests' figures go."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from lumen_cli.platform.services import http_ok
from services.ingest.auth import WriteKeys
from tests.support.private_platform import VAR_DIR, PrivatePlatform
from tests.support.stack import ServiceProcess, free_port, start_service

WRITE_KEY = "reliability-write-key"
WRITE_KEYS = WriteKeys.entry("reliability", WRITE_KEY)
ADMIN_KEY = "reliability-admin-key"
RESULTS = Path(os.environ.get("LUMEN_RELIABILITY_RESULTS", VAR_DIR.parent / "results"))


def start_ingest(
    platform: PrivatePlatform, name: str = "ingest-private", **settings: str
) -> ServiceProcess:
    """Ingest on the private platform; ``settings`` are extra ``LUMEN_INGEST_*`` values."""
    http, grpc_port, metrics = free_port(), free_port(), free_port()
    env = {
        **platform.stack().env(),
        "LUMEN_INGEST_WRITE_KEYS": WRITE_KEYS,
        "LUMEN_INGEST_ADMIN_KEYS": WriteKeys.entry("reliability-ops", ADMIN_KEY),
        "LUMEN_INGEST_METRICS_PORT": str(metrics),
        "LUMEN_INGEST_HTTP_PORT": str(http),
        "LUMEN_INGEST_GRPC_PORT": str(grpc_port),
        "LUMEN_INGEST_PRODUCE_TIMEOUT_SECONDS": "3",
        "LUMEN_INGEST_KAFKA_PROBE_INTERVAL_SECONDS": "0.5",
        "LUMEN_INGEST_RETRY_AFTER_SECONDS": "1",
        **{f"LUMEN_INGEST_{k.upper()}": str(v) for k, v in settings.items()},
    }
    scheme = "https" if "tls_cert_file" in settings else "http"
    return start_service(
        name,
        "services.ingest",
        env,
        ready=lambda: http_ok(f"{scheme}://127.0.0.1:{http}/healthz")
        if scheme == "http"
        else _tls_listening(http),
        ports={"http": http, "grpc": grpc_port, "metrics": metrics},
    )


def _tls_listening(port: int) -> bool:
    from lumen_cli.platform.processes import port_open

    return port_open("127.0.0.1", port)


def wait_ready(service: ServiceProcess, timeout: float = 60.0) -> None:
    """Ingest answers /readyz 200 once its producer is connected to Kafka."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if http_ok(f"http://127.0.0.1:{service.ports['http']}/readyz"):
            return
        time.sleep(0.2)
    raise AssertionError(f"ingest not ready in {timeout} s:\n{service.log()[-2000:]}")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def record(name: str, figures: dict[str, Any]) -> None:
    """Print the figures of one test and keep them as JSON for docs/reliability.md."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(figures, indent=2, sort_keys=True, default=str)
    (RESULTS / f"{name}.json").write_text(text + "\n")
    print(f"\n== {name}\n{text}")
