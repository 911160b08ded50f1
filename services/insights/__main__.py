"""Run the insights service: ``python -m services.insights``.

Outside LUMEN_DEV_MODE it refuses to start without a bearer token (LUMEN_INSIGHTS_AUTH_TOKEN)
or mTLS client certificates; every call but health checks and reflection must carry the token.
Start: load the forecasting library (so the first call does not pay its import), then serve.
Stop order on SIGTERM: report NOT_SERVING, stop accepting calls and let in-flight ones finish
(bounded by LUMEN_INSIGHTS_SHUTDOWN_GRACE_SECONDS), stop the fitting threads, close MongoDB.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from lumen.v1 import insights_pb2, insights_pb2_grpc

from services.insights.core import Insights
from services.insights.forecasting import library_model
from services.insights.grpc_api import TrendService
from services.insights.settings import InsightsSettings
from shared.grpc_auth import BearerTokenInterceptor, authentication_problem, server_credentials
from shared.grpc_parsing import MalformedRequestInterceptor
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
from shared.tracing import configure_tracing, shutdown_tracing, tracing_enabled

log = logging.getLogger("services.insights")

SERVICE_NAMES = (insights_pb2.DESCRIPTOR.services_by_name["TrendService"].full_name,)


def tracing_interceptors() -> list[grpc.aio.ServerInterceptor]:
    """With tracing on: MongoDB commands traced (before the client is created, which copies
    pymongo's listeners) and the gRPC server interceptor (health checks and reflection left
    out: a probe every few seconds would each be a trace)."""
    if not tracing_enabled():
        return []
    from opentelemetry.instrumentation.grpc import aio_server_interceptor
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor

    PymongoInstrumentor().instrument()
    return [aio_server_interceptor(filter_=not_a_probe)]


def not_a_probe(call_details: Any) -> bool:
    """Whether a call is traced: all but health checks and reflection (a prefix test: the
    instrumentation's own ``filters`` run a regular expression on every call)."""
    return not str(call_details.method).startswith(("/grpc.health.", "/grpc.reflection."))


async def serve(settings: InsightsSettings) -> None:
    if settings.method != "SeasonalNaive":
        await asyncio.to_thread(library_model, settings.method, settings.season_hours)
    executor = ThreadPoolExecutor(settings.forecast_threads, thread_name_prefix="forecast")
    traced = tracing_interceptors()
    client = mongo_client(settings.mongo)
    insights = Insights(database(client, settings.mongo), settings, executor)
    interceptors: list[grpc.aio.ServerInterceptor] = [MalformedRequestInterceptor()]
    if settings.auth_token:
        interceptors.insert(0, BearerTokenInterceptor(settings.auth_token))
    interceptors[:0] = traced  # outermost: refused calls are traced too
    server = grpc.aio.server(options=DEFAULT_OPTIONS, interceptors=interceptors)
    insights_pb2_grpc.add_TrendServiceServicer_to_server(TrendService(insights), server)
    health = HealthReporter()
    add_standard_services(server, SERVICE_NAMES, health)
    credentials = server_credentials(
        settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file
    )
    bind(server, f"{settings.host}:{settings.grpc_port}", credentials)
    serve_metrics(settings.host, settings.metrics_port)
    stopping = stop_event()
    await server.start()
    await health.set(SERVICE_NAMES, serving=True)
    log.info(
        "insights listening",
        extra={
            "fields": {
                "grpc": f"{settings.host}:{settings.grpc_port}",
                "metrics": f"{settings.host}:{settings.metrics_port}",
                "method": settings.method,
            }
        },
    )
    await stopping.wait()
    log.info("stopping: finishing in-flight calls")
    await health.set(SERVICE_NAMES, serving=False)
    await server.stop(settings.shutdown_grace_seconds)
    executor.shutdown(wait=True)
    client.close()
    shutdown_tracing()
    log.info("insights stopped")


def main() -> None:
    settings = InsightsSettings()
    configure_logging("insights", settings.log)
    configure_tracing("insights")
    problem = authentication_problem(
        "LUMEN_INSIGHTS_",
        dev_mode=settings.mode.dev_mode,
        auth_token=settings.auth_token,
        tls_cert_file=settings.tls_cert_file,
        tls_key_file=settings.tls_key_file,
        tls_client_ca_file=settings.tls_client_ca_file,
    )
    if problem is not None:
        log.error("refusing to start: %s", problem, extra={"fields": {"reason": problem}})
        sys.exit(2)
    if settings.mode.dev_mode and not settings.auth_token and not settings.tls_client_ca_file:
        log.warning("development mode: serving without authentication")
    register_build_info("insights")
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
