"""Benchmark of the streaming profile updater against the real local Kafka and mongod.

    .venv/bin/python -m bench.profiles_bench            # platform of `make up` (9092 / 27017)
    .venv/bin/python -m bench.profiles_bench --kafka 127.0.0.1:19092 \\
        --mongo "mongodb://127.0.0.1:27018/?replicaSet=lumen"

1. Throughput: all MovieLens 100k ratings (re-timed to now, so the trend windows count them)
   are written to a private topic; a bare aiokafka consumer reads the topic once (the
   baseline), the worker's Faust app with an agent that does nothing reads it once (what
   Faust's per-message path alone allows), then one worker applies it to an empty database;
   all three rates are reported. Each clock starts at the first batch read, which is left
   out of the count.
2. Storage: ``collStats`` of the profiles collection after that replay (943 users), as bytes
   per profile and GiB per million users: on disk (collection + indexes) and live (the same
   without the free blocks WiredTiger keeps for reuse). Then the same for ``--storage-copies``
   times as many users (every rating replayed once per copy under new user ids), which shows
   how the per-profile figure moves as the population grows.
3. Freshness: an ingest process takes events at ``--rate`` per second through its HTTP API; a
   MongoDB change stream sees each profile appear; p50/p99 of (change seen - HTTP 200).
4. Peak RSS of the worker.

Results: printed and saved to ``bench/results/profiles.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from bench.common import peak_rss_bytes, percentile, save_results
from bench.stack import Platform, ProfilesWorkerIdentity, start_profiles
from lumen_cli.platform.services import http_ok
from shared.events import encode
from tests.support.movielens_events import movielens_folder, rating_events
from tests.support.profiles_worker import metric
from tests.support.stack import REPO, ServiceProcess, free_port, start_service

GIB = 1024**3


def platform(args: argparse.Namespace) -> Platform:
    return Platform(args.kafka, args.mongo, private=False)


def start_worker(
    args: argparse.Namespace, database: str, worker: ProfilesWorkerIdentity, **extra: str
) -> ServiceProcess:
    return start_profiles(
        platform(args), database, worker, LUMEN_PROFILES_BATCH_SIZE=str(args.batch_size), **extra
    )


def applied(db: Any, topic: str) -> int:
    return sum(
        int(d["offset"]) + 1 for d in db.stream_offsets.find({"_id": {"$regex": f"^{topic}\\|"}})
    )


async def bare_read(bootstrap: str, topic: str, total: int) -> float | None:
    """Records per second a plain aiokafka consumer reads from ``topic`` (``total`` in all);
    None when they all came in one fetch, which leaves nothing to time."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=f"bench-bare-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        # The clock starts when the first records arrive (after the group join), so those
        # records are left out of the count: the rate covers what was read while it ran.
        seen, first, started = 0, 0, 0.0
        while seen < total:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            arrived = sum(len(records) for records in batch.values())
            if arrived and not seen:
                first, started = arrived, time.perf_counter()
            seen += arrived
        return (seen - first) / (time.perf_counter() - started) if seen > first else None
    finally:
        await consumer.stop()


def faust_read(args: argparse.Namespace, topic: str, total: int) -> dict[str, Any]:
    """The worker's Faust app with an agent that only counts (``bench/faust_read_only.py``)."""
    identity = ProfilesWorkerIdentity.new("profiles-bench-faust")
    out = identity.data_dir.with_suffix(".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    environment = {
        **os.environ,
        **platform(args).env("unused"),
        **identity.env(),
        "LUMEN_PROFILES_EVENTS_TOPIC": topic,
        "LUMEN_PROFILES_BATCH_SIZE": str(args.batch_size),
        "LUMEN_PROFILES_WEB_PORT": str(free_port()),
    }
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench.faust_read_only", str(total), str(out)],
            env=environment,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if not out.exists():
            raise RuntimeError(
                f"the no-op Faust reader wrote no result (exit {done.returncode})"
                f": {done.stderr[-2000:]}"
            )
        return dict(json.loads(out.read_text()))
    finally:
        out.unlink(missing_ok=True)
        if not args.keep:
            identity.forget(args.kafka)


