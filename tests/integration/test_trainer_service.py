"""The trainer on the real stack: a product's catalogue and shoppers' views go through ingest
(HTTP) and the profile updater into the interaction store; the trainer, a real process with a
low LUMEN_TRAINER_MIN_NEW_INTERACTIONS, notices them, runs the real training command, which
publishes a new version into the registry; /metrics and /healthz show the outcome, and
SIGTERM stops the trainer cleanly.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from shared import interactions
from shared.model_registry import get_version, latest_version
from tests.integration.profiles_updater import (
    registry_serving_the_default_recommender,
    updater_with_own_database,
)
from tests.support.stack import REPO, ServiceProcess, Stack, running, start_ingest, wait_for
from tests.support.trainer_process import health, runs, start_trainer, trainer_metrics
from tests.unit.models import own_product

WRITE_KEY = "lumen-dev-key"  # write and catalogue scopes in development mode
RUN = uuid.uuid4().hex[:6]
DATABASE = f"lumen_trainer_{RUN}"
Doc = dict[str, Any]


@pytest.fixture(scope="module")
def updater(stack: Stack) -> Iterator[ServiceProcess]:
    """The product's profile updater, writing a database of its own."""
    with updater_with_own_database(stack, DATABASE, "trainer", "profiles-trainer") as service:
        yield service


@pytest.fixture
def fresh_ingest(stack: Stack) -> Iterator[ServiceProcess]:
    """An ingest that has not seen the MovieLens ratings other tests replayed (it would drop
    their messageIds as duplicates)."""
    with running(start_ingest(stack.env())) as service:
        yield service


@pytest.fixture(scope="module")
def registry(models_registry: Path) -> Iterator[Path]:
    """A private registry serving the offline MovieLens recommender to begin with."""
    with registry_serving_the_default_recommender(models_registry, f"trainer-{RUN}") as root:
        yield root


