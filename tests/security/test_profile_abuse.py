"""What a write-key holder can make the profile updater do, on the real Kafka and mongod.

A write key is public (it ships inside apps), so events are untrusted input: no event may stop
the stream for other users, take over another user's profile, or bring an erased person back.
One worker of our own reads a private topic into a private database.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import bson
import orjson
import pytest
from pymongo.database import Database

from services.profiles.identity import hashed_id
from services.profiles.limits import Limits, trait_size
from shared.topics import EVENTS_DLQ
from tests.support.profiles_worker import (
    create_topic,
    end_offsets,
    iso,
    metric,
    mongo,
    produce,
    read_topic,
    start_worker,
    unique,
)
from tests.support.stack import ServiceProcess, Stack, wait_for

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MAX_ANONYMOUS_IDS = 3
TREND_EVENTS_PER_HOUR = 5
HASH_KEY = "abuse-test-erasure-key"
MONGO_LIMIT = 16 * 1024 * 1024


@pytest.fixture(scope="module")
def topic(stack: Stack) -> str:
    return create_topic(stack)


@pytest.fixture(scope="module")
def db(stack: Stack) -> Database:
    return mongo(stack, unique("lumen_profile_abuse"))


@pytest.fixture(scope="module")
def worker(stack: Stack, topic: str, db: Database) -> Iterator[ServiceProcess]:
    service = start_worker(
        stack,
        topic,
        db.name,
        max_anonymous_ids=MAX_ANONYMOUS_IDS,
        max_trend_events_per_hour=TREND_EVENTS_PER_HOUR,
        erasure_hash_key=HASH_KEY,
    )
    yield service
    service.stop()


def track(
    user: str | None,
    at: datetime = T0,
    anonymous: str | None = None,
    item: str = "i1",
    name: str = "Item Viewed",
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "track",
        "event": name,
        "timestamp": iso(at),
        "properties": {"itemId": item},
        "messageId": unique("m"),
    }
    if user:
        event["userId"] = user
    if anonymous:
        event["anonymousId"] = anonymous
    return event


def identify(user: str, anonymous: str | None = None, **traits: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "identify",
        "userId": user,
        "timestamp": iso(T0),
        "traits": traits,
        "messageId": unique("m"),
    }
    if anonymous:
        event["anonymousId"] = anonymous
    return event


def profile(db: Database, key: str, version: int | None = None) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        doc = db.profiles.find_one({"_id": key})
        return doc if doc and (version is None or doc.get("version") == version) else None

    return wait_for(found, timeout=60)  # type: ignore[return-value]


def dlq_rows(stack: Stack, topic: str, start: dict[int, int]) -> list[dict[str, Any]]:
    rows = [orjson.loads(v) for _, v in read_topic(stack, EVENTS_DLQ.name, start, 1500) if v]
    return [r for r in rows if r.get("topic") == topic]


def test_a_profile_past_16_mb_goes_to_the_dlq_and_other_users_keep_flowing(
    stack: Stack, topic: str, db: Database, worker: ServiceProcess
) -> None:
    big, other = unique("near-16mb"), unique("bystander")
    doc: dict[str, Any] = {"_id": big, "userId": big, "version": 1, "traits": {"blob": ""}}
    doc["traits"]["blob"] = "x" * (MONGO_LIMIT - 40 - len(bson.encode(doc)))
    db.profiles.insert_one(doc)  # e.g. written before the caps existed
    start = end_offsets(stack, EVENTS_DLQ.name)
    produce(stack, topic, [track(big), track(other)])
    assert profile(db, other, version=1)  # the batch went on without the oversized record
    rows = wait_for(lambda: dlq_rows(stack, topic, start), timeout=30)
    assert isinstance(rows, list)
    assert [(r["reason"], r["payload"]["userId"]) for r in rows] == [("profile_too_large", big)]
    assert "16777216" in rows[0]["message"] or "BSONObj size" in rows[0]["message"]
    assert (db.profiles.find_one({"_id": big}, {"version": 1}) or {}).get("version") == 1
    # Later events of the user are isolated the same way; the stream does not stall.
    after = unique("bystander")
    produce(stack, topic, [track(big, item="i2"), track(after)])
    assert profile(db, after, version=1)
    assert worker.proc.poll() is None


def test_620_identify_calls_with_31_kb_traits_leave_a_bounded_profile(
    stack: Stack, topic: str, db: Database, worker: ServiceProcess
) -> None:
    """The reported reproduction: it pushed one profile past 16 MB and stalled every user."""
    user, other = unique("trait-flood"), unique("after-flood")
    limits = Limits()
    events = [identify(user, **{f"t{n}": "v" * 31_000}) for n in range(620)]
    events += [identify(user, **{f"s{n}": "w" * 1000}) for n in range(100)]  # fit one by one
    produce(stack, topic, [*events, track(other)])
    assert profile(db, other, version=1)
    doc = profile(db, user, version=720)
    stored = doc.get("traits", {})
    assert sum(trait_size(k, v) for k, v in stored.items()) <= limits.traits_bytes
    assert not any(name.startswith("t") for name in stored)  # each one larger than a trait may be
    assert 0 < len(stored) < 100  # the 1 KB ones until the sum reached its cap
    assert len(bson.encode(doc)) < 2 * limits.traits_bytes
    assert metric(worker, "lumen_profiles_limited_total") >= 620 + 100 - len(stored)


def test_identify_and_alias_cannot_take_over_an_identified_users_profile(
    stack: Stack, topic: str, db: Database, worker: ServiceProcess
) -> None:
    victim, mallory = unique("victim"), unique("mallory")
    produce(stack, topic, [identify(victim, email_hash="v"), track(victim, item="secret")])
    before = profile(db, victim, version=2)
    produce(
        stack,
        topic,
        [
            identify(mallory, anonymous=victim),  # the reported takeover
            {"type": "alias", "userId": mallory, "previousId": victim, "timestamp": iso(T0)},
            track(mallory, anonymous=victim, item="m1"),
        ],
    )
    attacker = profile(db, mallory, version=3)  # each event applied, without the merge
    assert attacker.get("anonymousIds", []) == []
    assert "email_hash" not in attacker.get("traits", {})
    assert db.profiles.find_one({"_id": victim}) == before  # untouched
    assert metric(worker, "lumen_profiles_identity_refused_total") >= 3


def test_an_anonymous_id_is_claimed_once_and_a_user_absorbs_a_bounded_number(
    stack: Stack, topic: str, db: Database, worker: ServiceProcess
) -> None:
    visitor, owner, thief = unique("anon"), unique("owner"), unique("thief")
    produce(stack, topic, [track(None, anonymous=visitor, item="a1")])
    profile(db, visitor, version=1)
    produce(stack, topic, [identify(owner, anonymous=visitor)])
    profile(db, owner, version=2)
    produce(stack, topic, [identify(thief, anonymous=visitor)])
    assert profile(db, thief, version=1).get("anonymousIds", []) == []
    # The visitor's later anonymous events still reach the first claimant only.
    produce(stack, topic, [track(None, anonymous=visitor, at=T0 + timedelta(minutes=1))])
    assert profile(db, owner, version=3)["anonymousIds"] == [visitor]

    collector = unique("collector")
    visitors = [unique("v") for _ in range(MAX_ANONYMOUS_IDS + 2)]
    produce(stack, topic, [track(None, anonymous=v) for v in visitors])
    for v in visitors:
        profile(db, v, version=1)
    produce(stack, topic, [identify(collector, anonymous=v) for v in visitors])
    doc = profile(db, collector, version=MAX_ANONYMOUS_IDS + len(visitors))
    assert doc["anonymousIds"] == visitors[:MAX_ANONYMOUS_IDS]
    for v in visitors[MAX_ANONYMOUS_IDS:]:  # refused: their histories stay apart
        assert profile(db, v)["version"] == 1


def test_erasure_covers_linked_ids_and_their_events_arriving_later(
    stack: Stack, topic: str, db: Database, worker: ServiceProcess
) -> None:
    user, visitor, old = unique("gone"), unique("gone-anon"), unique("gone-old")
    produce(stack, topic, [track(None, anonymous=visitor), track(None, anonymous=old)])
    profile(db, visitor, version=1)
    profile(db, old, version=1)
    produce(
        stack,
        topic,
        [
            identify(user, anonymous=visitor, plan="pro"),
            {"type": "alias", "userId": user, "previousId": old, "timestamp": iso(T0)},
        ],
    )
    assert sorted(profile(db, user, version=4)["anonymousIds"]) == sorted([visitor, old])
    produce(stack, topic, [{"type": "delete", "userId": user, "timestamp": iso(T0)}])
    wait_for(lambda: db.profiles.find_one({"_id": user}) is None, timeout=60)

    # Later events of every id linked to the erased user, then one of another user.
    newcomer = unique("newcomer")
    later = T0 + timedelta(hours=1)
    produce(
        stack,
        topic,
        [
            track(None, anonymous=visitor, at=later),
            track(None, anonymous=old, at=later),
            track(user, at=later),
            identify(user, plan="back"),
            identify(newcomer, anonymous=visitor),  # an erased id is not linked again
        ],
    )
    assert profile(db, newcomer, version=1).get("anonymousIds", []) == []
    ids = [user, visitor, old]
    assert (
        db.profiles.count_documents(
            {"$or": [{"_id": {"$in": ids}}, {"anonymousIds": {"$in": ids}}]}
        )
        == 0
    )
    assert metric(worker, "lumen_profiles_events_suppressed_total") >= 4
    # The suppression list holds keyed hashes, not the ids.
    erased = {d["_id"] for d in db.erased_ids.find()}
    assert {hashed_id(HASH_KEY.encode(), i) for i in ids} <= erased
    raw = b"".join(bson.encode(d) for d in db.erased_ids.find())
    assert not any(i.encode() in raw for i in ids)


def test_one_user_counts_in_trending_only_up_to_an_hourly_budget(
    stack: Stack, topic: str, db: Database, worker: ServiceProcess
) -> None:
    user, fair, item = unique("pinner"), unique("fair"), unique("pinned")
    now = datetime.now(UTC)
    flood = [track(user, at=now, item=item) for _ in range(3 * TREND_EVENTS_PER_HOUR)]
    produce(stack, topic, [*flood, track(fair, at=now, item=item)])
    assert profile(db, user, version=len(flood))  # every event still reaches the profile
    profile(db, fair, version=1)
    hour = int(now.timestamp()) // 3600 * 3600
    trend = wait_for(lambda: db.trends.find_one({"_id": f"1h|item|{hour}|{item}"}), timeout=30)
    assert isinstance(trend, dict) and trend["views"] == TREND_EVENTS_PER_HOUR + 1
    share = db.trend_contributions.find_one({"user": user})
    assert share is not None and share["n"] == TREND_EVENTS_PER_HOUR
    # A visitor linked to the user shares the user's budget. The link is applied first: the
    # visitor's events are keyed by the anonymous id, so they may sit on another partition and
    # be read before the identify (the same-batch case is the planner's unit test).
    visitor = unique("pinner-anon")
    produce(stack, topic, [identify(user, anonymous=visitor)])
    assert profile(db, user, version=len(flood) + 1)
    produce(stack, topic, [track(None, now, visitor, item)])
    assert profile(db, user, version=len(flood) + 2)
    views = (db.trends.find_one({"_id": trend["_id"]}) or {}).get("views")
    assert views == TREND_EVENTS_PER_HOUR + 1
