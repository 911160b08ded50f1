"""Prometheus (Debian package ``prometheus``) as a plain process on 127.0.0.1.

The project's config (``monitoring/prometheus/prometheus.yml``) is the template: at start the
targets are set to the ports the services really use (the LUMEN_*_PORT variables), the rule
files are referenced by absolute path, and the result is written under ``var/data/prometheus``.
Tests render their own copy with the same function.
"""

from __future__ import annotations

import importlib
import os
import shutil
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lumen_cli.platform import paths, processes
from lumen_cli.platform.processes import PlatformError

COMPONENT = "prometheus"
MONITORING = paths.REPO_ROOT / "monitoring" / "prometheus"
CONFIG_TEMPLATE = MONITORING / "prometheus.yml"
RULES_DIR = MONITORING / "rules"
# PyYAML (installed with the dev tools `make up` syncs) ships no type stubs: typed as Any.
yaml: Any = importlib.import_module("yaml")


@dataclass(frozen=True)
class PrometheusConfig:
    host: str = "127.0.0.1"
    port: int = 9090
    retention: str = "7d"

    @classmethod
    def from_env(cls) -> PrometheusConfig:
        return cls(
            port=int(os.environ.get("LUMEN_LOCAL_PROMETHEUS_PORT", "9090")),
            retention=os.environ.get("LUMEN_LOCAL_PROMETHEUS_RETENTION", "7d"),
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def local_targets(prometheus_port: int) -> dict[str, str]:
    """job -> host:port of each scrape target, from the same variables the services read."""
    env = os.environ
    return {
        "ingest": f"127.0.0.1:{env.get('LUMEN_INGEST_METRICS_PORT', '9101')}",
        "profiles": f"127.0.0.1:{env.get('LUMEN_PROFILES_WEB_PORT', '6066')}",
        "inference": f"127.0.0.1:{env.get('LUMEN_INFERENCE_METRICS_PORT', '9102')}",
        "exporter": f"127.0.0.1:{env.get('LUMEN_EXPORTER_PORT', '9108')}",
        "insights": f"127.0.0.1:{env.get('LUMEN_INSIGHTS_METRICS_PORT', '9103')}",
        "trainer": f"127.0.0.1:{env.get('LUMEN_TRAINER_PORT', '9104')}",
        "prometheus": f"127.0.0.1:{prometheus_port}",
    }


def render_config(
    targets: Mapping[str, str],
    env_label: str = "local",
    scrape_interval: str | None = None,
    rules_dir: Path = RULES_DIR,
) -> str:
    """The project's config with these targets (jobs not named are dropped) and absolute rules."""
    config: dict[str, Any] = yaml.safe_load(CONFIG_TEMPLATE.read_text())
    if scrape_interval:
        config["global"]["scrape_interval"] = scrape_interval
        config["global"]["evaluation_interval"] = scrape_interval
    config["rule_files"] = [str(rules_dir.resolve() / "*.yml")]
    jobs = []
    for job in config["scrape_configs"]:
        if job["job_name"] in targets:
            job["static_configs"] = [
                {
                    "targets": [targets[job["job_name"]]],
                    "labels": {"env": env_label, "service": job["job_name"]},
                }
            ]
            jobs.append(job)
    config["scrape_configs"] = jobs
    return yaml.safe_dump(config, sort_keys=False)


def binary() -> str:
    found = shutil.which("prometheus")
    if not found:
        raise PlatformError(
            "prometheus was not found. Install the Debian/Ubuntu package: "
            "apt-get install prometheus (scripts/bootstrap.sh does it when run as root)."
        )
    return found


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1.0) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def start_process(
    config_text: str,
    data: Path,
    host: str,
    port: int,
    component: str,
    retention: str = "7d",
    timeout: float = 60.0,
) -> int:
    """Write the config into ``data`` and start Prometheus on host:port; return its PID."""
    processes.require_port_free(component, host, port)
    config_path = data / "prometheus.yml"
    config_path.write_text(config_text)
    pid = processes.spawn(
        component,
        [
            binary(),
            f"--config.file={config_path}",
            f"--storage.tsdb.path={data / 'tsdb'}",
            f"--storage.tsdb.retention.time={retention}",
            f"--web.listen-address={host}:{port}",
            "--web.enable-lifecycle",
            # Exemplars (trace ids on latency histograms) link a slow bucket to its trace.
            "--enable-feature=exemplar-storage",
        ],
    )
    url = f"http://{host}:{port}"
    processes.wait_until(f"Prometheus on {url}", lambda: ready(url), timeout, component, pid)
    return pid


def start(config: PrometheusConfig | None = None) -> str:
    """Start Prometheus for the local platform unless it runs already; return its URL."""
    config = config or PrometheusConfig.from_env()
    if processes.read_pid(COMPONENT) is None:
        text = render_config(local_targets(config.port))
        start_process(
            text, paths.data_dir(COMPONENT), config.host, config.port, COMPONENT, config.retention
        )
    return config.url


def stop() -> bool:
    return processes.stop(COMPONENT, grace_seconds=30)
