"""The profile updater on the real Kafka and mongod: one worker of our own reading a private
topic into a private database (so other tests' events do not interfere)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from pymongo.database import Database

from services.profiles.updates import day_number
from shared.messages import ProfileUpdated
from shared.packed_ids import unpack
from shared.profile_document import ProfileDocument
from shared.topics import EVENTS_DLQ, PROFILES_UPDATED
from shared.trends import top_trending
from tests.support.profiles_worker import (
    create_topic,
    end_offsets,
    iso,
    mongo,
    produce,
    read_topic,
    start_worker,
    unique,
)
from tests.support.stack import ServiceProcess, Stack, wait_for

T0 = datetime(2024, 1, 1, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def topic(stack: Stack) -> str:
    return create_topic(stack)


@pytest.fixture(scope="module")
def db(stack: Stack) -> Database:
    return mongo(stack, unique("lumen_profiles_test"))


@pytest.fixture(scope="module")
def worker(stack: Stack, topic: str, db: Database) -> Iterator[ServiceProcess]:
    service = start_worker(stack, topic, db.name, half_life_days=1, item_cache_seconds=0)
    yield service
    service.stop()


def track(
    user: str | None, name: str, at: datetime, anonymous: str | None = None, **props: Any
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "track",
        "event": name,
        "timestamp": iso(at),
        "properties": props,
        "messageId": unique("m"),
    }
    if user:
        event["userId"] = user
    if anonymous:
        event["anonymousId"] = anonymous
    return event


def profile(db: Database, key: str, version: int | None = None) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        doc = db.profiles.find_one({"_id": key})
        return doc if doc and (version is None or doc.get("version") == version) else None

    return wait_for(found, timeout=60)  # type: ignore[return-value]


def one(db: Database, collection: str, key: str) -> dict[str, Any]:
    doc = db[collection].find_one({"_id": key})
    assert doc is not None, f"no {collection} document {key!r}"
    return doc


def test_identify_and_alias_merge_anonymous_histories(
    stack: Stack, topic: str, db: Database, worker: ServiceProcess
) -> None:
    user, anon, old = unique("user"), unique("anon"), unique("old-id")
    produce(
        stack,
        topic,
        [
            track(None, "Item Viewed", T0, anonymous=anon, itemId="a1", categories=["Drama"]),
            track(None, "Item Viewed", T0 + timedelta(minutes=1), anonymous=anon, itemId="a2"),
            {
                "type": "page",
                "anonymousId": anon,
                "timestamp": iso(T0 + timedelta(minutes=2)),
                "traits": {},
                "properties": {"itemId": "a3"},
            },
            # An earlier anonymous id of the same person, merged by alias (an identified user's
            # profile would not be: tests/security/test_profile_abuse.py).
            track(None, "Item Viewed", T0 - timedelta(days=3), anonymous=old, itemId="o1"),
        ],
    )
    profile(db, anon, version=3)
    profile(db, old, version=1)
    produce(
        stack,
        topic,
        [
            {
                "type": "identify",
                "userId": user,
                "anonymousId": anon,
                "timestamp": iso(T0 + timedelta(minutes=3)),
                "traits": {"plan": "pro", "a.b": 1},
            },
            {
                "type": "alias",
                "userId": user,
                "previousId": old,
                "timestamp": iso(T0 + timedelta(minutes=4)),
            },
        ],
    )
    profile(db, user, version=6)
    # Later anonymous-only events land on the known user through the link.
    produce(
        stack,
        topic,
        [track(None, "Item Viewed", T0 + timedelta(minutes=5), anonymous=anon, itemId="a4")],
    )
    doc = profile(db, user, version=7)
    assert db.profiles.count_documents({"_id": {"$in": [anon, old]}}) == 0
    assert sorted(doc["anonymousIds"]) == sorted([anon, old])
    assert doc["userId"] == user
    assert doc["traits"] == {"plan": "pro", "a\uff0eb": 1}
    assert doc["counts"]["byType"] == {"track": 4, "page": 1, "identify": 1, "alias": 1}
    assert doc["counts"]["byName"]["Item Viewed"] == 4
    assert doc["firstSeen"] == T0 - timedelta(days=3)
    assert doc["lastSeen"] == T0 + timedelta(minutes=5)
    assert unpack(doc["recentItems"]) == ["a1", "a2", "a3", "o1", "a4"]
    assert sorted(doc["activeDays"]) == [day_number(T0 - timedelta(days=3)), day_number(T0)]
    assert doc["sessions"]["count"] == 2

    # The merged-away ids get tombstones on profiles.updated.
    def tombstones() -> set[bytes]:
        return {
            k
            for k, v in read_topic(stack, PROFILES_UPDATED.name, timeout_ms=1500)
            if v is None and k in (anon.encode(), old.encode())
        }

    assert wait_for(tombstones, timeout=30) == {anon.encode(), old.encode()}

    # The surviving profile's summary is a versioned message readers decode with its model.
    def latest_summary() -> ProfileUpdated | None:
        records = read_topic(stack, PROFILES_UPDATED.name, timeout_ms=1500)
        values = [v for k, v in records if k == user.encode()]
        summary = ProfileUpdated.decode_record(values[-1]) if values else None
        return summary if summary and summary.version == doc["version"] else None

    summary = wait_for(latest_summary, timeout=30)
    assert isinstance(summary, ProfileUpdated)
    assert summary.schema_version == 1 and summary.user_id == user and summary.key == user
    assert summary.recent_items == ["a1", "a2", "a3", "o1", "a4"]
    # Readers see the written document through the one read view: trait keys unescaped.
    view = ProfileDocument.decode(doc)
    assert view.traits == {"plan": "pro", "a.b": 1} and view.counts_by_name["Item Viewed"] == 4


def test_affinity_decay_matches_a_hand_computation(
    stack: Stack, topic: str, db: Database, worker: ServiceProcess
) -> None:
    user = unique("decay")
    produce(
        stack,
        topic,
        [
            track(user, "Item Viewed", T0, itemId="d1", categories=["A"]),  # weight 1
            track(
                user,
                "Order Completed",
                T0 + timedelta(days=1),
                itemId="d2",
                categories=["A", "B"],
                price=10,
            ),  # weight 5
            track(
                user, "Item Rated", T0 + timedelta(days=3), itemId="d3", categories=["B"], rating=5
            ),  # weight 4
            track(user, "Item Viewed", T0 + timedelta(days=2), itemId="d4", categories=["A"]),
        ],
    )
    doc = profile(db, user, version=4)
    # Half-life 1 day. At day 1: A = 1/2 + 5 = 5.5, B = 5. At day 3: A = 5.5/4 = 1.375,
    # B = 5/4 + 4 = 5.25. The late view of day 2 adds 1/2 to A: 1.875.
    assert doc["affinity"] == pytest.approx({"A": 1.875, "B": 5.25})
    assert doc["affinityAt"] == T0 + timedelta(days=3)
    assert unpack(doc["purchasedItems"]) == ["d2", "d3"]  # bought or rated: not recommended


def test_sessions_and_active_days(
    stack: Stack, topic: str, db: Database, worker: ServiceProcess
) -> None:
    user = unique("sessions")
    minutes = [0, 10, 39, 70, 99, 200, 24 * 60 + 5]  # gaps > 30 min before 70, 200 and day 2
    produce(
        stack,
        topic,
        [track(user, "Item Viewed", T0 + timedelta(minutes=m), itemId=str(m)) for m in minutes],
    )
    doc = profile(db, user, version=len(minutes))
    assert doc["sessions"]["count"] == 4
    assert doc["activeDays"] == [day_number(T0), day_number(T0) + 1]
    assert unpack(doc["recentItems"]) == [str(m) for m in minutes]


def test_rfm_scores_and_segment(
    stack: Stack, topic: str, db: Database, worker: ServiceProcess
) -> None:
    user = unique("rfm")
    buys = [
        track(user, "Order Completed", T0 + timedelta(days=d), itemId=f"r{d}", price=50.0)
        for d in range(6)
    ]
    later = track(user, "Item Viewed", T0 + timedelta(days=105), itemId="r-view")
    produce(stack, topic, [*buys, later])
    doc = profile(db, user, version=7)
    assert doc["purchases"] == 6
    assert doc["revenue"] == pytest.approx(300.0)
    # 100 days since the last purchase -> R 2; 6 purchases -> F 3; 300 spent -> M 3.
    assert doc["rfm"] == {"r": 2, "f": 3, "m": 3, "segment": "at_risk"}


def test_trending_top_n_per_item_and_category(
    stack: Stack, topic: str, db: Database, worker: ServiceProcess
) -> None:
    now = datetime.now(UTC)
    tag = unique("t")
    views = {f"{tag}-hot": 5, f"{tag}-warm": 3, f"{tag}-cold": 1}
    events = [
        track(f"{tag}-u{n}", "Item Viewed", now, itemId=item, categories=[f"{tag}-cat"])
        for item, count in views.items()
        for n in range(count)
    ]
    events.append(
        track(
            f"{tag}-u9",
            "Order Completed",
            now,
            itemId=f"{tag}-cold",
            categories=[f"{tag}-cat"],
            price=3,
        )
    )
    produce(stack, topic, events)

    def ranked() -> list[tuple[str, int, int]] | None:
        top = [
            (t.key, t.views, t.purchases)
            for t in top_trending(db, "item", "1m", limit=50)
            if t.key.startswith(tag)
        ]
        return top if len(top) == 3 else None

    assert wait_for(ranked, timeout=60) == [
        (f"{tag}-hot", 5, 0),
        (f"{tag}-warm", 3, 0),
        (f"{tag}-cold", 1, 1),
    ]
    by_purchases = top_trending(db, "item", "1h", by="purchases", limit=50)
    assert by_purchases[0].key == f"{tag}-cold"
    categories = {t.key: t.views for t in top_trending(db, "category", "1h", limit=50)}
    assert categories[f"{tag}-cat"] == 9


def test_erasure_removes_profile_links_and_trend_contributions(
    stack: Stack, topic: str, db: Database, worker: ServiceProcess
) -> None:
    now = datetime.now(UTC)
    user, anon, other = unique("erase"), unique("erase-anon"), unique("keep")
    item = unique("erase-item")
    produce(
        stack,
        topic,
        [
            {
                "type": "identify",
                "userId": user,
                "anonymousId": anon,
                "timestamp": iso(now),
                "traits": {"email": "e@example.com"},
            },
            track(user, "Item Viewed", now, itemId=item, categories=["Erasable"]),
            track(user, "Item Viewed", now, itemId=item),
            track(other, "Item Viewed", now, itemId=item),
        ],
    )
    profile(db, user, version=3)
    profile(db, other, version=1)
    minute = int(now.timestamp()) // 60 * 60
    trend = f"1m|item|{minute}|{item}"
    assert wait_for(lambda: (db.trends.find_one({"_id": trend}) or {}).get("views") == 3)
    start = end_offsets(stack, PROFILES_UPDATED.name)

    produce(stack, topic, [{"type": "delete", "userId": user, "timestamp": iso(now)}])
    wait_for(lambda: db.profiles.find_one({"_id": user}) is None, timeout=60)
    assert db.profiles.count_documents({"$or": [{"_id": anon}, {"anonymousIds": anon}]}) == 0
    assert db.trend_contributions.count_documents({"user": user}) == 0
    assert one(db, "trends", trend)["views"] == 1  # only the other user's view
    category_trend = f"1h|category|{minute // 3600 * 3600}|Erasable"
    assert db.trends.find_one({"_id": category_trend}) is None  # emptied windows go
    assert one(db, "profiles", other)["version"] == 1

    def tombstone() -> bool:
        return (user.encode(), None) in read_topic(stack, PROFILES_UPDATED.name, start, 1500)

    assert wait_for(tombstone, timeout=30)


def test_poison_events_go_to_the_dlq_and_the_stream_keeps_flowing(
    stack: Stack, topic: str, db: Database, worker: ServiceProcess
) -> None:
    user = unique("after-poison")
    start = end_offsets(stack, EVENTS_DLQ.name)
    produce(
        stack,
        topic,
        [
            b"\x00 not json",
            orjson.dumps({"type": "track", "event": "Item Viewed", "timestamp": iso(T0)}),
            orjson.dumps(track(user, "Item Viewed", T0, itemId={"$gt": ""})),
            track(user, "Item Viewed", T0, itemId="fine"),
        ],
    )
    assert unpack(profile(db, user)["recentItems"]) == ["fine"]

    def ours() -> list[dict[str, Any]]:
        rows = [orjson.loads(v) for _, v in read_topic(stack, EVENTS_DLQ.name, start, 1500) if v]
        return [r for r in rows if r.get("topic") == topic]

    rows = wait_for(lambda: len(ours()) >= 3 and ours())
    assert isinstance(rows, list)
    reasons = sorted(r["reason"] for r in rows)
    assert reasons == ["bad_field", "missing_user", "unparseable"]


def test_catalogue_events_let_profiles_resolve_categories(
    stack: Stack, topic: str, db: Database, worker: ServiceProcess
) -> None:
    item, user = unique("movie"), unique("fan")
    produce(
        stack,
        topic,
        [
            track(
                "catalogue",
                "Item Upserted",
                T0,
                itemId=item,
                title="Heat",
                categories=["Crime", "Thriller"],
            )
        ],
    )
    wait_for(lambda: db.items.find_one({"_id": item}), timeout=60)
    produce(stack, topic, [track(user, "Item Viewed", T0, itemId=item)])
    doc = profile(db, user)
    assert doc["affinity"] == {"Crime": 1.0, "Thriller": 1.0}
    assert one(db, "items", item)["title"] == "Heat"
    assert db.profiles.find_one({"_id": "catalogue"}) is None  # catalogue calls are not users


def test_user_ids_are_only_ever_exact_keys(
    stack: Stack, topic: str, db: Database, worker: ServiceProcess
) -> None:
    user = "$where." + unique("x")
    produce(stack, topic, [track(user, "Item Viewed", T0, itemId="1", categories=["$set.x"])])
    doc = profile(db, user)
    assert doc["userId"] == user
    assert doc["affinity"] == {"\uff04set\uff0ex": 1.0}
