"""Run the trainer: ``python -m services.trainer`` (/metrics and /healthz on
LUMEN_TRAINER_PORT, 9104).

It runs the training command (LUMEN_TRAINER_COMMAND) as a child process every
LUMEN_TRAINER_INTERVAL_SECONDS and after LUMEN_TRAINER_MIN_NEW_INTERACTIONS new interactions,
one run at a time. The command publishes a new version into the registry only when it beats
the served one; inference hot-swaps to it. On SIGTERM a run in progress is stopped (SIGTERM,
then SIGKILL after LUMEN_TRAINER_STOP_GRACE_SECONDS) and the trainer exits.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import datetime

from services.trainer.loop import TrainerLoop
from services.trainer.metrics import TrainerMetrics
from services.trainer.runner import Runner
from services.trainer.schedule import Triggers
from services.trainer.served import read_served
from services.trainer.settings import TrainerSettings
from services.trainer.training_lock import TrainingLock, lock_path
from services.trainer.web import make_server, serve_in_background
from shared import interactions
from shared.logging import configure_logging
from shared.metrics import register_build_info
from shared.mongo import database, mongo_client

log = logging.getLogger("services.trainer")


def main() -> None:
    settings = TrainerSettings()
    configure_logging("trainer", settings.log)
    register_build_info("trainer")
    client = mongo_client(settings.mongo)
    store = database(client, settings.mongo)[interactions.COLLECTION]

    def count_new(after: datetime | None) -> int:
        query = {} if after is None else {interactions.AT: {"$gt": after}}
        return int(store.count_documents(query))

    loop = TrainerLoop(
        Triggers(settings.interval_seconds, settings.min_new_interactions, settings.retry_seconds),
        Runner(settings.argv(), settings.run_timeout_seconds, settings.stop_grace_seconds).run,
        count_new,
        lambda: read_served(settings.model_name),
        TrainerMetrics(),
        settings.check_seconds,
        run_at_start=settings.run_at_start,
        lock=TrainingLock(lock_path(settings.model_name)),
    )
    server = make_server(settings.host, settings.port, loop.status)
    serve_in_background(server)
    loop.start()
    log.info(
        "trainer listening",
        extra={
            "fields": {
                "web": f"{settings.host}:{settings.port}",
                "command": settings.argv(),
                "interval_seconds": settings.interval_seconds,
                "min_new_interactions": settings.min_new_interactions,
            }
        },
    )

    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    stopping.wait()
    log.info("stopping")
    loop.stop(timeout=settings.stop_grace_seconds + 10)
    server.shutdown()
    client.close()
    log.info("trainer stopped")


if __name__ == "__main__":
    main()
