"""Run the inference server: ``python -m services.inference``.

Stop order on SIGTERM: report NOT_SERVING, stop accepting calls, let in-flight calls finish
(bounded by LUMEN_INFERENCE_SHUTDOWN_GRACE_SECONDS), close clients.
"""

from __future__ import annotations

import asyncio
import logging

import grpc
from lumen.v1 import profiles_pb2, profiles_pb2_grpc

from services.inference.profile_api import ProfileService
from services.inference.settings import InferenceSettings
from shared.grpc_server import (
    DEFAULT_OPTIONS,
    HealthReporter,
    add_standard_services,
    bind,
    stop_event,
)
from shared.logging import configure_logging
from shared.metrics import register_build_info, serve_metrics
from shared.mongo import database, mongo_client

log = logging.getLogger("services.inference")

SERVICE_NAMES = (profiles_pb2.DESCRIPTOR.services_by_name["ProfileService"].full_name,)


async def serve(settings: InferenceSettings) -> None:
    client = mongo_client(settings.mongo)
    db = database(client, settings.mongo)
    server = grpc.aio.server(options=DEFAULT_OPTIONS)
    profiles_pb2_grpc.add_ProfileServiceServicer_to_server(ProfileService(db), server)
    health = HealthReporter()
    add_standard_services(server, SERVICE_NAMES, health)
    bind(server, f"{settings.host}:{settings.grpc_port}", None)
    serve_metrics(settings.host, settings.metrics_port)
    await server.start()
    await health.set(SERVICE_NAMES, serving=True)
    log.info("inference listening", extra={"fields": {
        "grpc": f"{settings.host}:{settings.grpc_port}",
        "metrics": f"{settings.host}:{settings.metrics_port}"}})  # fmt: skip
    stopping = stop_event()
    await stopping.wait()
    log.info("stopping: draining in-flight calls")
    await health.set(SERVICE_NAMES, serving=False)
    await server.stop(settings.shutdown_grace_seconds)
    client.close()
    log.info("inference stopped")


def main() -> None:
    settings = InferenceSettings()
    configure_logging("inference", settings.log)
    register_build_info("inference")
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
