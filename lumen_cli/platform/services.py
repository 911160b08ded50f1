"""Lumen's own services as local background processes, each started on its own."""

from __future__ import annotations

import os
import sys
import urllib.request
from dataclasses import dataclass, field

from lumen_cli.platform import paths, processes
from lumen_cli.platform.processes import PlatformError


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    # What people connect to, shown by `lumen status`.
    addresses: dict[str, str]
    # A URL that answers 200 when the service is up, or a gRPC target to health-check.
    health_url: str | None = None
    grpc_target: str | None = None
    env: dict[str, str] = field(default_factory=dict)


def default_services() -> list[ServiceSpec]:
    env = os.environ
    ingest_http = env.get("LUMEN_INGEST_HTTP_PORT", "8080")
    ingest_grpc = env.get("LUMEN_INGEST_GRPC_PORT", "50051")
    ingest_metrics = env.get("LUMEN_INGEST_METRICS_PORT", "9101")
    profiles_web = env.get("LUMEN_PROFILES_WEB_PORT", "6066")
    inference_grpc = env.get("LUMEN_INFERENCE_GRPC_PORT", "50052")
    inference_metrics = env.get("LUMEN_INFERENCE_METRICS_PORT", "9102")
    exporter_metrics = env.get("LUMEN_EXPORTER_PORT", "9108")
    insights_grpc = env.get("LUMEN_INSIGHTS_GRPC_PORT", "50053")
    insights_metrics = env.get("LUMEN_INSIGHTS_METRICS_PORT", "9103")
    trainer_web = env.get("LUMEN_TRAINER_PORT", "9104")
    return [
        ServiceSpec(
            "ingest",
            "services.ingest",
            {
                "http": f"http://127.0.0.1:{ingest_http}",
                "grpc": f"127.0.0.1:{ingest_grpc}",
                "metrics": f"http://127.0.0.1:{ingest_metrics}/metrics",
            },
            health_url=f"http://127.0.0.1:{ingest_http}/healthz",
        ),
        ServiceSpec(
            "profiles",
            "services.profiles",
            {
                "web": f"http://127.0.0.1:{profiles_web}",
                "metrics": f"http://127.0.0.1:{profiles_web}/metrics",
            },
            health_url=f"http://127.0.0.1:{profiles_web}/healthz",
        ),
        ServiceSpec(
            "inference",
            "services.inference",
            {
                "grpc": f"127.0.0.1:{inference_grpc}",
                "metrics": f"http://127.0.0.1:{inference_metrics}/metrics",
            },
            grpc_target=f"127.0.0.1:{inference_grpc}",
        ),
        ServiceSpec(
            "exporter",
            "services.exporter",
            {"metrics": f"http://127.0.0.1:{exporter_metrics}/metrics"},
            health_url=f"http://127.0.0.1:{exporter_metrics}/metrics",
        ),
        ServiceSpec(
            "insights",
            "services.insights",
            {
                "grpc": f"127.0.0.1:{insights_grpc}",
                "metrics": f"http://127.0.0.1:{insights_metrics}/metrics",
            },
            grpc_target=f"127.0.0.1:{insights_grpc}",
        ),
        # Retrains the recommender from the interaction store into the registry inference
        # watches (LUMEN_MODEL_REPOSITORY, default var/models).
        ServiceSpec(
            "trainer",
            "services.trainer",
            {"metrics": f"http://127.0.0.1:{trainer_web}/metrics"},
            health_url=f"http://127.0.0.1:{trainer_web}/healthz",
        ),
    ]


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def grpc_serving(target: str, timeout: float = 1.0) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def healthy(spec: ServiceSpec) -> bool:
    if spec.health_url:
        return http_ok(spec.health_url)
    if spec.grpc_target:
        return grpc_serving(spec.grpc_target)
    return processes.read_pid(spec.name) is not None


def start(spec: ServiceSpec, extra_env: dict[str, str], timeout: float = 90.0) -> None:
    if processes.read_pid(spec.name) is not None:
        return
    pid = processes.spawn(
        spec.name,
        [sys.executable, "-m", spec.module],
        env={**extra_env, **spec.env},
        cwd=paths.REPO_ROOT,
    )
    try:
        processes.wait_until(spec.name, lambda: healthy(spec), timeout, spec.name, pid)
    except PlatformError:
        processes.stop(spec.name, grace_seconds=5)
        raise


def stop(spec: ServiceSpec) -> bool:
    return processes.stop(spec.name, grace_seconds=30)
