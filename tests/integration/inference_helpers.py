"""Start an inference server on a registry of tiny test models (see tests/unit/inference)."""

from __future__ import annotations

import json
import re
import urllib.request
import uuid
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from lumen_cli.platform.services import grpc_serving
from tests.support.stack import TEST_VAR, ServiceProcess, Stack, free_port, start_service
from tests.unit.inference import tiny_models


def tiny_registry() -> Path:
    root = TEST_VAR / "models" / f"tiny-{uuid.uuid4().hex[:8]}"
    root.mkdir(parents=True)
    tiny_models.write_all(root)
    return root


def start_inference(
    stack: Stack,
    registry: Path,
    *,
    credentials: grpc.ChannelCredentials | None = None,
    **env: str,
) -> ServiceProcess:
    """``credentials``: how the readiness check connects when the server runs TLS."""
    grpc_port, metrics_port = free_port(), free_port()
    return start_service(
        "inference",
        "services.inference",
        {
            **stack.env(),
            "LUMEN_MODEL_REPOSITORY": str(registry),
            "LUMEN_INFERENCE_MODEL_REPOSITORY": str(registry),
            "LUMEN_INFERENCE_GRPC_PORT": str(grpc_port),
            "LUMEN_INFERENCE_METRICS_PORT": str(metrics_port),
            "LUMEN_INFERENCE_POLL_INTERVAL_SECONDS": "0.3",
            "LUMEN_INFERENCE_TRENDS_REFRESH_SECONDS": "0.5",
            "LUMEN_INFERENCE_INTRA_OP_THREADS": "1",
            # Off unless a test turns it on: a knowledge base another test loaded into the
            # session's database would otherwise add suggestions to this server's answers.
            "LUMEN_ASSIST_ENABLED": "false",
            "LUMEN_INFERENCE_SUPPORT_CONSUMER_GROUP": f"lumen-inference-test-{uuid.uuid4().hex[:6]}",
            "LUMEN_INFERENCE_SUPPORT_OFFSET_RESET": "latest",
            # The tiny item-search model ranks its own items; the session's catalogue (items
            # other tests upsert) stays out of it unless a test turns live search on.
            "LUMEN_INFERENCE_LIVE_SEARCH_ENABLED": "false",
            "LUMEN_INFERENCE_ROUTING": json.dumps(
                {
                    "balance": "accounts",
                    "refund": "payments",
                    "out_of_scope": "human-triage",
                    "default": "general-support",
                }
            ),
            **env,
        },
        ready=lambda: tls_serving(f"127.0.0.1:{grpc_port}", credentials)
        if credentials
        else grpc_serving(f"127.0.0.1:{grpc_port}"),
        ports={"grpc": grpc_port, "metrics": metrics_port},
    )


def tls_serving(target: str, credentials: grpc.ChannelCredentials) -> bool:
    """The gRPC health check over TLS (``grpc_serving`` speaks plaintext)."""
    with grpc.secure_channel(target, credentials) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=1.0
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def metric(service: ServiceProcess, name: str, **labels: str) -> float:
    """Sum of a Prometheus series' samples whose labels include ``labels``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{service.ports['metrics']}/metrics") as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}(\{{(.*)\}})? (\S+)$", line)
        if not match:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(3))
    return total
