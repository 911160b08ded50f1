"""Exactly-once effect: a worker killed with SIGKILL mid-stream and restarted, a replay of the
whole topic from offset 0, and two workers sharing (and rebalancing) the partitions all end
with the same documents as one clean pass."""

from __future__ import annotations

import random
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.database import Database

from tests.support.profiles_worker import (
    applied_offsets,
    create_topic,
    iso,
    metric,
    mongo,
    produce,
    start_worker,
    unique,
)
from tests.support.stack import Stack, wait_for

USERS = 120
EVENTS_PER_USER = 40
NAMES = ["Item Viewed"] * 6 + [
    "Item Added to Cart",
    "Order Completed",
    "Item Rated",
    "Recommendation Clicked",
]
COMPARED = ("profiles", "trends", "trend_contributions", "items", "interactions")
ERASED = len(range(7, USERS, 40))


def workload(prefix: str, seed: int = 7) -> list[dict[str, Any] | bytes]:
    """Counted, deterministic events of unique users, with recent timestamps so that the trend
    windows count them too; a few erasures and poison records mixed in."""
    rng = random.Random(seed)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    events: list[dict[str, Any] | bytes] = []
    for u in range(USERS):
        user = f"{prefix}-u{u}"
        moment = start + timedelta(seconds=rng.randint(0, 600))
        events.append(
            {
                "type": "identify",
                "userId": user,
                "anonymousId": f"{prefix}-a{u}",
                "timestamp": iso(moment),
                "traits": {"n": u, "tier": rng.choice("abc")},
            }
        )
        for n in range(EVENTS_PER_USER - 1):
            moment += timedelta(seconds=rng.choice([5, 30, 90, 2400]))
            name = rng.choice(NAMES)
            item = f"{prefix}-i{rng.randint(0, 80)}"
            props: dict[str, Any] = {"itemId": item, "categories": [f"c{hash(item) % 7}"]}
            if name == "Order Completed":
                props["price"] = round(rng.uniform(1, 90), 2)
            if name == "Item Rated":
                props["rating"] = rng.randint(1, 5)
            events.append(
                {
                    "type": "track",
                    "userId": user,
                    "event": name,
                    "timestamp": iso(moment),
                    "properties": props,
                    "messageId": f"{user}-m{n}",
                }
            )
        if u % 40 == 7:
            events.append({"type": "delete", "userId": user, "timestamp": iso(moment)})
    rng.shuffle(events)  # users interleave; each user's own order is kept below
    by_user: dict[str, list[dict[str, Any] | bytes]] = {}
    for event in events:
        assert isinstance(event, dict)
        by_user.setdefault(event["userId"], []).append(event)
    for mine in by_user.values():
        mine.sort(key=order_within_user)
    ordered: list[dict[str, Any] | bytes] = []
    cursors = {u: iter(v) for u, v in by_user.items()}
    for event in events:
        assert isinstance(event, dict)
        ordered.append(next(cursors[event["userId"]]))
    for n in range(0, len(ordered), 997):
        ordered.insert(n, b"{broken")
    return ordered


def order_within_user(event: dict[str, Any] | bytes) -> tuple[bool, bool, str]:
    """identify first, then by time, the erasure last."""
    assert isinstance(event, dict)
    return event["type"] == "delete", event["type"] != "identify", event["timestamp"]


def snapshot(db: Database, only: str | None = None) -> dict[str, dict[Any, dict[str, Any]]]:
    """Every document of the compared collections (or those whose id contains ``only``),
    without the wall-clock fields."""
    out: dict[str, dict[Any, dict[str, Any]]] = {}
    for name in COMPARED:
        out[name] = {
            d["_id"]: {k: v for k, v in d.items() if k not in ("updatedAt", "expiresAt")}
            for d in db[name].find()
            if only is None or only in str(d["_id"])
        }
    return out