def reusable_bytes(stats: dict[str, Any]) -> int:
    """Free blocks inside the collection's and its indexes' files (``collStats`` with
    ``indexDetails``): space of rewritten pages that WiredTiger reuses for later writes, so
    it does not grow with the number of profiles. How much of it a file holds depends on
    when checkpoints ran, which makes the raw on-disk size vary between identical runs."""
    parts = [stats.get("wiredTiger", {}), *stats.get("indexDetails", {}).values()]
    return sum(
        int(p.get("block-manager", {}).get("file bytes available for reuse", 0)) for p in parts
    )


def storage_figures(client: MongoClient, database: str) -> tuple[int, dict[str, Any]]:
    """(profiles, their size per profile on disk and live) from ``collStats`` after an fsync."""
    db = client[database]
    profiles = db.profiles.count_documents({})
    client.admin.command("fsync")
    stats = db.command("collStats", "profiles", indexDetails=True)
    on_disk = int(stats["storageSize"]) + int(stats["totalIndexSize"])
    live = on_disk - reusable_bytes(stats)
    return profiles, {
        "document_bytes_avg": int(stats.get("avgObjSize", 0)),
        "storage_size_bytes": int(stats["storageSize"]),
        "index_size_bytes": int(stats["totalIndexSize"]),
        "index_sizes": stats.get("indexSizes", {}),
        "bytes_per_profile": round(on_disk / max(1, profiles)),
        "gib_per_million_users": round(on_disk / max(1, profiles) * 1e6 / GIB, 3),
        "reusable_free_bytes": on_disk - live,
        "live_bytes_per_profile": round(live / max(1, profiles)),
        "live_gib_per_million_users": round(live / max(1, profiles) * 1e6 / GIB, 3),
    }


def retime(events: list[dict[str, Any]], now: datetime) -> None:
    """Move the events to ``now`` one millisecond apart, in order, so trend windows count them."""
    for n, event in enumerate(events):
        event["timestamp"] = (now + timedelta(milliseconds=n)).isoformat().replace("+00:00", "Z")


def throughput_and_storage(args: argparse.Namespace, client: MongoClient) -> dict[str, Any]:
    events = rating_events(movielens_folder(), f"ml{uuid.uuid4().hex[:4]}")[: args.events]
    retime(events, datetime.now(UTC))
    topic = f"bench.profiles.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=args.kafka)
    admin.create_topics([NewTopic(topic, 6, 1)])
    admin.close()
    producer = KafkaProducer(
        bootstrap_servers=args.kafka, acks="all", linger_ms=20, batch_size=256 * 1024
    )
    for event in events:
        producer.send(topic, key=event["userId"].encode(), value=encode(event))
    producer.flush()
    producer.close()
    total = len(events)
    bare_rate = asyncio.run(bare_read(args.kafka, topic, total))
    faust_only = faust_read(args, topic, total)

    database = f"lumen_bench_{uuid.uuid4().hex[:8]}"
    db = client[database]
    identity = ProfilesWorkerIdentity.new("profiles-bench")
    worker = start_worker(
        args,
        database,
        identity,
        LUMEN_PROFILES_EVENTS_TOPIC=topic,
        LUMEN_PROFILES_AUTO_OFFSET_RESET="earliest",
    )
    try:
        while (first := applied(db, topic)) == 0:
            time.sleep(0.02)
        started = time.perf_counter()  # the first batch is left out, as in the reads above
        while applied(db, topic) < total:
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        rss = peak_rss_bytes(worker.proc.pid)
        breakdown = {
            name: metric(worker, f"lumen_profiles_{name}")
            for name in (
                "mongo_write_duration_seconds_sum",
                "mongo_write_duration_seconds_count",
                "batch_size_events_sum",
                "batch_size_events_count",
            )
        }
    finally:
        worker.stop()
        if not args.keep:
            identity.forget(args.kafka)
    profiles, storage = storage_figures(client, database)
    rate = (total - first) / seconds if total > first else None
    faust_rate = faust_only["events_per_s"]
    result = {
        "events": total,
        "throughput_events_per_s": round(rate) if rate else None,
        "bare_read_events_per_s": round(bare_rate) if bare_rate else None,
        "ratio_to_bare_read": round(rate / bare_rate, 3) if rate and bare_rate else None,
        # The worker's Faust app with an agent that does nothing: Faust's own ceiling here.
        "faust_read_only": faust_only,
        "ratio_to_faust_read_only": round(rate / faust_rate, 3) if rate and faust_rate else None,
        "worker_peak_rss_bytes": rss,
        "seconds": round(seconds, 2),
        "worker_metrics": breakdown,
        "profiles": profiles,
        "storage": storage,
    }
    if not args.keep:
        client.drop_database(database)
        admin = KafkaAdminClient(bootstrap_servers=args.kafka)
        admin.delete_topics([topic])
        admin.close()
    return result


