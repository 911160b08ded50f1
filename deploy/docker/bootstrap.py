"""One-shot bootstrap of a fresh Lumen deployment: Kafka topics and MongoDB indexes.

Run by the ``bootstrap`` service of docker-compose.yml and by the Helm chart's bootstrap Job.
Services also create missing topics at start-up, but doing it once, before they start, means
their first consumer-group assignment already sees every partition. Idempotent: safe to re-run.

Reads the usual ``LUMEN_KAFKA_*`` and ``LUMEN_MONGO_*`` variables. Retries until both are
reachable or ``LUMEN_BOOTSTRAP_TIMEOUT_SECONDS`` (default 120) has passed; exit 1 then.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable

from shared.logging import configure_logging
from shared.mongo import database, ensure_indexes, mongo_client
from shared.settings import KafkaSettings, LogSettings, MongoSettings
from shared.topics import ensure_topics

log = logging.getLogger("lumen.bootstrap")


def retry(step: str, action: Callable[[], object], deadline: float) -> None:
    while True:
        try:
            action()
            log.info("bootstrap step done", extra={"fields": {"step": step}})
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{step} failed until the deadline: {exc}") from exc
            log.warning(
                "bootstrap step not ready; retrying",
                extra={"fields": {"step": step, "error": str(exc)}},
            )
            time.sleep(2)


def create_indexes(settings: MongoSettings) -> None:
    client = mongo_client(settings)
    try:
        ensure_indexes(database(client, settings))
    finally:
        client.close()


def main() -> int:
    configure_logging("bootstrap", LogSettings())
    deadline = time.monotonic() + float(os.environ.get("LUMEN_BOOTSTRAP_TIMEOUT_SECONDS", "120"))
    kafka, mongo = KafkaSettings(), MongoSettings()
    try:
        retry("kafka topics", lambda: ensure_topics(kafka), deadline)
        retry("mongodb indexes", lambda: create_indexes(mongo), deadline)
    except RuntimeError as exc:
        log.error("bootstrap failed", extra={"fields": {"error": str(exc)}})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
