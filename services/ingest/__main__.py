"""Run the ingest service: ``python -m services.ingest`` (HTTP and gRPC in one process).

Stop order on SIGTERM: report not-ready, stop accepting connections, let in-flight requests
and RPCs finish (bounded by LUMEN_INGEST_SHUTDOWN_GRACE_SECONDS), then flush and close the
Kafka producer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Iterator

import grpc
import uvicorn
import uvloop
from lumen.v1 import events_pb2_grpc

from services.ingest import metrics
from services.ingest.auth import KeyRing, MissingKeys
from services.ingest.core import EventIngestor
from services.ingest.grpc_api import SERVICE_NAME, EventServicer
from services.ingest.http_api import HttpApi, build_app
from services.ingest.producer import EventProducer, WeakDurability
from services.ingest.settings import IngestSettings
from services.ingest.spans import grpc_interceptors, instrument_http
from shared.gc_tuning import tune_for_serving
from shared.grpc_auth import server_credentials
from shared.grpc_parsing import MalformedRequestInterceptor
from shared.grpc_server import DEFAULT_OPTIONS, HealthReporter, add_standard_services, bind
from shared.grpc_server import stop_event as shutdown_signal
from shared.logging import configure_logging
from shared.metrics import register_build_info, serve_metrics
from shared.topics import EVENTS_DLQ, EVENTS_RAW, ensure_topics
from shared.tracing import configure_tracing, shutdown_tracing

log = logging.getLogger("services.ingest")


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: this process orders the shutdown itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _connect(settings: IngestSettings, producer: EventProducer) -> None:
    await asyncio.to_thread(ensure_topics, settings.kafka)
    await producer.start(warm_topics=(EVENTS_RAW.name, EVENTS_DLQ.name))


async def _connect_when_possible(settings: IngestSettings, producer: EventProducer) -> None:
    while not producer.started:
        try:
            await _connect(settings, producer)
            log.info("connected to Kafka")
        except WeakDurability:
            raise  # a configuration error: retrying cannot fix it
        except Exception as exc:
            log.warning("Kafka not reachable yet; retrying", extra={"fields": {"error": str(exc)}})
            await asyncio.sleep(2)


def _grpc_server(
    settings: IngestSettings, servicer: EventServicer, health: HealthReporter
) -> grpc.aio.Server:
    options = [
        *(o for o in DEFAULT_OPTIONS if o[0] != "grpc.max_receive_message_length"),
        # The same 500 KB body limit as HTTP: larger messages get RESOURCE_EXHAUSTED from gRPC.
        ("grpc.max_receive_message_length", settings.max_request_bytes),
    ]
    interceptors = [*grpc_interceptors(), MalformedRequestInterceptor()]
    server = grpc.aio.server(options=options, interceptors=interceptors)
    events_pb2_grpc.add_EventServiceServicer_to_server(servicer, server)
    add_standard_services(server, [SERVICE_NAME], health)
    credentials = server_credentials(settings.tls_cert_file, settings.tls_key_file)
    bind(server, f"{settings.host}:{settings.grpc_port}", credentials)
    return server


async def serve(settings: IngestSettings, keys: KeyRing) -> None:
    stopping = shutdown_signal()
    producer = EventProducer(settings.kafka, timeout_seconds=settings.produce_timeout_seconds)
    ingestor = EventIngestor(settings, producer)
    for source in keys.sources():  # a 0 series per source before its first refusal
        metrics.RATE_LIMITED.labels(source)
    # Apart from the public port, so that a deployment can keep it internal.
    serve_metrics(settings.host, settings.metrics_port)
    health = HealthReporter()
    await health.set([SERVICE_NAME], False)

    grpc_server = _grpc_server(settings, EventServicer(ingestor, keys), health)
    await grpc_server.start()
    http = _Server(
        uvicorn.Config(
            instrument_http(build_app(HttpApi(ingestor, keys))),
            host=settings.host,
            port=settings.http_port,
            log_config=None,
            access_log=False,
            loop="none",
            http="httptools",
            ssl_certfile=settings.tls_cert_file,
            ssl_keyfile=settings.tls_key_file,
            timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        )
    )
    http_task = asyncio.create_task(http.serve())
    connector = asyncio.create_task(_connect_when_possible(settings, producer))

    async def kafka_changed(up: bool) -> None:
        metrics.KAFKA_UP.set(1 if up else 0)
        await health.set([SERVICE_NAME], up)

    monitor = asyncio.create_task(
        producer.monitor(settings.kafka_probe_interval_seconds, kafka_changed)
    )
    # Everything loaded so far lives as long as the process: keep it out of GC pauses.
    tune_for_serving(settings.gc.gen0_threshold)
    log.info(
        "ingest listening",
        extra={
            "fields": {
                "http": f"{settings.host}:{settings.http_port}",
                "grpc": f"{settings.host}:{settings.grpc_port}",
                "metrics": f"{settings.host}:{settings.metrics_port}",
            }
        },
    )

    # A producer that cannot be durable ends the process (after the usual drain).
    def stop_if_failed(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            stopping.set()

    connector.add_done_callback(stop_if_failed)
    stopped = asyncio.create_task(stopping.wait())
    await asyncio.wait({stopped, http_task}, return_when=asyncio.FIRST_COMPLETED)
    weak = connector.done() and not connector.cancelled() and connector.exception()

    log.info("draining")
    await health.set([SERVICE_NAME], False)
    http.should_exit = True
    await asyncio.gather(
        http_task, grpc_server.stop(settings.shutdown_grace_seconds), return_exceptions=True
    )
    await ingestor.drain()
    for task in (connector, monitor, stopped):
        task.cancel()
    await producer.close()
    log.info("ingest stopped")
    if weak:
        raise weak


def main() -> None:
    settings = IngestSettings()
    configure_logging("ingest", settings.log)
    configure_tracing("ingest")
    try:
        keys = KeyRing.from_settings(settings)
    except (MissingKeys, ValueError) as refused:
        log.error("ingest refuses to start: %s", refused)
        sys.exit(2)
    if settings.mode.dev_mode:
        log.warning(
            "development mode: keys not configured fall back to the documented "
            "development keys; never run it so in production"
        )
    register_build_info("ingest")
    try:
        uvloop.run(serve(settings, keys))
    except WeakDurability as refused:
        log.error("ingest refuses to run: %s", refused)
        sys.exit(2)
    finally:
        shutdown_tracing()  # the last spans are exported before the process ends


if __name__ == "__main__":
    main()