def storage_at_scale(args: argparse.Namespace, client: MongoClient) -> dict[str, Any]:
    """Bytes per profile for ``--storage-copies`` times the MovieLens users, to check the
    extrapolation from 943 profiles: each copy replays every rating under its own user ids.
    Applied in process through the worker's ``ProfileStore`` (in batches of ``--batch-size``,
    as a lagging worker takes them) rather than through Kafka, which would take about
    ``copies`` times the throughput phase and writes the same documents."""
    from services.profiles.settings import ProfilesSettings
    from services.profiles.store import ProfileStore, Record, ensure_schema

    settings = ProfilesSettings()
    name = f"lumen_bench_{uuid.uuid4().hex[:8]}"
    settings.mongo = settings.mongo.model_copy(update={"uri": args.mongo, "database": name})
    store = ProfileStore.configured(settings)
    ensure_schema(store.db)
    now, offsets = datetime.now(UTC), [0] * 6
    try:
        for copy in range(args.storage_copies):
            events = rating_events(movielens_folder(), f"ml{uuid.uuid4().hex[:4]}c{copy}")
            events = events[: args.events]
            retime(events, now)
            for start in range(0, len(events), args.batch_size):
                records = []
                for event in events[start : start + args.batch_size]:
                    key = event["userId"].encode()
                    partition = zlib.crc32(key) % len(offsets)  # one user, one partition
                    records.append(
                        Record("bench.scale", partition, offsets[partition], key, encode(event))
                    )
                    offsets[partition] += 1
                store.apply(records, datetime.now(UTC))
        profiles, storage = storage_figures(client, name)
    finally:
        store.client.close()
        if not args.keep:
            client.drop_database(name)
    return {"copies": args.storage_copies, "profiles": profiles, **storage}


