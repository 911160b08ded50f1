"""The catalogue and the interaction store on a real mongod, written by the profile updater's
store: what an upsert and a delete leave in ``items``, and where interactions go when a visitor
identifies, when a user is erased and when a batch is applied twice."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from services.profiles.planner import Policy
from services.profiles.store import ProfileStore, Record, ensure_schema
from services.profiles.trends import Retention
from shared import catalogue
from shared import interactions as stored
from shared.events import encode
from shared.interactions import StoredInteraction
from tests.support.profiles_worker import iso, unique
from tests.support.stack import Stack

T0 = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)


@pytest.fixture
def db(stack: Stack) -> Iterator[Database[Any]]:
    client: MongoClient[Any] = MongoClient(stack.mongo_uri, tz_aware=True)
    database = client[unique("lumen_interactions")]
    ensure_schema(database)
    try:
        yield database
    finally:
        client.drop_database(database.name)
        client.close()


class Feed:
    """Applies events through the store, one record each on partition 0 of topic "t"."""

    def __init__(self, db: Database[Any]) -> None:
        policy = Policy(retention=Retention(minute_seconds=3600, hour_seconds=7200))
        self.store = ProfileStore(db.client, db, policy)
        self.offset = 0

    def records(self, events: list[dict[str, Any]]) -> list[Record]:
        made = [Record("t", 0, self.offset + n, None, encode(e)) for n, e in enumerate(events)]
        self.offset += len(events)
        return made

    def apply(self, *events: dict[str, Any]) -> list[Record]:
        records = self.records(list(events))
        self.store.apply(records, NOW)
        return records


def track(
    name: str, minutes: float, message_id: str | None = None, **fields: Any
) -> dict[str, Any]:
    event = {"type": "track", "event": name, "timestamp": iso(T0 + timedelta(minutes=minutes))}
    if message_id:
        event["messageId"] = message_id
    return {**event, **fields}


def interactions_of(db: Database[Any]) -> dict[str, StoredInteraction]:
    return {d["_id"]: StoredInteraction.from_document(d) for d in db[stored.COLLECTION].find()}


def test_an_upsert_fills_the_item_a_delete_marks_it_removed_and_an_upsert_revives_it(
    db: Database[Any],
) -> None:
    feed = Feed(db)
    item = {
        "id": "kettle-1",
        "title": "Kettle",
        "categories": ["Kitchen", "Electric"],
        "description": "A 1.7 l steel kettle.",
        "price": 29.5,
        "currency": "eur",
        "available": True,
        "attributes": {"colour": "red"},
    }
    feed.apply(track("Item Upserted", 0, userId="backend", properties={"item": item}))
    doc = catalogue.CatalogueItem.from_document(db[catalogue.COLLECTION].find_one({}) or {})
    assert doc.item_id == "kettle-1" and not doc.removed
    assert doc.text() == "Kettle Categories: Kitchen, Electric. A 1.7 l steel kettle."
    assert doc.attributes == {"price": 29.5, "currency": "EUR", "available": True, "colour": "red"}

    feed.apply(track("Item Deleted", 1, userId="backend", properties={"item": {"id": "kettle-1"}}))
    removed = db[catalogue.COLLECTION].find_one({"_id": "kettle-1"}) or {}
    assert removed[catalogue.REMOVED] is True and removed[catalogue.TITLE] == "Kettle"
    assert db[catalogue.COLLECTION].count_documents(catalogue.LIVE) == 0
    assert db.profiles.count_documents({}) == 0  # a catalogue change is nobody's interaction
    assert db[stored.COLLECTION].count_documents({}) == 0

    feed.apply(track("Item Upserted", 2, userId="backend", properties={"item": item}))
    assert db[catalogue.COLLECTION].count_documents(catalogue.LIVE) == 1


def test_interactions_are_stored_once_and_follow_the_visitor_into_the_user(
    db: Database[Any],
) -> None:
    feed = Feed(db)
    visit = [
        track("Item Viewed", 0, "m1", anonymousId="a1", properties={"itemId": "i1"}),
        track("Item Rated", 1, "m2", anonymousId="a1", properties={"itemId": "i2", "rating": 5}),
    ]
    records = feed.apply(*visit)
    feed.store.apply(records, NOW)  # a replay of the same records: skipped, nothing doubled
    replayed = feed.apply(*visit)  # the same events again at new offsets (a client's retry)
    assert len(replayed) == 2
    found = interactions_of(db)
    assert sorted(found) == ["m1:0", "m2:0"]
    assert {(i.user, i.item, i.kind, i.weight) for i in found.values()} == {
        ("a1", "i1", "view", 1.0),
        ("a1", "i2", "rating", 4.0),
    }
    assert found["m1:0"].at == T0

    feed.apply(
        {"type": "identify", "userId": "u1", "anonymousId": "a1", "timestamp": iso(T0)},
        track("Product Added", 3, "m3", anonymousId="a1", properties={"itemId": "i3"}),
    )
    found = interactions_of(db)
    assert {i.user for i in found.values()} == {"u1"}  # moved, and later ones routed to u1
    assert sorted(found) == ["m1:0", "m2:0", "m3:0"]
    by_time = [d[stored.ITEM] for d in db[stored.COLLECTION].find({"u": "u1"}).sort("t", 1)]
    assert by_time == ["i1", "i2", "i3"]


def test_erasure_deletes_the_interactions_of_every_id_of_the_user(db: Database[Any]) -> None:
    feed = Feed(db)
    feed.apply(
        track("Item Viewed", 0, "m1", anonymousId="a9", properties={"itemId": "i1"}),
        {"type": "identify", "userId": "u9", "anonymousId": "a9", "timestamp": iso(T0)},
        track(
            "Order Completed",
            2,
            "m2",
            userId="u9",
            properties={
                "products": [{"product_id": "p1", "price": 3}, {"product_id": "p2", "price": 4}]
            },
        ),
        track("Item Viewed", 3, "m3", userId="other", properties={"itemId": "i1"}),
    )
    assert db[stored.COLLECTION].count_documents({"u": "u9"}) == 3
    feed.apply({"type": "delete", "userId": "u9", "timestamp": iso(T0)})
    feed.apply(track("Item Viewed", 5, "m4", anonymousId="a9", properties={"itemId": "i2"}))
    assert sorted(interactions_of(db)) == ["m3:0"]  # only the other user's


def test_an_event_without_a_message_id_is_named_by_its_record(db: Database[Any]) -> None:
    feed = Feed(db)
    feed.apply(track("Item Viewed", 0, userId="u1", properties={"itemId": "i1"}))
    assert list(interactions_of(db)) == ["t/0/0:0"]


def test_start_up_indexes_the_store_and_a_changed_retention_updates_the_ttl_in_place(
    db: Database[Any],
) -> None:
    indexes = db[stored.COLLECTION].index_information()
    assert indexes[stored.USER_TIME_INDEX]["key"] == [("u", 1), ("t", 1)]
    assert indexes[stored.TTL_INDEX]["expireAfterSeconds"] == 365 * 86400
    ensure_schema(db, interactions_retention_days=30)
    ensure_schema(db, interactions_retention_days=30)  # idempotent
    indexes = db[stored.COLLECTION].index_information()
    assert indexes[stored.TTL_INDEX]["expireAfterSeconds"] == 30 * 86400
    plan = db[stored.COLLECTION].find({"u": "u1"}).sort("t", 1).explain()["queryPlanner"]
    assert "user_time" in str(plan["winningPlan"])
