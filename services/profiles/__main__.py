"""Run the profile updater: ``python -m services.profiles`` (a Faust worker)."""

from __future__ import annotations

import sys
from pathlib import Path

from services.profiles.app import create_app
from services.profiles.settings import ProfilesSettings
from services.profiles.store import ensure_schema
from shared.gc_tuning import tune_for_serving
from shared.logging import configure_logging
from shared.metrics import register_build_info
from shared.mongo import database, mongo_client
from shared.topics import ensure_topics
from shared.tracing import configure_tracing, tracing_enabled

FAUST_LOG_LEVELS = {"DEBUG": "debug", "INFO": "info", "WARNING": "warn", "ERROR": "error"}


def instrument_mongo() -> None:
    """pymongo's command spans for the clients made from now on (the batch writer's), only
    when tracing is on: the listener costs a callback per command even when nothing samples."""
    if not tracing_enabled():
        return
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor

    PymongoInstrumentor().instrument()


def main() -> None:
    settings = ProfilesSettings()
    worker = create_app(settings)
    configure_logging("profiles", settings.log)
    configure_tracing("profiles")
    register_build_info("profiles")
    ensure_topics(settings.kafka)
    Path(settings.data_dir).parent.mkdir(parents=True, exist_ok=True)  # Faust makes one level
    client = mongo_client(settings.mongo)
    ensure_schema(database(client, settings.mongo), settings.interactions.retention_days)
    client.close()
    instrument_mongo()
    # Faust parses its own command line; run it as a worker whatever we were called with.
    sys.argv = [sys.argv[0], "worker", "--loglevel", FAUST_LOG_LEVELS[settings.log.level]]
    # Everything loaded so far lives as long as the process: keep it out of GC pauses.
    tune_for_serving(settings.gc.gen0_threshold)
    worker.app.main()


if __name__ == "__main__":
    main()
