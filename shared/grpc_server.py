"""Building blocks every Lumen gRPC server uses: health checking, reflection, graceful stop."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

log = logging.getLogger(__name__)

# Generous limits so a batch of texts fits; larger messages are rejected by gRPC itself.
DEFAULT_OPTIONS = (
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ("grpc.max_send_message_length", 16 * 1024 * 1024),
    ("grpc.so_reuseport", 0),
)


class HealthReporter:
    """Owns the standard grpc.health.v1 service; per-service status follows readiness."""

    def __init__(self) -> None:
        self.servicer = health.aio.HealthServicer()

    async def set(self, service_names: Iterable[str], serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *service_names):
            await self.servicer.set(name, status)


def add_standard_services(
    server: grpc.aio.Server, service_full_names: Iterable[str], health_reporter: HealthReporter
) -> None:
    """Register health checking and reflection for the given services."""
    health_pb2_grpc.add_HealthServicer_to_server(health_reporter.servicer, server)
    names = [
        *service_full_names,
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        reflection.SERVICE_NAME,
    ]
    reflection.enable_server_reflection(names, server)


def bind(server: grpc.aio.Server, address: str, credentials: grpc.ServerCredentials | None) -> int:
    """Bind the address (TLS when credentials are given); a taken port fails loudly."""
    port = (
        server.add_secure_port(address, credentials)
        if credentials is not None
        else server.add_insecure_port(address)
    )
    if port == 0:
        raise OSError(f"cannot listen on {address}: the port is taken or the address is invalid")
    return port


def stop_event() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT; the caller then runs its ordered shutdown."""
    loop = asyncio.get_running_loop()
    event = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, event.set)
    return event
