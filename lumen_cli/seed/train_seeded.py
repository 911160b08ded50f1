"""Train the served recommender from what `lumen seed` sent (``make up``'s last step).

``python -m lumen_cli.seed.train_seeded [--timeout S]``: first wait until the interaction
store holds the ratings the seed's checkpoint records as acknowledged (they go through ingest,
Kafka and the profile updater; training must not start on half of them), then run
``lumen train recommender --from-events`` under the trainer's lock (never beside one of the
trainer's own runs). The first time, the served version is the offline MovieLens build, which
read nothing of the store: the run is forced (``--force``) so that the demo serves what Lumen
received (the gate would compare it on ratings the offline build was trained on); later runs
go through the gate like the trainer's. The offline build stays the
reference evaluation (``python -m models build-defaults``).

Exit 0 after a decision (published, forced, refused, skipped), 1 when the ratings did not all
arrive in time or training failed, 3 when MongoDB cannot be reached.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

from lumen_cli.output import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE
from lumen_cli.seed.datasets import RATING_ID_PREFIX
from lumen_cli.seed.replay import Checkpoint


def seeded_ratings(checkpoint: Checkpoint) -> int:
    """Ratings ingest acknowledged, by the checkpoint (0 when none were replayed)."""
    entry = checkpoint.phases.get("ratings") or {}
    return int(entry.get("done", 0))


def wait_stored(
    expected: int,
    count: Callable[[], int],
    timeout: float,
    interval: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Poll ``count`` until it reaches ``expected`` or ``timeout`` passes; the last count."""
    deadline = clock() + timeout
    while True:
        stored = count()
        if stored >= expected or clock() >= deadline:
            return stored
        sleep(interval)


def trained_from_events(model_name: str = "recommender") -> bool:
    """Whether the served version was trained from the interaction store."""
    from shared.model_registry import RegistryError, get_version

    try:
        return get_version(model_name).config.extra.get("trained_from") == "events"
    except RegistryError:
        return False


def wait_for_ratings(timeout: float) -> int:
    from pymongo.errors import PyMongoError

    from lumen_cli.commands.seed_cmd import checkpoint_file
    from shared import interactions
    from shared.mongo import database, mongo_client
    from shared.settings import MongoSettings

    expected = seeded_ratings(Checkpoint.load(checkpoint_file()))
    if expected == 0:
        print("No seeded ratings to train from (run `lumen seed` first).", file=sys.stderr)
        return EXIT_FAILED
    settings = MongoSettings()
    client = mongo_client(settings)
    store = database(client, settings)[interactions.COLLECTION]
    # A prefix match on _id reads the _id index only.
    query = {interactions.ID: {"$regex": "^" + re.escape(RATING_ID_PREFIX)}}
    print(f"Waiting for the {expected} seeded ratings to reach the interaction store...")
    try:
        stored = wait_stored(expected, lambda: int(store.count_documents(query)), timeout)
    except PyMongoError as exc:
        print(f"MongoDB at {settings.uri} is not reachable ({exc}); is the platform up?")
        return EXIT_UNREACHABLE
    finally:
        client.close()
    if stored < expected:
        print(
            f"Only {stored} of the {expected} seeded ratings reached the interaction store "
            f"after {timeout:.0f} s. Is the profile updater running (`lumen status`, "
            "var/logs/profiles.log)? Run `make up` again once it is.",
            file=sys.stderr,
        )
        return EXIT_FAILED
    print(f"  {stored} seeded ratings stored.")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lumen_cli.seed.train_seeded",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=180.0,
        help="seconds to wait for the ratings, then for a run of the trainer (default 180)",
    )
    args = parser.parse_args(argv)
    waited = wait_for_ratings(args.timeout)
    if waited != EXIT_OK:
        return waited

    from services.trainer.training_lock import TrainingLock, lock_path

    command = [sys.executable, "-m", "lumen_cli", "train", "recommender", "--from-events"]
    if not trained_from_events():
        print("The served recommender is the offline MovieLens build: replacing it (--force).")
        command.append("--force")
    lock = TrainingLock(lock_path("recommender"))
    if not lock.try_acquire():
        print("The trainer is training; waiting for its run to end...")
        if not lock.acquire(args.timeout):
            print(f"The trainer's run did not end within {args.timeout:.0f} s.", file=sys.stderr)
            return EXIT_FAILED
    try:
        print("$ lumen " + " ".join(command[3:]), flush=True)
        return subprocess.run(command, check=False).returncode
    finally:
        lock.release()


if __name__ == "__main__":
    sys.exit(main())
