"""Run the profile updater: ``python -m services.profiles`` (a Faust worker)."""

from __future__ import annotations

import sys
from pathlib import Path

from shared.gc_tuning import tune_for_serving
from shared.logging import configure_logging
from shared.metrics import register_build_info
from shared.topics import ensure_topics


def main() -> None:
    from services.profiles import agents, web  # noqa: F401 - registers the agent and pages
    from services.profiles.app import app, settings
    from services.profiles.store import ensure_schema
    from shared.mongo import database, mongo_client

    configure_logging("profiles", settings.log)
    register_build_info("profiles")
    ensure_topics(settings.kafka)
    Path(settings.data_dir).parent.mkdir(parents=True, exist_ok=True)  # Faust makes one level
    client = mongo_client(settings.mongo)
    ensure_schema(database(client, settings.mongo))
    client.close()
    level = {"DEBUG": "debug", "INFO": "info", "WARNING": "warn", "ERROR": "error"}[
        settings.log.level
    ]
    # Faust parses its own command line; run it as a worker whatever we were called with.
    sys.argv = [sys.argv[0], "worker", "--loglevel", level]
    # Everything loaded so far lives as long as the process: keep it out of GC pauses.
    tune_for_serving(settings.gc.gen0_threshold)
    app.main()


if __name__ == "__main__":
    main()
