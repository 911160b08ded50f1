"""Container health check for Lumen images (Docker ``HEALTHCHECK``, Compose healthchecks).

Usage::

    python healthcheck.py http PORT_ENV DEFAULT_PORT PATH   # 200 from http://127.0.0.1:PORT/PATH
    python healthcheck.py grpc PORT_ENV DEFAULT_PORT        # grpc.health.v1 says SERVING for ""

The port is read from the service's own environment variable so that a container started with
another port still checks the right one. Exit 0 when healthy, 1 otherwise (what Docker expects).
Kubernetes does not use this script: the Helm chart declares native HTTP and gRPC probes.
"""

from __future__ import annotations

import os
import sys
import urllib.request

TIMEOUT_SECONDS = 2.0


def http_ok(port: int, path: str) -> bool:
    try:
        url = f"http://127.0.0.1:{port}{path}"
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def grpc_serving(port: int) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT_SECONDS
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[0] not in ("http", "grpc"):
        print(__doc__, file=sys.stderr)
        return 2
    kind, port_env, default_port = argv[0], argv[1], argv[2]
    port = int(os.environ.get(port_env, default_port))
    if kind == "http":
        healthy = http_ok(port, argv[3] if len(argv) > 3 else "/healthz")
    else:
        healthy = grpc_serving(port)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
