"""Jaeger v2 (the trace store) as a plain process on 127.0.0.1, keeping traces in memory.

The binary is built once from the Go module proxy by ``scripts/tools/jaeger.sh`` into
``var/tools/bin`` (``scripts/bootstrap.sh`` runs it). Its configuration is written at start
from ``JaegerConfig``: OTLP receivers (gRPC and HTTP) the services export to, the query UI and
API, and in-memory storage bounded to ``max_traces`` traces. The collector's own telemetry is
off and its queries are not traced, so no port but the four configured ones is opened and it
sends nothing anywhere. Tests start their own on other ports.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lumen_cli.platform import paths, processes
from lumen_cli.platform.processes import PlatformError

COMPONENT = "jaeger"
BUILD_SCRIPT = paths.REPO_ROOT / "scripts" / "tools" / "jaeger.sh"
BINARY = paths.REPO_ROOT / "var" / "tools" / "bin" / "jaeger"
# PyYAML (installed with the dev tools `make up` syncs) ships no type stubs: typed as Any.
yaml: Any = importlib.import_module("yaml")


@dataclass(frozen=True)
class JaegerConfig:
    host: str = "127.0.0.1"
    otlp_grpc_port: int = 4317
    otlp_http_port: int = 4318
    query_port: int = 16686
    query_grpc_port: int = 16685
    max_traces: int = 50_000

    @classmethod
    def from_env(cls) -> JaegerConfig:
        env = os.environ
        return cls(
            otlp_grpc_port=int(env.get("LUMEN_LOCAL_JAEGER_OTLP_GRPC_PORT", "4317")),
            otlp_http_port=int(env.get("LUMEN_LOCAL_JAEGER_OTLP_HTTP_PORT", "4318")),
            query_port=int(env.get("LUMEN_LOCAL_JAEGER_QUERY_PORT", "16686")),
            query_grpc_port=int(env.get("LUMEN_LOCAL_JAEGER_QUERY_GRPC_PORT", "16685")),
            max_traces=int(env.get("LUMEN_LOCAL_JAEGER_MAX_TRACES", "50000")),
        )

    @property
    def otlp_endpoint(self) -> str:
        """What services put in OTEL_EXPORTER_OTLP_ENDPOINT (OTLP over gRPC, plaintext)."""
        return f"http://{self.host}:{self.otlp_grpc_port}"

    @property
    def query_url(self) -> str:
        """The UI and its HTTP API (``/api/traces``, ``/api/v3/...``)."""
        return f"http://{self.host}:{self.query_port}"

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.otlp_grpc_port, self.otlp_http_port, self.query_port, self.query_grpc_port)


def render_config(config: JaegerConfig) -> str:
    """Jaeger v2's (OpenTelemetry Collector) YAML for this config."""
    listen = config.host
    document = {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["batch"],
                    "exporters": ["jaeger_storage_exporter"],
                }
            },
            # No metrics endpoint of its own (it would take port 8888 on every instance).
            "telemetry": {"metrics": {"level": "none"}, "logs": {"level": "warn"}},
        },
        "extensions": {
            "jaeger_storage": {
                "backends": {"lumen_memory": {"memory": {"max_traces": config.max_traces}}}
            },
            "jaeger_query": {
                "storage": {"traces": "lumen_memory"},
                "http": {"endpoint": f"{listen}:{config.query_port}"},
                "grpc": {"endpoint": f"{listen}:{config.query_grpc_port}"},
                # Jaeger would trace its own queries to localhost:4317 (itself, or nobody).
                "enable_tracing": False,
            },
        },
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": f"{listen}:{config.otlp_grpc_port}"},
                    "http": {"endpoint": f"{listen}:{config.otlp_http_port}"},
                }
            }
        },
        "processors": {"batch": {}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": "lumen_memory"}},
    }
    return str(yaml.safe_dump(document, sort_keys=False))


def ensure_binary() -> Path:
    """The Jaeger binary, built by scripts/tools/jaeger.sh when missing (several minutes once)."""
    if BINARY.exists():
        return BINARY
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0 or not BINARY.exists():
        raise PlatformError(
            "could not build Jaeger (scripts/tools/jaeger.sh needs Go 1.24 or newer on PATH and "
            f"the Go module proxy):\n{result.stderr[-2000:]}"
        )
    return BINARY


def ready(query_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{query_url}/api/services", timeout=1.0) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def start_process(
    config: JaegerConfig, data: Path, component: str = COMPONENT, timeout: float = 60.0
) -> int:
    """Write the config into ``data`` and start Jaeger; return its PID once the API answers."""
    for port in config.ports:
        processes.require_port_free(component, config.host, port)
    binary = ensure_binary()
    config_path = data / "jaeger.yaml"
    config_path.write_text(render_config(config))
    pid = processes.spawn(component, [str(binary), f"--config={config_path}"])
    processes.wait_until(
        f"Jaeger on {config.query_url}", lambda: ready(config.query_url), timeout, component, pid
    )
    return pid


def start(config: JaegerConfig | None = None) -> JaegerConfig:
    """Start Jaeger for the local platform unless it runs already; return its config."""
    config = config or JaegerConfig.from_env()
    if processes.read_pid(COMPONENT) is None:
        start_process(config, paths.data_dir(COMPONENT))
    return config


def stop() -> bool:
    return processes.stop(COMPONENT, grace_seconds=10)


# --- the query API --------------------------------------------------------------------------


class JaegerQueryError(RuntimeError):
    """Jaeger's API could not be reached or refused the query."""


def get_json(url: str, timeout: float = 5.0) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read())
    except OSError as error:
        raise JaegerQueryError(
            f"Jaeger at {url.split('/api/')[0]} did not answer: {error}"
        ) from None


def services(query_url: str) -> list[str]:
    """Services that have reported spans."""
    return sorted(get_json(f"{query_url}/api/services").get("data") or [])


def find_traces(
    query_url: str,
    service: str,
    tags: dict[str, str] | None = None,
    lookback_seconds: float = 3600.0,
    limit: int = 20,
) -> list[dict[str, Any]]:
    """Traces with a span of ``service`` carrying every ``tags`` attribute, newest first
    (``GET /api/traces``: each trace with its spans and processes, as Jaeger's UI reads them)."""
    import time
    import urllib.parse

    end = int(time.time() * 1_000_000)
    query = {
        "service": service,
        "start": str(end - int(lookback_seconds * 1_000_000)),
        "end": str(end),
        "limit": str(limit),
    }
    if tags:
        query["tags"] = json.dumps(tags)
    url = f"{query_url}/api/traces?{urllib.parse.urlencode(query)}"
    return list(get_json(url).get("data") or [])
