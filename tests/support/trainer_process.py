"""The trainer as a real process on a test stack, and its figures read from /metrics."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from lumen_cli.platform.services import http_ok
from tests.support.stack import ServiceProcess, Stack, free_port, start_service


def start_trainer(
    stack: Stack, registry: Path, database: str, name: str = "trainer", **settings: str
) -> ServiceProcess:
    """``python -m services.trainer`` on ``registry`` and ``database``; ``settings`` are
    LUMEN_TRAINER_* variables without the prefix (min_new_interactions="100")."""
    port = free_port()
    env = {
        **stack.env(),
        "LUMEN_MONGO_DATABASE": database,
        "LUMEN_MODEL_REPOSITORY": str(registry),
        "LUMEN_RUNS_DIR": str(registry.parent / f"runs-{registry.name}"),
        "LUMEN_TRAINER_PORT": str(port),
        "LUMEN_TRAINER_CHECK_SECONDS": "1",
        "LUMEN_TRAINER_INTERVAL_SECONDS": "0",
        **{f"LUMEN_TRAINER_{key.upper()}": value for key, value in settings.items()},
    }
    return start_service(
        name,
        "services.trainer",
        env,
        ready=lambda: http_ok(f"http://127.0.0.1:{port}/healthz"),
        ports={"web": port},
    )


def trainer_metrics(
    trainer: ServiceProcess,
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every lumen_trainer_* sample: (name, sorted labels) -> value."""
    url = f"http://127.0.0.1:{trainer.ports['web']}/metrics"
    with urllib.request.urlopen(url, timeout=5) as reply:
        text = reply.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("lumen_trainer_")
    }


def runs(trainer: ServiceProcess, outcome: str) -> float:
    return trainer_metrics(trainer).get(("lumen_trainer_runs_total", (("outcome", outcome),)), 0.0)


def health(trainer: ServiceProcess) -> dict[str, Any]:
    url = f"http://127.0.0.1:{trainer.ports['web']}/healthz"
    with urllib.request.urlopen(url, timeout=5) as reply:
        data = json.loads(reply.read())
    assert isinstance(data, dict)
    return data
