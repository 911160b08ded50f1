"""Merges across partitions: the same profile whatever order the partitions are processed in.

An anonymous visitor's events are keyed (and partitioned) by the anonymous id, the ``identify``
that links it by the user id, so workers may apply either first. The store is driven directly on
the real mongod, once per order, into databases of their own, and the results are compared.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import MongoClient

from services.profiles.planner import Policy
from services.profiles.store import ProfileStore, Record, ensure_schema
from services.profiles.trends import Retention
from shared.events import encode
from shared.packed_ids import unpack
from tests.support.profiles_worker import iso, unique
from tests.support.stack import Stack

T0 = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
NOW = datetime(2024, 6, 2, tzinfo=UTC)
# Depend on the order in which events reach a profile (docs/profiles.md, "Identity").
ORDER_DEPENDENT = {"updatedAt", "recentItems", "sessions"}


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[MongoClient]:
    mongo: MongoClient = MongoClient(stack.mongo_uri, tz_aware=True)
    yield mongo
    mongo.close()


def at(minutes: float) -> str:
    return iso(T0 + timedelta(minutes=minutes))


def partitions(user: str, visitor: str) -> dict[int, list[dict[str, Any]]]:
    anonymous = [
        {
            "type": "track",
            "anonymousId": visitor,
            "event": "Item Viewed",
            "timestamp": at(0),
            "properties": {"itemId": "a1", "categories": ["Drama"]},
        },
        {
            "type": "identify",
            "anonymousId": visitor,
            "timestamp": at(1),
            "traits": {"plan": "free", "color": "red"},
        },
        {
            "type": "track",
            "anonymousId": visitor,
            "event": "Order Completed",
            "timestamp": at(90),
            "properties": {"itemId": "a2", "categories": ["Comedy"], "price": 12.5},
        },
    ]
    known = [
        {
            "type": "track",
            "userId": user,
            "event": "Item Viewed",
            "timestamp": at(-600),
            "properties": {"itemId": "u1", "categories": ["Drama", "Crime"]},
        },
        {
            "type": "identify",
            "userId": user,
            "anonymousId": visitor,
            "timestamp": at(2),
            "traits": {"plan": "pro"},
        },
        {
            "type": "track",
            "userId": user,
            "event": "Item Rated",
            "timestamp": at(3000),
            "properties": {"itemId": "u2", "categories": ["Crime"], "rating": 4},
        },
    ]
    return {0: anonymous, 1: known}


def run(
    client: MongoClient, order: list[tuple[int, int]], events: dict[int, list[dict[str, Any]]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Apply (partition, index) records one batch each, in ``order``; return the profiles and
    the interaction store's documents."""
    db = client[unique("lumen_identity_order")]
    ensure_schema(db)
    retention = Retention(minute_seconds=3600, hour_seconds=7200)
    store = ProfileStore(client, db, Policy(retention=retention))
    for partition, index in order:
        event = events[partition][index]
        store.apply([Record("t", partition, index, None, encode(event))], NOW)
    profiles = {d["_id"]: d for d in db.profiles.find()}
    interactions = {d["_id"]: d for d in db.interactions.find()}
    client.drop_database(db.name)
    return profiles, interactions


def comparable(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ORDER_DEPENDENT}


def test_a_merge_gives_the_same_profile_whichever_partition_is_applied_first(
    client: MongoClient,
) -> None:
    user, visitor = unique("user"), unique("visitor")
    events = partitions(user, visitor)
    anonymous_first = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    user_first = [(1, 0), (1, 1), (1, 2), (0, 0), (0, 1), (0, 2)]
    interleaved = [(1, 0), (0, 0), (1, 1), (0, 1), (1, 2), (0, 2)]
    runs = [run(client, order, events) for order in (anonymous_first, user_first, interleaved)]
    results = [profiles for profiles, _ in runs]

    for profiles in results:
        assert list(profiles) == [user]  # the visitor's profile is merged away in every order
        doc = profiles[user]
        assert doc["traits"] == {"plan": "pro", "color": "red"}  # the user's own win
        assert doc["anonymousIds"] == [visitor]
        assert sorted(unpack(doc["recentItems"])) == ["a1", "a2", "u1", "u2"]
    first = comparable(results[0][user])
    for profiles in results[1:]:
        other = comparable(profiles[user])
        assert other.keys() == first.keys()
        assert other["affinity"] == pytest.approx(first["affinity"])
        assert other["revenue"] == pytest.approx(first["revenue"])
        for key in first.keys() - {"affinity", "revenue"}:
            assert other[key] == first[key], key
    # The visitor's interactions end up the user's, whichever order: moved with the merge,
    # or routed to the user once the link is known.
    stored = [interactions for _, interactions in runs]
    assert {d["u"] for d in stored[0].values()} == {user}
    assert sorted(d["i"] for d in stored[0].values()) == ["a1", "a2", "u1", "u2"]
    assert stored[1] == stored[0] and stored[2] == stored[0]
