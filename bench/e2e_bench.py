"""End to end: MovieLens 100k replayed through ingest while Recommend is called for the same
users; how long until a user's new event changes their recommendations.

Three real processes (ingest -> Kafka -> profile updater -> MongoDB <- inference). A background
task replays the ratings through ``/v1/batch`` at a fixed rate (re-timed to now). A probe task
takes a few MovieLens users out of that stream and, one event at a time: reads the user's
current recommendations, posts the user's next rating to ``/v1/track``, then polls Recommend
until the list differs. The delay counts from the moment the event is sent. Events after which
the list never changed within the timeout are counted apart, not hidden.

    .venv/bin/python -m bench.e2e_bench --quick
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bench.common import peak_rss_bytes, percentile, save_results
from bench.stack import WRITE_KEY, Platform
from tests.support.stack import ServiceProcess

PROBE_WARMUP_EVENTS = 5


@dataclass(frozen=True)
class E2EParams:
    rate: float  # background events/s through /v1/batch
    seconds: float  # how long the replay and the probing run
    probe_users: int
    probe_timeout: float  # give up waiting for a change after this many seconds
    poll_interval: float = 0.01


def movielens_events(prefix: str) -> list[dict[str, Any]]:
    from tests.support.movielens_events import movielens_folder, rating_events

    events = rating_events(movielens_folder(), prefix)
    now = datetime.now(UTC)
    for n, event in enumerate(events):  # keep the order, move to now
        stamp = now - timedelta(seconds=len(events) - n)
        event["timestamp"] = stamp.isoformat().replace("+00:00", "Z")
    return events


def split_probes(
    events: list[dict[str, Any]], count: int
) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """The ``count`` users with the most ratings become probe users; the rest is background."""
    by_user: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_user.setdefault(event["userId"], []).append(event)
    probes = sorted(by_user, key=lambda u: -len(by_user[u]))[:count]
    chosen = set(probes)
    background = [e for e in events if e["userId"] not in chosen]
    return background, {u: by_user[u] for u in probes}


async def run(ingest_url: str, inference_target: str, params: E2EParams) -> dict[str, Any]:
    import aiohttp
    import grpc
    from lumen.v1 import inference_pb2 as pb
    from lumen.v1 import inference_pb2_grpc as pb_grpc

    prefix = f"e2e{uuid.uuid4().hex[:6]}"
    background, probes = split_probes(movielens_events(prefix), params.probe_users)
    auth = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    recommend_ms: list[float] = []
    delays: list[float] = []
    unchanged = 0
    sent_background = 0
    failures: dict[str, int] = {}

    async with (
        aiohttp.ClientSession(headers=headers) as http,
        grpc.aio.insecure_channel(inference_target) as channel,
    ):
        stub = pb_grpc.RecommendationServiceStub(channel)

        async def recommend(user: str) -> tuple[str, ...]:
            started = time.perf_counter()
            reply = await stub.Recommend(pb.RecommendRequest(user_id=user, k=10), timeout=5)
            recommend_ms.append(1000 * (time.perf_counter() - started))
            return tuple(item.item_id for item in reply.items)

        async def post(path: str, body: object) -> None:
            async with http.post(f"{ingest_url}{path}", data=orjson.dumps(body)) as response:
                await response.read()
                if response.status != 200:
                    failures[str(response.status)] = failures.get(str(response.status), 0) + 1

        # Probe users get a short history first, so that their recommendations are personal.
        for events in probes.values():
            await post("/v1/batch", {"batch": events[:PROBE_WARMUP_EVENTS]})
            del events[:PROBE_WARMUP_EVENTS]
        await asyncio.sleep(2.0)

        deadline = time.monotonic() + params.seconds

        async def replay() -> None:  # fixed rate: one request every 50 ms
            nonlocal sent_background
            per_request = max(1, round(params.rate / 20))
            start = time.monotonic()
            n = 0
            while time.monotonic() < deadline and sent_background < len(background):
                chunk = background[sent_background : sent_background + per_request]
                await post("/v1/batch", {"batch": chunk})
                sent_background += len(chunk)
                n += 1
                delay = start + n / 20 - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)

        async def probe() -> None:
            nonlocal unchanged
            users = list(probes)
            i = 0
            while time.monotonic() < deadline:
                user = users[i % len(users)]
                i += 1
                if not probes[user]:
                    continue
                event = probes[user].pop(0)
                before = await recommend(user)
                sent = time.perf_counter()
                await post("/v1/track", {k: v for k, v in event.items() if k != "type"})
                give_up = sent + params.probe_timeout
                while True:
                    if await recommend(user) != before:
                        delays.append(time.perf_counter() - sent)
                        break
                    if time.perf_counter() > give_up:
                        unchanged += 1
                        break
                    await asyncio.sleep(params.poll_interval)

        started = time.monotonic()
        await asyncio.gather(replay(), probe())
        elapsed = time.monotonic() - started

    delays.sort()
    recommend_ms.sort()
    return {
        "offered_events_per_s": params.rate,
        "achieved_background_events_per_s": round(sent_background / elapsed, 1),
        "seconds": round(elapsed, 2),
        "probe_users": params.probe_users,
        "probes": len(delays) + unchanged,
        "changed": len(delays),
        "unchanged_within_timeout": unchanged,
        "probe_timeout_seconds": params.probe_timeout,
        "freshness_p50_ms": round(1000 * percentile(delays, 0.5), 1),
        "freshness_p99_ms": round(1000 * percentile(delays, 0.99), 1),
        "freshness_max_ms": round(1000 * delays[-1], 1) if delays else 0.0,
        "freshness_ms": [round(1000 * d, 1) for d in delays],
        "recommend_calls": len(recommend_ms),
        "recommend_p50_ms": round(percentile(recommend_ms, 0.5), 2),
        "recommend_p99_ms": round(percentile(recommend_ms, 0.99), 2),
        "ingest_failures": failures,
    }


def measure(platform: Platform, registry: Path, params: E2EParams) -> dict[str, Any]:
    from bench.stack import ProfilesWorkerIdentity, start_inference, start_ingest, start_profiles

    database = f"lumen_bench_e2e_{uuid.uuid4().hex[:8]}"
    worker = ProfilesWorkerIdentity.new("lumen-bench")
    services: list[ServiceProcess] = []
    try:
        # Started side by side: each mostly waits on imports and its own readiness.
        with ThreadPoolExecutor(3) as pool:
            futures = [
                pool.submit(start_profiles, platform, database, worker),
                pool.submit(start_ingest, platform, database),
                pool.submit(start_inference, platform, database, registry),
            ]
            for future in futures:
                try:
                    services.append(future.result())
                except Exception:
                    for other in futures:
                        if other.done() and other.exception() is None:
                            other.result().stop()
                    raise
        _, ingest, inference = services
        time.sleep(2.0)  # the profile updater joins its group before events flow
        result = asyncio.run(
            run(
                f"http://127.0.0.1:{ingest.ports['http']}",
                f"127.0.0.1:{inference.ports['grpc']}",
                params,
            )
        )
        result["peak_rss_bytes"] = {
            s.name.removeprefix("bench-"): peak_rss_bytes(s.proc.pid) for s in services
        }
        return result
    finally:
        for service in services:
            service.stop()
        worker.forget(platform.bootstrap)
        from pymongo import MongoClient

        client: MongoClient[dict[str, Any]] = MongoClient(platform.mongo_uri)
        client.drop_database(database)
        client.close()


def params_for(quick: bool) -> E2EParams:
    if quick:
        return E2EParams(rate=200, seconds=4, probe_users=5, probe_timeout=1.0)
    return E2EParams(rate=1000, seconds=60, probe_users=40, probe_timeout=5.0)


def main() -> None:
    from bench.stack import default_registry, shared_test_stack

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--registry", default=None)
    args = parser.parse_args()
    with shared_test_stack() as platform:
        result = measure(platform, default_registry(args.registry), params_for(args.quick))
    shown = {k: v for k, v in result.items() if k != "freshness_ms"}
    print(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode())
    print(f"saved {save_results('e2e', result)}")


if __name__ == "__main__":
    main()