def send(ingest: ServiceProcess, batch: list[Doc]) -> None:
    for start in range(0, len(batch), 500):
        response = httpx.post(
            f"http://127.0.0.1:{ingest.ports['http']}/v1/batch",
            json={"batch": batch[start : start + 500]},
            auth=(WRITE_KEY, ""),
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert "rejected" not in response.json(), response.text


def catalogue_events() -> list[Doc]:
    return [
        {
            "type": "track",
            "userId": "catalogue-service",
            "event": "Item Upserted",
            "messageId": f"{RUN}-item-{item.item_id}",
            "properties": {
                "item": {"id": item.item_id, "title": item.title, "categories": item.categories}
            },
        }
        for item in own_product.catalogue()
    ]


def view_events(histories: dict[str, list[str]], start: datetime) -> list[Doc]:
    """One Product Viewed per item, a minute apart per shopper (shoppers a second apart)."""
    return [
        {
            "type": "track",
            "userId": user,
            "event": "Product Viewed",
            "messageId": f"{RUN}-{user}-{step}",
            "timestamp": (start + timedelta(minutes=step, seconds=u)).isoformat(),
            "properties": {"product_id": item},
        }
        for u, (user, items) in enumerate(sorted(histories.items()))
        for step, item in enumerate(items)
    ]


def test_new_interactions_make_the_trainer_publish_a_version(
    stack: Stack, ingest: ServiceProcess, updater: ServiceProcess, registry: Path
) -> None:
    shoppers = own_product.walks(80, seed=1)
    total = sum(len(h) for h in shoppers.values())
    trainer = start_trainer(
        stack,
        registry,
        DATABASE,
        min_new_interactions=str(total - 20),
        command="python -m models train recommender --from-events --since-days 30",
    )
    try:
        before = trainer_metrics(trainer)
        assert before[("lumen_trainer_served_version", ())] == 1  # the offline build
        assert before[("lumen_trainer_new_interactions", ())] == 0
        assert before[("lumen_trainer_interval_seconds", ())] == 0
        assert all(runs(trainer, o) == 0 for o in ("published", "refused", "failed"))
        assert health(trainer)["last_run"] is None

        send(ingest, catalogue_events())
        send(ingest, view_events(shoppers, datetime.now(UTC) - timedelta(days=1)))
        client: MongoClient[Doc] = MongoClient(stack.mongo_uri)
        with client:
            store = client[DATABASE][interactions.COLLECTION]
            wait_for(lambda: store.count_documents({}) >= total, 120, interval=0.5)

        # The trainer counts them, runs the real command, which beats the MovieLens model
        # on the product's own walks and publishes.
        wait_for(lambda: runs(trainer, "published") == 1, 600, interval=1.0)
        figures = trainer_metrics(trainer)
        assert runs(trainer, "failed") == 0
        assert latest_version("recommender", registry) == 2
        assert figures[("lumen_trainer_served_version", ())] == 2
        assert figures[("lumen_trainer_run_duration_seconds_count", ())] == 1
        assert figures[("lumen_trainer_last_run_timestamp_seconds", ())] > time.time() - 600
        quality = figures[("lumen_trainer_served_quality", (("metric", "hr@10"),))]
        config = get_version("recommender", 2, registry).config
        assert config.extra.get("trained_from") == "events"
        assert quality == pytest.approx(config.metrics["test"]["challenger"]["hr@10"])
        assert 0 < figures[("lumen_trainer_served_quality", (("metric", "ndcg@10"),))] <= 1
        # What the run read is no longer new: no second run.
        wait_for(lambda: trainer_metrics(trainer)[("lumen_trainer_new_interactions", ())] == 0, 10)
        last = health(trainer)["last_run"]
        assert last["outcome"] == "published" and last["version"] == 2
        assert last["trigger"] == "new_interactions"
    finally:
        trainer.proc.send_signal(signal.SIGTERM)
        code = trainer.stop(timeout=30)
    assert code == 0, trainer.log()[-3000:]
    assert "trainer stopped" in trainer.log()
    assert runs_in_log(trainer.log()) == 1


def runs_in_log(log: str) -> int:
    return log.count("training run started")


def test_the_demo_serves_a_recommender_trained_from_what_lumen_received(
    stack: Stack,
    fresh_ingest: ServiceProcess,
    updater: ServiceProcess,
    models_registry: Path,
    tmp_path: Path,
) -> None:
    """`make up`'s last two steps: `lumen seed` replays MovieLens through ingest, then
    train_seeded waits for the ratings in the interaction store and trains from them."""
    from lumen_cli.seed.datasets import RATING_ID_PREFIX, rated_at, rating_events
    from models.sources import movielens_100k

    registry = tmp_path / "models"
    shutil.copytree(models_registry / "recommender", registry / "recommender")
    env = {
        **os.environ,
        **stack.env(),
        "LUMEN_MONGO_DATABASE": DATABASE,
        "LUMEN_INGEST_URL": f"http://127.0.0.1:{fresh_ingest.ports['http']}",
        "LUMEN_VAR_DIR": str(tmp_path / "var"),  # its own seed checkpoint
        "LUMEN_CACHE_DIR": os.environ.get("LUMEN_CACHE_DIR", str(REPO / "var" / "cache")),
        "LUMEN_MODEL_REPOSITORY": str(registry),
        "LUMEN_RUNS_DIR": str(tmp_path / "runs"),
    }

    def lumen(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    users = 20
    parts = ["--only", "catalogue", "--only", "ratings"]
    seeded = lumen("lumen_cli", "seed", *parts, "--users", str(users), "--rate", "0", "--json")
    assert seeded.returncode == 0, seeded.stderr
    ratings = next(p for p in json.loads(seeded.stdout)["phases"] if p["phase"] == "ratings")
    assert ratings["sent"] == ratings["total"] > 1000 and ratings["rejected"] == 0

    # A bound for a busy machine (seconds on an idle one).
    trained = lumen("lumen_cli.seed.train_seeded", "--timeout", "300")
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "offline MovieLens build: replacing it (--force)" in trained.stdout
    assert f"{ratings['total']} seeded ratings stored" in trained.stdout
    config = get_version("recommender", root=registry).config
    assert config.version == 2 and config.extra.get("trained_from") == "events"
    assert config.metrics["dataset"]["interactions"] >= ratings["total"]

    # The ratings kept their original spacing, the newest landing at the replay.
    client: MongoClient[Doc] = MongoClient(stack.mongo_uri, tz_aware=True)
    with client:
        store = client[DATABASE][interactions.COLLECTION]
        mine = {"_id": {"$regex": f"^{RATING_ID_PREFIX}"}}
        times = [d[interactions.AT] for d in store.find(mine, {interactions.AT: 1})]
    original = [rated_at(e) for e in rating_events(movielens_100k(), users)]
    assert len(times) == len(original)
    span = (max(times) - min(times)).total_seconds()
    assert span == pytest.approx(max(original) - min(original), abs=60)
    assert abs((datetime.now(UTC) - max(times)).total_seconds()) < 600

    # A second run goes through the gate: the served version was trained from events.
    again = lumen("lumen_cli.seed.train_seeded", "--timeout", "60")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "--force" not in again.stdout
