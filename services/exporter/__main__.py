"""Run the exporter: ``python -m services.exporter`` (metrics on LUMEN_EXPORTER_PORT, 9108).

Kafka and MongoDB are read on timers in background threads; /metrics serves the cached results,
so it keeps answering (with ``lumen_exporter_dependency_up 0``) while a dependency is down.
"""

from __future__ import annotations

import logging
import signal
import threading

from prometheus_client import REGISTRY

from services.exporter.business import BusinessFigures
from services.exporter.business_consumer import BusinessConsumer
from services.exporter.collector import ExporterCollector
from services.exporter.kafka_source import KafkaSource
from services.exporter.mongo_source import MongoSource
from services.exporter.polling import Poller
from services.exporter.settings import ExporterSettings
from shared.currency import Rates
from shared.logging import configure_logging
from shared.metrics import register_build_info, serve_metrics
from shared.mongo import database, mongo_client
from shared.tracing import configure_tracing, shutdown_tracing

log = logging.getLogger("services.exporter")


def main() -> None:
    settings = ExporterSettings()
    configure_logging("exporter", settings.log)
    # Configured like every service. Its Kafka and MongoDB polls answer no request and are
    # not traced: a trace every poll interval would be noise.
    configure_tracing("exporter")
    register_build_info("exporter")
    kafka_source = KafkaSource(
        settings.kafka, settings.topic_pattern, settings.group_pattern, settings.lag_window
    )
    client = mongo_client(settings.mongo)
    kafka = Poller("kafka", kafka_source.read, settings.kafka_poll_seconds)
    mongo = Poller(
        "mongodb", MongoSource(database(client, settings.mongo)).read, settings.mongo_poll_seconds
    )
    figures = consumer = None
    if settings.business_enabled:
        figures = BusinessFigures(
            settings.trending_window_seconds,
            settings.trending_top,
            settings.max_label_values,
            Rates.of(settings.currency),
        )
        consumer = BusinessConsumer(settings.kafka, settings.business_group_id, figures)
    REGISTRY.register(ExporterCollector(kafka, mongo, figures))
    serve_metrics(settings.host, settings.port)
    kafka.start()
    mongo.start()
    if consumer is not None:
        consumer.start()
    log.info(
        "exporter listening", extra={"fields": {"metrics": f"{settings.host}:{settings.port}"}}
    )

    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    stopping.wait()
    log.info("stopping")
    if consumer is not None:
        consumer.stop()
    kafka.stop()
    mongo.stop()
    kafka_source.close()
    client.close()
    shutdown_tracing()
    log.info("exporter stopped")


if __name__ == "__main__":
    main()
