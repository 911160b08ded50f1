"""Does a recommender trained on the product's own events match the offline reference?

    .venv/bin/python -m bench.own_data_quality                  # the test stack (LUMEN_TEST_*)
    .venv/bin/python -m bench.own_data_quality --private-stack  # a Kafka and mongod of its own

1. A database of its own, an ingest process and a profile updater writing it.
2. MovieLens 100k replayed through ingest's HTTP API as ``lumen seed`` does it
   (``lumen_cli/seed``): the catalogue as ``Item Upserted``, then all 100,000 ratings as
   ``Item Rated``, oldest first, stamped with their original spacing ending now.
3. Wait until the interaction store holds every rating.
4. ``models.recommender.from_events.train_from_store`` on that database (nothing published:
   an empty registry, so there is no served version to compare with) -> the challenger's
   test metrics: full ranking, seen items excluded, each user's last interaction held out.
5. The offline reference, ``models.recommender.train.train_and_evaluate()`` on RecBole's
   MovieLens file, the same metrics for the served model.

Targets: HR@10 >= 0.20, NDCG@10 >= 0.10, and both >= 0.95x the offline figures.
Results: printed and saved to docs/benchmarks/own_data_quality.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from bench.common import machine
from bench.stack import (
    SOURCE,
    Platform,
    ProfilesWorkerIdentity,
    private_stack,
    shared_test_stack,
    start_ingest,
    start_profiles,
)
from shared import interactions
from tests.support.profiles_worker import metric
from tests.support.stack import ServiceProcess, wait_for

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "own_data_quality.json"
CATALOGUE_KEY = "quality-catalogue-key"
TARGETS = {"hr@10": 0.20, "ndcg@10": 0.10, "ratio_to_offline": 0.95}
METRICS = ("hr@10", "ndcg@10")


@contextlib.contextmanager
def services(platform: Platform, database: str) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    """Ingest (with a catalogue key) and a profile updater reading only what comes next."""
    from services.ingest.auth import WriteKeys

    identity = ProfilesWorkerIdentity.new("quality")
    worker = start_profiles(platform, database, identity)
    ingest = None
    try:
        # "latest": the updater must hold its partitions before the replay starts.
        wait_for(lambda: metric(worker, "lumen_profiles_assigned_partitions") > 0, timeout=120)
        ingest = start_ingest(
            platform,
            database,
            LUMEN_INGEST_CATALOG_KEYS=WriteKeys.entry(SOURCE, CATALOGUE_KEY),
        )
        yield ingest, worker
    finally:
        if ingest is not None:
            ingest.stop()
        worker.stop()
        identity.forget(platform.bootstrap)


def replay(ingest: ServiceProcess, rate: float, batch_size: int) -> dict[str, Any]:
    """The seed's catalogue and ratings phases, through ``lumen_cli/seed``'s replayer."""
    from lumen_cli.seed import datasets
    from lumen_cli.seed.replay import (
        Checkpoint,
        IngestBatchSender,
        Replayer,
        TokenBucket,
        original_spacing,
    )
    from models.sources import movielens_100k

    class Quiet:
        def update(self, _: int) -> None:
            return None

        def close(self) -> None:
            return None

    folder = movielens_100k()
    with tempfile.TemporaryDirectory() as scratch:
        replayer = Replayer(
            Checkpoint.load(Path(scratch) / "checkpoint.json"),
            TokenBucket(rate, burst=max(rate, batch_size)),
            batch_size,
            lambda *_: Quiet(),
        )
        sender = IngestBatchSender(f"http://127.0.0.1:{ingest.ports['http']}", CATALOGUE_KEY)
        try:
            items = datasets.catalogue_events(folder)
            catalogue = replayer.run("catalogue", "all", items, sender.send, timestamped=True)
            ratings = datasets.rating_events(folder, None)
            last = max(datasets.rated_at(e) for e in ratings)
            rated = replayer.run(
                "ratings",
                "all",
                ratings,
                sender.send,
                timestamped=True,
                stamper=original_spacing(last, datasets.rated_at),
            )
        finally:
            sender.close()
    for phase in (catalogue, rated):
        if phase.rejected:
            raise RuntimeError(f"ingest refused {phase.phase} events: {phase.rejections}")
    return {
        "items_sent": catalogue.sent,
        "ratings_sent": rated.sent,
        "ratings_accepted": rated.accepted,
        "replay_seconds": round(catalogue.seconds + rated.seconds, 1),
    }


def own_data_metrics(db: Any) -> dict[str, Any]:
    try:
        from models.recommender.from_events import train_from_store
    except ImportError as exc:
        raise SystemExit(
            f"the own-data trainer (models/recommender/from_events.py) is not available: {exc}"
        ) from None
    with tempfile.TemporaryDirectory() as registry:
        started = time.perf_counter()
        outcome = train_from_store(db, Path(registry), publish=False)
        seconds = time.perf_counter() - started
    challenger = outcome.metrics.get("challenger") or {}
    if not challenger:
        raise SystemExit(f"the own-data trainer produced no metrics: {outcome.summary()}")
    return {
        "metrics": {k: round(float(challenger[k]), 4) for k in challenger},
        "popularity": outcome.metrics.get("popularity"),
        "counts": outcome.counts,
        "train_seconds": round(seconds, 1),
        "summary": outcome.summary(),
    }


def offline_metrics() -> dict[str, Any]:
    from models.recommender.train import train_and_evaluate

    started = time.perf_counter()
    result = train_and_evaluate()
    served = result["test"]["sequential-item-item (served)"]["full"]
    return {
        "metrics": {k: round(float(served[k]), 4) for k in served if k.endswith("@10")},
        "users": result["n_users"],
        "items": result["n_items"],
        "interactions": result["n_interactions"],
        "train_seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--private-stack", action="store_true")
    parser.add_argument("--rate", type=float, default=5000, help="replayed events per second")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the store")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()

    results: dict[str, Any] = {"machine": machine(), "targets": TARGETS}
    database = f"lumen_quality_{uuid.uuid4().hex[:8]}"
    stack = private_stack() if args.private_stack else shared_test_stack()
    with stack as platform:
        client: MongoClient[Any] = MongoClient(platform.mongo_uri, tz_aware=True)
        db = client[database]
        try:
            with services(platform, database) as (ingest, _):
                results["replay"] = replay(ingest, args.rate, args.batch_size)
                expected = results["replay"]["ratings_accepted"]
                started = time.monotonic()
                wait_for(
                    lambda: db[interactions.COLLECTION].count_documents({}) >= expected,
                    timeout=args.timeout,
                    interval=2,
                )
                results["replay"]["store_complete_after_replay_seconds"] = round(
                    time.monotonic() - started, 1
                )
                results["replay"]["interactions_stored"] = db[
                    interactions.COLLECTION
                ].count_documents({})
            print(json.dumps(results["replay"], indent=2), flush=True)
            results["own_data"] = own_data_metrics(db)
            print(json.dumps(results["own_data"], indent=2), flush=True)
        finally:
            if not args.keep:
                client.drop_database(database)
            client.close()
    results["offline"] = offline_metrics()
    print(json.dumps(results["offline"], indent=2), flush=True)
    own, offline = results["own_data"]["metrics"], results["offline"]["metrics"]
    ratios = {k: round(own[k] / offline[k], 3) for k in METRICS if offline.get(k)}
    results["ratio_own_to_offline"] = ratios
    results["meets_targets"] = all(own[k] >= TARGETS[k] for k in METRICS) and all(
        r >= TARGETS["ratio_to_offline"] for r in ratios.values()
    )
    results["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({"ratio_own_to_offline": ratios, "meets": results["meets_targets"]}))
    print(f"saved {OUT}")


if __name__ == "__main__":
    main()
