"""Retraining under load: clients call Recommend without pause on a real inference server
while the trainer (a real process) retrains the recommender from the interaction store and
publishes a new version; not one call fails and the served version changes under them."""

from __future__ import annotations

import shutil
import signal
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
from lumen.v1 import inference_pb2 as pb
from lumen.v1 import inference_pb2_grpc as pb_grpc
from pymongo import MongoClient

from shared import interactions
from shared.catalogue import COLLECTION as ITEMS
from shared.model_registry import latest_version
from tests.integration.inference_helpers import start_inference
from tests.reliability.services import record
from tests.support.model_registry import small_registry
from tests.support.private_platform import PrivatePlatform
from tests.support.stack import TEST_VAR, ServiceProcess, wait_for
from tests.support.trainer_process import health, runs, start_trainer
from tests.unit.models import own_product

# A MovieLens item the offline model knows, and one of the product's items only a model
# trained from the store knows.
CONTEXTS = {"movielens": "1", "product": own_product.sku(0, 1)}


def fill_store(uri: str, database: str) -> int:
    """The product's catalogue and shoppers' views, as the profile updater stores them."""
    docs = own_product.documents(own_product.walks(80, seed=2))
    client: MongoClient[dict[str, Any]] = MongoClient(uri)
    with client:
        db = client[database]
        db[ITEMS].insert_many(
            [
                {"_id": item.item_id, "title": item.title, "categories": list(item.categories)}
                for item in own_product.catalogue()
            ]
        )
        db[interactions.COLLECTION].insert_many(docs)
    return len(docs)


def test_retraining_under_recommend_load_fails_no_call(
    platform: PrivatePlatform, owned: list[ServiceProcess]
) -> None:
    database = f"lumen_retrain_{uuid.uuid4().hex[:8]}"
    stack = platform.stack(database)
    registry = TEST_VAR / "models" / f"retrain-{uuid.uuid4().hex[:6]}"
    registry.mkdir(parents=True)
    shutil.copytree(small_registry() / "recommender", registry / "recommender")
    try:
        run(stack, database, registry, owned)
    finally:
        shutil.rmtree(registry, ignore_errors=True)


def run(stack: Any, database: str, registry: Path, owned: list[ServiceProcess]) -> None:
    stored = fill_store(stack.mongo_uri, database)
    server = start_inference(
        stack,
        registry,
        LUMEN_MONGO_DATABASE=database,
        LUMEN_INFERENCE_SUPPORT_CONSUMER_ENABLED="false",
    )
    owned.append(server)
    answers: Counter[tuple[str, str, str]] = Counter()  # (context, version, source)
    failures: list[str] = []
    stop = threading.Event()

    def load(context: str) -> None:
        with grpc.insecure_channel(f"127.0.0.1:{server.ports['grpc']}") as channel:
            stub = pb_grpc.RecommendationServiceStub(channel)
            while not stop.is_set():
                try:
                    r = stub.Recommend(
                        pb.RecommendRequest(
                            anonymous_id=f"retrain-{context}",
                            k=5,
                            context_item_ids=[CONTEXTS[context]],
                        ),
                        timeout=5,
                    )
                except grpc.RpcError as exc:
                    failures.append(f"Recommend {exc.code()}: {exc.details()}")
                    continue
                source = pb.RecommendationSource.Name(r.source)
                answers[context, r.model_version, source] += 1
                # A fallback may be empty (this store has no trends); a model's answer may not.
                if not r.items and r.source == pb.RECOMMENDATION_SOURCE_PERSONALISED:
                    failures.append(f"Recommend v{r.model_version} returned no items")

    def calls(context: str, version: str, personalised: bool = True) -> int:
        return sum(
            n
            for (c, v, source), n in answers.items()
            if c == context
            and v == version
            and (not personalised or source.endswith("PERSONALISED"))
        )

    threads = [threading.Thread(target=load, args=(c,)) for c in (*CONTEXTS, *CONTEXTS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    trainer = None
    try:
        wait_for(lambda: calls("movielens", "1") >= 20, timeout=60)
        trainer = start_trainer(
            stack, registry, database, name="trainer-retrain", min_new_interactions=str(stored)
        )
        owned.append(trainer)
        wait_for(lambda: runs(trainer, "published") == 1, timeout=600, interval=1.0)
        assert latest_version("recommender", registry) == 2
        # The server swaps to v2: the product's items are recommended from the product's own.
        wait_for(lambda: calls("product", "2") >= 20, timeout=60)
        last = health(trainer)["last_run"]
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        if trainer is not None:
            trainer.proc.send_signal(signal.SIGTERM)
            assert trainer.stop(timeout=30) == 0, trainer.log()[-3000:]
    record(
        "fault_retrain_hot_swap",
        {
            "calls": sum(answers.values()),
            "failed_calls": len(failures),
            "calls_by_context_version_source": {
                f"{c} v{v or '-'} {s}": n for (c, v, s), n in sorted(answers.items())
            },
            "interactions": stored,
            "training_seconds": last["seconds"],
            "duration_seconds": round(time.monotonic() - started, 1),
        },
    )
    assert failures == [], failures[:5]
    assert last["outcome"] == "published" and last["version"] == 2
    assert calls("movielens", "1") >= 20 and calls("product", "2") >= 20
