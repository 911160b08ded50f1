"""Where the interaction store lives: measured on a real mongod and Kafka.

    .venv/bin/python -m bench.interaction_store                # the test stack (LUMEN_TEST_*)
    .venv/bin/python -m bench.interaction_store --documents 200000   # a quicker run

Three candidates for what recommender training reads of the product's own events:

(a) a plain collection written inside the profile updater's transaction as
    ``services/profiles/store.py`` writes it (the ids already stored are read in one query,
    the rest inserted; one upsert per interaction is timed beside it);
(b) a time-series collection (``timeField`` t, ``metaField`` u): MongoDB 6.0 refuses writes to
    one inside a multi-document transaction; the attempt is made and its error recorded, then
    the same documents are inserted outside transactions to measure the rest;
(c) no store: replay ``events.raw`` into the trainer, which needs the topic kept for the
    whole retention (bytes per event on the broker's disk, and the read + parse rate).

Figures per candidate: insert rate (documents/s; (a) in transactions of ``--batch`` documents
with a majority commit) over the first ``--timed-documents``, a full read sorted by time of
all ``--documents`` documents (s; the rest are bulk-loaded untimed, outside transactions, to
keep the run short), bytes per document (data + indexes on disk). Then the profile updater's own throughput with and
without the interaction writes: MovieLens 100k ratings applied through ``ProfileStore`` in
batches, in process, alternating the two modes (``--rounds`` each) into fresh databases; the
ratio of the medians is the cost of the store.

Results: printed and saved to docs/benchmarks/interaction_store.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import statistics
import time
import uuid
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from pymongo import InsertOne, MongoClient, UpdateOne
from pymongo.database import Database
from pymongo.errors import PyMongoError
from pymongo.write_concern import WriteConcern

from bench.common import machine
from shared import interactions as stored
from shared.mongo import ensure_interaction_indexes

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "interaction_store.json"
RETENTION_DAYS = 365
KINDS = ("view", "view", "view", "cart", "purchase", "rating")


def documents(count: int, users: int, items: int, seed: int = 11) -> Iterator[dict[str, Any]]:
    """``count`` interaction documents in time order over the last 300 days (inside the TTL),
    ``users`` users and ``items`` items (popularity skewed as real catalogues are)."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=300)
    step = timedelta(days=299) / count
    for n in range(count):
        kind = rng.choice(KINDS)
        yield stored.StoredInteraction(
            stored.interaction_id(f"bench-{n:09d}"),
            f"user-{rng.randrange(users):07d}",
            f"item-{int(items * rng.random() ** 2):06d}",
            kind,
            (start + step * n).replace(microsecond=(start + step * n).microsecond // 1000 * 1000),
            1.0 if kind == "view" else 3.0,
        ).to_document()


def chunks(docs: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for doc in docs:
        chunk.append(doc)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def disk_figures(db: Database[Any], collection: str, count: int) -> dict[str, Any]:
    stats = db.command("collStats", collection)
    on_disk = int(stats["storageSize"]) + int(stats["totalIndexSize"])
    return {
        "documents": count,
        "data_bytes_per_document": round(int(stats["storageSize"]) / count, 1),
        "index_bytes_per_document": round(int(stats["totalIndexSize"]) / count, 1),
        "disk_bytes_per_document": round(on_disk / count, 1),
        "gib_per_10e8_documents": round(on_disk / count * 1e8 / 1024**3, 2),
    }


def sorted_read(db: Database[Any], collection: str, sort: list[tuple[str, int]]) -> float:
    started = time.perf_counter()
    seen = sum(1 for _ in db[collection].find({}, {"_id": 0}).sort(sort).batch_size(20_000))
    seconds = time.perf_counter() - started
    assert seen > 0
    return round(seconds, 2)


def write_new(collection: Any, chunk: list[dict[str, Any]], session: Any = None) -> int:
    """As the updater writes the store: the ids stored already are read in one query, the
    rest inserted (``services/profiles/store.py``). Returns how many were inserted."""
    ids = [d["_id"] for d in chunk]
    found = {d["_id"] for d in collection.find({"_id": {"$in": ids}}, ["_id"], session=session)}
    new = [InsertOne(d) for d in chunk if d["_id"] not in found]
    if new:
        collection.bulk_write(new, ordered=True, session=session)
    return len(new)


def plain_collection(client: MongoClient[Any], args: argparse.Namespace) -> dict[str, Any]:
    """(a): in majority-committed transactions, with the store's (u, t) and TTL indexes in
    place, as the updater writes it."""
    db = client[f"lumen_bench_store_{uuid.uuid4().hex[:6]}"]
    ensure_interaction_indexes(db, RETENTION_DAYS)
    collection = db[stored.COLLECTION]
    commit = WriteConcern("majority")
    every = documents(args.documents, args.users, args.items)
    timed = min(args.timed_documents, args.documents)
    started = time.perf_counter()
    for chunk in chunks(itertools.islice(every, timed), args.batch):
        with client.start_session() as session, session.start_transaction(write_concern=commit):
            write_new(collection, chunk, session)
    seconds = time.perf_counter() - started
    for chunk in chunks(every, 10_000):  # the rest, untimed
        collection.insert_many(chunk, ordered=False)
    # The same interactions written once more insert nothing (the _id names each one).
    first = next(chunks(documents(args.documents, args.users, args.items), args.batch))
    # One upsert per interaction instead (what the updater wrote first), for comparison.
    upserts = chunks(documents(args.batch * 10, args.users, args.items, seed=5), args.batch)
    upsert_started = time.perf_counter()
    for chunk in upserts:
        ops = [UpdateOne({"_id": d.pop("_id")}, {"$setOnInsert": d}, upsert=True) for d in chunk]
        with client.start_session() as session, session.start_transaction(write_concern=commit):
            collection.bulk_write(ops, ordered=True, session=session)
    upsert_rate = args.batch * 10 / (time.perf_counter() - upsert_started)
    result = {
        "insert_rate_in_transactions_per_s": round(timed / seconds),
        "timed_documents": timed,
        "upsert_rate_in_transactions_per_s": round(upsert_rate),
        "rewritten_batch_inserted": write_new(collection, first),
        "read_sorted_by_time_seconds": sorted_read(db, stored.COLLECTION, [(stored.AT, 1)]),
        "read_sorted_by_user_then_time_seconds": sorted_read(
            db, stored.COLLECTION, [(stored.USER, 1), (stored.AT, 1)]
        ),
        **disk_figures(db, stored.COLLECTION, collection.count_documents({})),
    }
    if not args.keep:
        client.drop_database(db.name)
    return result


def time_series(client: MongoClient[Any], args: argparse.Namespace) -> dict[str, Any]:
    """(b): a time-series collection; the transactional write is attempted first."""
    db = client[f"lumen_bench_store_ts_{uuid.uuid4().hex[:6]}"]
    name = "interactions_ts"
    db.create_collection(
        name,
        timeseries={"timeField": stored.AT, "metaField": stored.USER, "granularity": "hours"},
        expireAfterSeconds=RETENTION_DAYS * 86400,
    )
    collection = db[name]
    sample = next(documents(1, args.users, args.items))
    refused: dict[str, Any] = {"refused": False}
    try:
        with client.start_session() as session, session.start_transaction():
            collection.insert_one(dict(sample), session=session)
    except PyMongoError as exc:
        details = getattr(exc, "details", None) or {}
        refused = {
            "refused": True,
            "error": type(exc).__name__,
            "code": details.get("code"),
            "message": str(details.get("errmsg") or exc)[:300],
        }
    every = documents(args.documents, args.users, args.items)
    timed = min(args.timed_documents, args.documents)
    started = time.perf_counter()
    for chunk in chunks(itertools.islice(every, timed), args.batch):
        collection.bulk_write([InsertOne(d) for d in chunk], ordered=False)
    seconds = time.perf_counter() - started
    for chunk in chunks(every, 10_000):  # the rest, untimed
        collection.insert_many(chunk, ordered=False)
    # No unique _id in a time-series collection: the same interaction written twice is kept
    # twice (a replayed batch would double every interaction in it).
    replayed = {**sample, "_id": stored.interaction_id("replayed")}
    collection.insert_one(dict(replayed))
    collection.insert_one(dict(replayed))
    copies = collection.count_documents({"_id": replayed["_id"]})
    count = collection.count_documents({})
    result = {
        "transaction_write": refused,
        "insert_rate_outside_transactions_per_s": round(timed / seconds),
        "timed_documents": timed,
        "copies_after_writing_one_interaction_twice": copies,
        "read_sorted_by_time_seconds": sorted_read(db, name, [(stored.AT, 1)]),
        **disk_figures(db, f"system.buckets.{name}", count),
    }
    if not args.keep:
        client.drop_database(db.name)
    return result


def kafka_log_bytes(topic: str) -> int:
    """Bytes of ``topic``'s partitions on the broker's disk (every Lumen broker keeps its log
    under the repository's var/ folder)."""
    root = Path(__file__).resolve().parents[1] / "var"
    return sum(
        f.stat().st_size
        for folder in root.glob(f"**/kafka/logs/{topic}-*")
        for f in folder.iterdir()
        if f.suffix == ".log"  # the index files are preallocated: their size says nothing
    )


def replay_topic(bootstrap: str, args: argparse.Namespace) -> dict[str, Any]:
    """(c): MovieLens ratings as ingest writes them to events.raw (uncompressed, as ingest's
    producer sends them), on a topic of their own: log bytes per event, then a full read and
    parse (what rebuilding the interactions from the topic costs each time)."""
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.admin import NewTopic

    from bench.profiles_bench import bare_read
    from services.profiles.parsing import parse_record
    from shared.events import encode
    from tests.support.movielens_events import movielens_folder, rating_events

    events = rating_events(movielens_folder(), f"ml{uuid.uuid4().hex[:4]}")[: args.events]
    for event in events:  # the fields ingest adds (docs/event-model.md, "Enrichment")
        event.update(
            receivedAt=event["timestamp"],
            sentAt=event["timestamp"],
            context={"sourceId": "bench", "library": {"name": "analytics-python"}},
        )
    topic = f"bench.store.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 6, 1)])
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    values = [encode(e) for e in events]
    for event, value in zip(events, values, strict=True):
        producer.send(topic, key=event["userId"].encode(), value=value)
    producer.flush()
    producer.close()
    time.sleep(1)
    log_bytes = kafka_log_bytes(topic)
    read_rate = asyncio.run(bare_read(bootstrap, topic, len(events)))
    started = time.perf_counter()
    for value in values:
        parse_record(value)
    parse_rate = len(values) / (time.perf_counter() - started)
    admin.delete_topics([topic])
    admin.close()
    per_event = log_bytes / len(events) if log_bytes else None
    replay_rate = 1 / (1 / read_rate + 1 / parse_rate) if read_rate else None
    return {
        "events": len(events),
        "log_bytes_per_event": round(per_event, 1) if per_event else None,
        "gib_per_10e8_events_kept": round(per_event * 1e8 / 1024**3, 2) if per_event else None,
        "read_rate_per_s": round(read_rate) if read_rate else None,
        "parse_rate_per_s": round(parse_rate),
        "replay_seconds_per_10e6_events": round(1e6 / replay_rate, 1) if replay_rate else None,
        "events_raw_retention_days_today": 7,
        "retention_needed_days": RETENTION_DAYS,
    }


def updater_throughput(mongo_uri: str, args: argparse.Namespace) -> dict[str, Any]:
    """Events/s of ``ProfileStore.apply`` over the MovieLens ratings, with and without the
    interaction writes, alternated in the same run."""
    from services.profiles import planner
    from services.profiles.settings import ProfilesSettings
    from services.profiles.store import ProfileStore, Record, ensure_schema
    from shared.events import encode
    from tests.support.movielens_events import movielens_folder, rating_events

    def one_pass(with_store: bool) -> float:
        settings = ProfilesSettings()
        name = f"lumen_bench_{uuid.uuid4().hex[:8]}"
        settings.mongo = settings.mongo.model_copy(update={"uri": mongo_uri, "database": name})
        store = ProfileStore.configured(settings)
        ensure_schema(store.db)
        events = rating_events(movielens_folder(), f"ml{uuid.uuid4().hex[:4]}")[: args.events]
        now = datetime.now(UTC)
        for n, event in enumerate(events):  # recent, so that trend windows count them too
            event["timestamp"] = (now - timedelta(seconds=len(events) - n)).isoformat()
        offsets = [0] * 6
        batches = []
        for start in range(0, len(events), args.updater_batch):
            records = []
            for event in events[start : start + args.updater_batch]:
                key = event["userId"].encode()
                partition = zlib.crc32(key) % len(offsets)
                records.append(Record("bench", partition, offsets[partition], key, encode(event)))
                offsets[partition] += 1
            batches.append(records)
        off = mock.patch.object(planner._Planning, "_store_interactions", lambda *_: None)
        try:
            with off if not with_store else contextlib.nullcontext():
                started = time.perf_counter()
                for records in batches:
                    store.apply(records, datetime.now(UTC))
                seconds = time.perf_counter() - started
            written = store.db[stored.COLLECTION].count_documents({})
            assert written == (len(events) if with_store else 0), written
        finally:
            store.client.drop_database(name)
            store.client.close()
        return len(events) / seconds

    rates: dict[str, list[float]] = {"with": [], "without": []}
    for _ in range(args.rounds):
        rates["without"].append(one_pass(False))
        rates["with"].append(one_pass(True))
    with_rate, without_rate = statistics.median(rates["with"]), statistics.median(rates["without"])
    # Each round's two passes ran back to back: their ratio sees the same machine load.
    paired = [w / wo for w, wo in zip(rates["with"], rates["without"], strict=True)]
    return {
        "events": args.events,
        "batch_events": args.updater_batch,
        "rounds": args.rounds,
        "events_per_s_with_store": [round(r) for r in rates["with"]],
        "events_per_s_without_store": [round(r) for r in rates["without"]],
        "ratio_of_medians": round(with_rate / without_rate, 3),
        "ratio_per_round": [round(r, 3) for r in paired],
        "ratio_with_to_without": round(statistics.median(paired), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--timed-documents", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=2000, help="documents per transaction")
    parser.add_argument("--events", type=int, default=100_000, help="MovieLens ratings used")
    parser.add_argument("--updater-batch", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["plain", "ts", "kafka", "updater"]
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    args = parser.parse_args()

    from bench.stack import shared_test_stack

    with shared_test_stack() as platform:
        client: MongoClient[Any] = MongoClient(platform.mongo_uri, tz_aware=True)
        results: dict[str, Any] = {"finished_at": None, "machine": machine()}
        steps = {
            "plain": ("plain_collection_in_transaction", lambda: plain_collection(client, args)),
            "ts": ("time_series_collection", lambda: time_series(client, args)),
            "kafka": ("replay_events_raw", lambda: replay_topic(platform.bootstrap, args)),
            "updater": (
                "profile_updater_throughput",
                lambda: updater_throughput(platform.mongo_uri, args),
            ),
        }
        earlier = json.loads(OUT.read_text()) if OUT.exists() else {}
        for key, (name, run) in steps.items():
            if key in args.skip:
                # A skipped step keeps its figures of the earlier run, marked as such.
                if name in earlier:
                    results[name] = {**earlier[name], "from_earlier_run": True}
                continue
            results[name] = run()
            print(name, json.dumps(results[name], indent=2), flush=True)
        client.close()
    results["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {OUT}")


if __name__ == "__main__":
    main()
