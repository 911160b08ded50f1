"""How soon an item sent to ingest is found by SearchItems (the live search index).

Ingest, a profile updater and an inference server (the registry's text encoder) on the
test stack (or a private one): 200 ``Item Upserted`` events are sent one by one; for each,
the time from ingest's HTTP acknowledgement to the first SearchItems answer (its own
title as the query, polled every 20 ms) that holds the item. Target: p99 < 5 s.

    python -m bench.search_freshness                  # 200 items, figures in docs/benchmarks
    python -m bench.search_freshness --items 20 --out /tmp/x.json
"""

from __future__ import annotations

import argparse
import json
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import httpx
from lumen.v1 import inference_pb2 as pb
from lumen.v1 import inference_pb2_grpc as pb_grpc

from bench.common import machine, percentile
from tests.support.stack import ServiceProcess

OUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks" / "search_freshness.json"
CATALOG_KEY = "bench-catalog-key"
POLL_SECONDS = 0.02
GIVE_UP_SECONDS = 30.0
TARGET_P99_S = 5.0
WORDS = [
    "amber",
    "basalt",
    "cedar",
    "delta",
    "ember",
    "fjord",
    "garnet",
    "harbor",
    "indigo",
    "juniper",
    "kelp",
    "lagoon",
    "meadow",
    "nectar",
    "obsidian",
    "prairie",
    "quartz",
    "river",
    "saffron",
    "tundra",
    "umber",
    "velvet",
    "willow",
    "yarrow",
    "zephyr",
    "lantern",
    "compass",
    "kettle",
    "blanket",
    "teapot",
    "backpack",
    "bicycle",
    "camera",
    "guitar",
    "journal",
]


def title(rng: random.Random) -> str:
    return " ".join(rng.sample(WORDS, 4)).capitalize()


def measure(ingest: str, inference: str, items: int, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    seconds: list[float] = []
    missed = 0
    tag = uuid.uuid4().hex[:6]
    with (
        httpx.Client(base_url=ingest, auth=(CATALOG_KEY, ""), timeout=10) as http,
        grpc.insecure_channel(inference) as channel,
    ):
        search = pb_grpc.SearchServiceStub(channel)
        for n in range(items):
            item_id, name = f"fresh-{tag}-{n}", title(rng)
            response = http.post(
                "/v1/track",
                json={
                    "userId": "catalogue-service",
                    "event": "Item Upserted",
                    "messageId": uuid.uuid4().hex,
                    "properties": {"item": {"id": item_id, "title": name, "categories": ["b"]}},
                },
            )
            response.raise_for_status()
            acknowledged = time.perf_counter()
            while True:
                hits = search.SearchItems(pb.SearchItemsRequest(query=name, k=10), timeout=5).hits
                if any(h.item_id == item_id for h in hits):
                    seconds.append(time.perf_counter() - acknowledged)
                    break
                if time.perf_counter() - acknowledged > GIVE_UP_SECONDS:
                    missed += 1
                    break
                time.sleep(POLL_SECONDS)
    seconds.sort()
    return {
        "items": items,
        "found": len(seconds),
        "missed_after_s": {"seconds": GIVE_UP_SECONDS, "count": missed},
        "ack_to_searchable_s": {
            "p50": round(percentile(seconds, 0.50), 3),
            "p90": round(percentile(seconds, 0.90), 3),
            "p99": round(percentile(seconds, 0.99), 3),
            "max": round(seconds[-1], 3) if seconds else 0.0,
        },
        "target_p99_s": TARGET_P99_S,
        "poll_s": POLL_SECONDS,
    }


def run(platform: Any, registry: Path, items: int) -> dict[str, Any]:
    from pymongo import MongoClient

    from bench.stack import ProfilesWorkerIdentity, start_inference, start_ingest, start_profiles
    from services.ingest.auth import WriteKeys

    database = f"lumen_bench_search_{uuid.uuid4().hex[:8]}"
    worker = ProfilesWorkerIdentity.new("lumen-bench-search")
    services: list[ServiceProcess] = []
    try:
        with ThreadPoolExecutor(3) as pool:
            futures = [
                pool.submit(start_profiles, platform, database, worker),
                pool.submit(
                    start_ingest,
                    platform,
                    database,
                    LUMEN_INGEST_CATALOG_KEYS=WriteKeys.entry("bench", CATALOG_KEY),
                ),
                pool.submit(start_inference, platform, database, registry),
            ]
            for future in futures:
                services.append(future.result())
        _, ingest, inference = services
        time.sleep(2.0)  # the profile updater joins its group before events flow
        return measure(
            f"http://127.0.0.1:{ingest.ports['http']}",
            f"127.0.0.1:{inference.ports['grpc']}",
            items,
        )
    finally:
        for service in services:
            service.stop()
        worker.forget(platform.bootstrap)
        client: MongoClient[dict[str, Any]] = MongoClient(platform.mongo_uri)
        client.drop_database(database)
        client.close()


def main() -> None:
    from bench.stack import default_registry, private_stack, shared_test_stack

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--registry", default=None, help="model registry (with a text encoder)")
    parser.add_argument("--private-stack", action="store_true")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    registry = default_registry(args.registry)
    with private_stack() if args.private_stack else shared_test_stack() as platform:
        result = run(platform, registry, args.items)
    document = {
        "benchmark": "search_freshness",
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "registry": str(registry),
        **result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
