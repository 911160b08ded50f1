"""Exact final checks shared by the fault tests: profiles against what landed in Kafka, and
against a clean single pass over the same topic."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from pymongo.database import Database

from shared.interactions import interaction_id
from shared.topics import EVENTS_RAW
from tests.integration.test_profiles_exactly_once import assert_same
from tests.support.profiles_worker import applied_offsets, end_offsets, mongo, start_worker, unique
from tests.support.stack import Stack, wait_for


def caught_up(
    stack: Stack, db: Database, topic: str = EVENTS_RAW.name, timeout: float = 120
) -> int:
    """Wait until the worker writing ``db`` has applied every record of ``topic``."""
    total = sum(end_offsets(stack, topic).values())
    wait_for(lambda: applied_offsets(db, topic) >= total, timeout=timeout, interval=0.25)
    return total


def profile_counts_match(
    db: Database, counts: Counter[str], users: dict[str, str]
) -> dict[str, Any]:
    """Each user's profile ``version`` (events applied to it) equals the distinct events of
    that user in the topic: none applied twice, none missing."""
    expected: Counter[str] = Counter()
    for message_id in counts:
        expected[users[message_id]] += 1
    actual = {
        d["_id"]: int(d.get("version", 0))
        for d in db.profiles.find({"_id": {"$in": list(expected)}})
    }
    wrong = {user: (actual.get(user), n) for user, n in expected.items() if actual.get(user) != n}
    assert not wrong, f"profiles whose applied-event count differs (actual, expected): {wrong}"
    return {"profiles_checked": len(expected), "events_in_profiles": sum(actual.values())}


def interaction_counts_match(
    db: Database, counts: Counter[str], users: dict[str, str]
) -> dict[str, Any]:
    """The interaction store holds one document per distinct event of the load that landed in
    the topic (each names one item), under its user: none lost, none stored twice."""
    expected = {interaction_id(message_id): users[message_id] for message_id in counts}
    found = {
        d["_id"]: d["u"] for d in db.interactions.find({"_id": {"$in": list(expected)}}, ["u"])
    }
    missing = sorted(expected.keys() - found.keys())
    assert not missing, f"{len(missing)} interactions missing, e.g. {missing[:5]}"
    moved = {i: (found[i], u) for i, u in expected.items() if found[i] != u}
    assert not moved, f"interactions under the wrong user (stored, expected): {moved}"
    users_seen = list(set(expected.values()))
    stored = db.interactions.count_documents({"u": {"$in": users_seen}})
    assert stored == len(expected), f"{stored} stored for {len(expected)} events"
    return {"interactions_checked": len(expected)}


def clean_pass(stack: Stack, topic: str, prefix: str = "lumen_clean_pass") -> Database:
    """A fresh worker reads ``topic`` once, to its end, into a new database (returned)."""
    clean = mongo(stack, unique(prefix))
    worker = start_worker(stack, topic, clean.name)
    try:
        caught_up(stack, clean, topic)
    finally:
        worker.stop()
    return clean


def clean_pass_matches(
    stack: Stack, db: Database, topic: str = EVENTS_RAW.name, only: str | None = None
) -> int:
    """A fresh worker reads ``topic`` once into a new database; every document must equal the
    one the faulted run produced. With ``only``, just the documents whose id contains it: the
    topic is shared with other tests, whose identity merges across partitions (alias of ids
    on different partitions) depend on cross-partition timing and so are not reproducible by
    a second pass. Returns the number of profiles compared."""
    clean = clean_pass(stack, topic)
    assert_same(db, clean, only)
    if only is None:
        return clean.profiles.count_documents({})
    return clean.profiles.count_documents({"_id": {"$regex": re.escape(only)}})
