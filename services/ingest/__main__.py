"""Run the ingest service: ``python -m services.ingest``.

Stop order on SIGTERM: stop accepting connections, let in-flight requests finish (bounded by
LUMEN_INGEST_SHUTDOWN_GRACE_SECONDS), then flush and close the Kafka producer.
"""

from __future__ import annotations

import asyncio
import logging

import uvicorn

from services.ingest.auth import WriteKeys
from services.ingest.core import EventIngestor
from services.ingest.http_api import HttpApi, build_app
from services.ingest.producer import EventProducer
from services.ingest.settings import IngestSettings
from shared.logging import configure_logging
from shared.metrics import register_build_info
from shared.topics import ensure_topics

log = logging.getLogger("services.ingest")


async def serve(settings: IngestSettings) -> None:
    producer = EventProducer(settings.kafka, timeout_seconds=settings.produce_timeout_seconds)
    try:
        await asyncio.to_thread(ensure_topics, settings.kafka)
        await asyncio.to_thread(producer.start)
    except Exception as exc:
        log.warning("Kafka not reachable at start-up; will retry",
                    extra={"fields": {"error": str(exc)}})  # fmt: skip
    ingestor = EventIngestor(settings, producer)
    app = build_app(HttpApi(ingestor, WriteKeys(settings.write_keys)))
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
    )
    server = uvicorn.Server(config)
    starter = asyncio.create_task(_start_producer_when_possible(settings, producer))
    log.info(
        "ingest listening", extra={"fields": {"http": f"{settings.host}:{settings.http_port}"}}
    )
    try:
        await server.serve()
    finally:
        starter.cancel()
        await asyncio.to_thread(producer.close)
        log.info("ingest stopped")


async def _start_producer_when_possible(settings: IngestSettings, producer: EventProducer) -> None:
    while not producer.started:
        await asyncio.sleep(2)
        try:
            await asyncio.to_thread(ensure_topics, settings.kafka)
            await asyncio.to_thread(producer.start)
            log.info("connected to Kafka")
        except Exception:
            continue


def main() -> None:
    settings = IngestSettings()
    configure_logging("ingest", settings.log)
    register_build_info("ingest")
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
