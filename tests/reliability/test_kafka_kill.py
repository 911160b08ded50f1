"""Kafka ``kill -9`` and restart in the middle of a steady ingest load.

Requests during the outage get 503; every event acknowledged with 2xx reaches ``events.raw``
exactly once and is applied to its profile exactly once; ingest and the profile updater recover
without being restarted.
"""

from __future__ import annotations

import time

import pytest

from shared.topics import EVENTS_RAW
from tests.reliability.checks import (
    caught_up,
    clean_pass_matches,
    interaction_counts_match,
    profile_counts_match,
)
from tests.reliability.load import EventLoad, delivery, landed
from tests.reliability.services import WRITE_KEY, record, start_ingest, wait_ready
from tests.support.private_platform import PrivatePlatform
from tests.support.profiles_worker import mongo, start_worker, unique
from tests.support.stack import ServiceProcess

RATE = 250.0  # events/s
BEFORE, DOWN, AFTER = 6.0, 3.0, 8.0  # seconds of load before the kill, down, after recovery


def test_kafka_kill_9_under_ingest_load(
    platform: PrivatePlatform, owned: list[ServiceProcess]
) -> None:
    stack = platform.stack()
    db = mongo(stack, stack.mongo_database)
    ingest = start_ingest(platform)
    owned.append(ingest)
    wait_ready(ingest)
    worker = start_worker(stack, EVENTS_RAW.name, db.name, app_id=unique("lumen-profiles-kafka"))
    owned.append(worker)
    load = EventLoad(f"http://127.0.0.1:{ingest.ports['http']}", WRITE_KEY, rate=RATE)
    started = time.monotonic()
    try:
        load.start()
        time.sleep(BEFORE)
        killed_at = time.monotonic()
        platform.kill_kafka()
        time.sleep(DOWN)
        restarting = time.monotonic()
        back_at, metadata_at = platform.restart_kafka()
        wait_ready(ingest, timeout=60)
        ready_at = time.monotonic()
        time.sleep(AFTER)
    finally:
        load.stop()
    load.drain(timeout=60)
    elapsed = time.monotonic() - started

    # Recovery without a restart of their own: the very same processes are still serving.
    assert ingest.proc.poll() is None, ingest.log()[-3000:]
    assert worker.proc.poll() is None, worker.log()[-3000:]

    # While the broker was dead (after the probe noticed), every request got 503.
    outage = load.outcomes_between(killed_at + 1.0, back_at)
    assert outage and set(outage) == {"503"}, outage
    first_ok_after = min((t for t, o in load.timeline if t > back_at and o == "200"), default=None)
    assert first_ok_after is not None, "no request succeeded after the broker came back"

    counts, users = landed(stack, EVENTS_RAW.name, load.prefix)
    result = delivery(load, counts)
    caught_up(stack, db)
    worker.stop()
    ingest.stop()
    figures = {
        "rate_events_per_second": RATE,
        "duration_seconds": round(elapsed, 1),
        "events_generated": load.sent,
        "requests": load.requests,
        "retried_requests": load.retries,
        "outcomes": dict(load.statuses),
        "outage_outcomes": dict(outage),
        "broker_listening_after_restart_seconds": round(back_at - restarting, 1),
        "broker_metadata_after_restart_seconds": round(metadata_at - restarting, 1),
        "ingest_ready_after_broker_seconds": round(ready_at - back_at, 1),
        "outage_seconds": round(back_at - killed_at, 1),
        "first_2xx_after_restart_seconds": round(first_ok_after - back_at, 1),
        **result.as_dict(),
    }
    record("fault_kafka_kill", figures)
    assert load.unacknowledged == 0, "some batches were never acknowledged, even after drain"
    assert result.lost == 0, result
    if result.duplicated and result.duplicated == result.duplicated_after_a_refusal:
        # Known ingest defect (docs/reliability.md): a request answered 503 after its produce
        # timed out leaves its records in the producer's buffer; they are written when Kafka
        # returns, and the client's retry of the refused request is written a second time.
        pytest.xfail(f"ingest: a 503-refused batch was written after all: {result}")
    assert result.duplicated == 0, result

    profiles = profile_counts_match(db, counts, users)
    profiles |= interaction_counts_match(db, counts, users)
    compared = clean_pass_matches(stack, db, only=load.prefix)
    record("fault_kafka_kill", {**figures, **profiles, "clean_pass_profiles_compared": compared})