def freshness(args: argparse.Namespace, client: MongoClient) -> dict[str, Any]:
    database = f"lumen_bench_{uuid.uuid4().hex[:8]}"
    db = client[database]
    http, grpc_port = free_port(), free_port()
    ingest = start_service(
        "ingest-bench",
        "services.ingest",
        {
            **platform(args).env(database),
            "LUMEN_INGEST_HTTP_PORT": str(http),
            "LUMEN_INGEST_GRPC_PORT": str(grpc_port),
            "LUMEN_INGEST_METRICS_PORT": str(free_port()),
        },
        ready=lambda: http_ok(f"http://127.0.0.1:{http}/healthz"),
        ports={"http": http},
    )
    identity = ProfilesWorkerIdentity.new("profiles-bench")
    worker = start_worker(args, database, identity)  # events.raw, from its end
    acked: dict[str, float] = {}
    seen: dict[str, float] = {}
    stream = db.profiles.watch([{"$match": {"operationType": {"$in": ["insert", "update"]}}}])
    watching = threading.Event()

    def watch() -> None:
        watching.set()
        with contextlib.suppress(PyMongoError):  # closing the stream ends the loop
            for change in stream:
                key = str(change["documentKey"]["_id"])
                seen.setdefault(key, time.time())

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    watching.wait()
    try:
        time.sleep(5)  # the worker joins its group and fixes its start position
        prefix = f"fresh-{uuid.uuid4().hex[:6]}"
        per_request = max(1, args.rate // 20)  # 20 requests per second
        n = 0
        deadline = time.time() + args.seconds
        with httpx.Client(auth=("lumen-dev-key", ""), timeout=10) as session:
            next_send = time.time()
            while time.time() < deadline:
                users = [f"{prefix}-{n + i}" for i in range(per_request)]
                batch = [
                    {
                        "type": "track",
                        "userId": user,
                        "event": "Item Viewed",
                        "properties": {"itemId": str(i % 1682)},
                    }
                    for i, user in enumerate(users)
                ]
                response = session.post(f"http://127.0.0.1:{http}/v1/batch", json={"batch": batch})
                now = time.time()
                if response.status_code == 200:
                    for user in users:
                        acked[user] = now
                n += per_request
                next_send += 1 / 20
                time.sleep(max(0.0, next_send - time.time()))
        time.sleep(5)
        rss = peak_rss_bytes(worker.proc.pid)
    finally:
        stream.close()
        worker.stop()
        ingest.stop()
        if not args.keep:
            identity.forget(args.kafka)
    delays = sorted(seen[k] - t for k, t in acked.items() if k in seen)
    result = {
        "offered_rate_per_s": args.rate,
        "seconds": args.seconds,
        "acknowledged": len(acked),
        "reflected": len(delays),  # the percentiles below cover only these
        "not_reflected_within_5s_after_the_run": len(acked) - len(delays),
        "p50_seconds": round(percentile(delays, 0.5), 4),
        "p99_seconds": round(percentile(delays, 0.99), 4),
        "max_seconds": round(delays[-1] if delays else 0.0, 4),
        "worker_peak_rss_bytes": rss,
    }
    if not args.keep:
        client.drop_database(database)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--kafka", default=os.environ.get("LUMEN_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    parser.add_argument(
        "--mongo",
        default=os.environ.get("LUMEN_MONGO_URI", "mongodb://127.0.0.1:27017/?replicaSet=lumen"),
    )
    parser.add_argument("--events", type=int, default=100_000, help="MovieLens ratings to replay")
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=2000, help="freshness: events per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="freshness: duration")
    parser.add_argument(
        "--storage-copies",
        type=int,
        default=16,
        help="storage at scale: copies of the MovieLens users (0 skips it)",
    )
    parser.add_argument("--skip-freshness", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the databases and topic")
    args = parser.parse_args()
    client: MongoClient[dict[str, Any]] = MongoClient(args.mongo, tz_aware=True)
    results: dict[str, Any] = {
        "targets": {
            "throughput_events_per_s": 10_000,
            "ratio_to_bare_read": 0.4,
            "freshness_p99_seconds": 1.0,
            "gib_per_million_users": 0.4,
        },
    }
    results["throughput"] = throughput_and_storage(args, client)
    print(json.dumps(results["throughput"], indent=2), flush=True)
    if args.storage_copies > 0:
        results["storage_at_scale"] = storage_at_scale(args, client)
        print(json.dumps(results["storage_at_scale"], indent=2), flush=True)
    if not args.skip_freshness:
        results["freshness"] = freshness(args, client)
        print(json.dumps(results["freshness"], indent=2), flush=True)
    print(f"saved {save_results('profiles', results)}")


if __name__ == "__main__":
    main()