def assert_same(actual: Database, expected: Database, only: str | None = None) -> None:
    mine, clean = snapshot(actual, only), snapshot(expected, only)
    for name in COMPARED:
        assert mine[name].keys() == clean[name].keys(), name
        for key, doc in clean[name].items():
            assert mine[name][key] == doc, f"{name} {key!r} differs"


def run_to_end(db: Database, topic: str, total: int, timeout: float = 120) -> None:
    wait_for(lambda: applied_offsets(db, topic) >= total, timeout=timeout, interval=0.25)


@pytest.fixture(scope="module")
def stream(stack: Stack) -> tuple[str, int]:
    topic = create_topic(stack, partitions=6)
    total = produce(stack, topic, workload(unique("eo")))
    return topic, total


@pytest.fixture(scope="module")
def clean_pass(stack: Stack, stream: tuple[str, int]) -> Iterator[Database]:
    topic, total = stream
    db = mongo(stack, unique("lumen_profiles_clean"))
    worker = start_worker(stack, topic, db.name)
    try:
        run_to_end(db, topic, total)
    finally:
        worker.stop()
    assert db.profiles.count_documents({}) == USERS - ERASED
    # One stored interaction per item event of the users kept (each event names one item).
    assert db.interactions.count_documents({}) == (USERS - ERASED) * (EVENTS_PER_USER - 1)
    yield db


def test_kill_9_mid_stream_then_restart_and_replay_from_zero(
    stack: Stack, stream: tuple[str, int], clean_pass: Database
) -> None:
    topic, total = stream
    db = mongo(stack, unique("lumen_profiles_killed"))
    app_id = unique("lumen-profiles-kill")
    # Small batches and rare Kafka commits: the kill lands between MongoDB commits and the
    # Kafka offset commit, so the restart re-reads batches MongoDB already holds.
    slow = {"batch_size": 200, "commit_interval_seconds": 30}
    first = start_worker(stack, topic, db.name, app_id=app_id, **slow)
    wait_for(lambda: applied_offsets(db, topic) >= total // 3, timeout=90, interval=0.05)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()
    assert applied_offsets(db, topic) < total, "the worker finished before it was killed"

    second = start_worker(stack, topic, db.name, app_id=app_id)
    try:
        run_to_end(db, topic, total)
        replayed = metric(second, "lumen_profiles_events_skipped_total")
    finally:
        second.stop()
    assert replayed > 0, "the restart re-read nothing: the replay path was not exercised"
    assert_same(db, clean_pass)

    # A new consumer group reads the whole topic from offset 0 into the same database.
    again = start_worker(stack, topic, db.name)
    try:
        wait_for(
            lambda: metric(again, "lumen_profiles_events_skipped_total") >= total,
            timeout=90,
            interval=0.25,
        )
        assert metric(again, "lumen_profiles_events_processed_total") == 0
    finally:
        again.stop()
    assert_same(db, clean_pass)


def test_two_workers_share_partitions_and_a_rebalance_loses_nothing(
    stack: Stack, stream: tuple[str, int], clean_pass: Database
) -> None:
    topic, total = stream
    db = mongo(stack, unique("lumen_profiles_pair"))
    app_id = unique("lumen-profiles-pair")
    one = start_worker(stack, topic, db.name, app_id=app_id, batch_size=150)
    two = None
    try:
        wait_for(lambda: applied_offsets(db, topic) > 0, timeout=60, interval=0.05)
        two = start_worker(stack, topic, db.name, app_id=app_id, batch_size=150)
        # The group rebalances onto both workers (slow on a busy machine: wait for it).
        wait_for(lambda: metric(two, "lumen_profiles_assigned_partitions") > 0, timeout=90)
        assert one.stop() == 0  # graceful: drains, commits, leaves; two takes everything over
        wait_for(lambda: metric(two, "lumen_profiles_assigned_partitions") == 6, timeout=90)
        run_to_end(db, topic, total)
    finally:
        one.stop()
        if two is not None:
            two.stop()
    assert_same(db, clean_pass)
