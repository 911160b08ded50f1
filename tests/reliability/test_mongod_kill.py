"""mongod ``kill -9`` and restart while the profile updater applies a steady stream: no event
lost, none double-counted; every document equals the one a clean single pass produces."""

from __future__ import annotations

import threading
import time
from typing import Any

from kafka import KafkaProducer
from pymongo.database import Database

from shared.events import encode, user_key
from tests.integration.test_profiles_exactly_once import assert_same, workload
from tests.reliability.checks import caught_up, clean_pass
from tests.reliability.services import record
from tests.support.private_platform import PrivatePlatform
from tests.support.profiles_worker import (
    applied_offsets,
    create_topic,
    metric,
    mongo,
    start_worker,
    unique,
)
from tests.support.stack import ServiceProcess, Stack, wait_for

RATE = 500.0  # events/s produced while the worker applies them


def produce_steadily(
    stack: Stack, topic: str, events: list[dict[str, Any] | bytes], rate: float
) -> threading.Thread:
    def run() -> None:
        producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all", linger_ms=5)
        started = time.monotonic()
        try:
            for n, event in enumerate(events):
                if isinstance(event, bytes):
                    producer.send(topic, key=b"poison", value=event)
                else:
                    producer.send(topic, key=user_key(event).encode(), value=encode(event))
                ahead = n / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
            producer.flush()
        finally:
            producer.close()

    thread = threading.Thread(target=run, name="steady-producer")
    thread.start()
    return thread


def version_gaps(db: Database, clean: Database) -> tuple[int, int]:
    """Events missing from, and applied twice to, the profiles (by their ``version`` counter)."""
    mine = {d["_id"]: int(d.get("version", 0)) for d in db.profiles.find({}, {"version": 1})}
    expected = {d["_id"]: int(d.get("version", 0)) for d in clean.profiles.find({}, {"version": 1})}
    lost = doubled = 0
    for key in mine.keys() | expected.keys():
        gap = expected.get(key, 0) - mine.get(key, 0)
        lost, doubled = lost + max(gap, 0), doubled + max(-gap, 0)
    return lost, doubled


def test_mongod_kill_9_under_profile_updater_load(
    platform: PrivatePlatform, owned: list[ServiceProcess]
) -> None:
    stack = platform.stack()
    topic = create_topic(stack, partitions=6)
    events = workload(unique("mk"))
    db = mongo(stack, unique("lumen_profiles_mongod_kill"))
    worker = start_worker(stack, topic, db.name, batch_size=200, retry_max_seconds=1)
    owned.append(worker)
    started = time.monotonic()
    producer = produce_steadily(stack, topic, events, RATE)
    try:
        wait_for(lambda: applied_offsets(db, topic) >= len(events) // 4, timeout=60, interval=0.05)
        applied_at_kill = applied_offsets(db, topic)
        platform.kill_mongo()
        killed_at = time.monotonic()
        time.sleep(3)
        mongod_restart_seconds = platform.start_mongo()
        back_at = time.monotonic()
        applied_after_restart = applied_offsets(db, topic)
        producer.join()
        caught_up(stack, db, topic)
        caught_up_at = time.monotonic()
        assert worker.proc.poll() is None, "the worker died instead of retrying"
        mongo_retries = metric(worker, "lumen_profiles_errors_total")
        replays_skipped = metric(worker, "lumen_profiles_events_skipped_total")
    finally:
        producer.join()
        worker.stop()
    assert applied_at_kill < len(events), "the stream was over before mongod was killed"
    # The fault hit mid-stream: work was left when mongod came back.
    assert applied_after_restart < len(events), "the stream was over before mongod came back"

    clean = clean_pass(stack, topic, "lumen_profiles_mongod_clean")
    lost, doubled = version_gaps(db, clean)
    profiles = db.profiles.count_documents({})

    record(
        "fault_mongod_kill",
        {
            "rate_events_per_second": RATE,
            "events": len(events),
            "poison_records": sum(isinstance(e, bytes) for e in events),
            "applied_when_killed": applied_at_kill,
            "mongod_down_seconds": round(back_at - killed_at, 1),
            "mongod_restart_seconds": round(mongod_restart_seconds, 1),
            "applied_when_back": applied_after_restart,
            "worker_write_errors": mongo_retries,
            "replayed_records_skipped": replays_skipped,
            "caught_up_after_restart_seconds": round(caught_up_at - back_at, 1),
            "duration_seconds": round(caught_up_at - started, 1),
            "profiles_compared_field_by_field": profiles,
            "documents_compared": sum(
                clean[c].count_documents({})
                for c in ("profiles", "trends", "trend_contributions", "items")
            ),
            "events_lost": lost,
            "events_double_counted": doubled,
        },
    )
    assert profiles > 0
    assert (lost, doubled) == (0, 0)
    assert_same(db, clean)
