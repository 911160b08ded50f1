"""Folding a batch of events into one operator update of a profile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.profiles.parsing import ParsedEvent, parse_event
from services.profiles.updates import ProfileChange, Rules, day_number
from shared.currency import Rates
from shared.packed_ids import pack_sequence, pack_set, unpack

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
NOW = datetime(2024, 3, 2, tzinfo=UTC)
RULES = Rules(half_life_seconds=86400, session_gap_seconds=1800, recent_items_max=3)


def ev(minutes: float, name: str = "Item Viewed", user: str = "u1", **props: object) -> ParsedEvent:
    at = (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")
    return parse_event(
        {"type": "track", "userId": user, "event": name, "timestamp": at, "properties": props}
    )


def test_one_update_per_user_with_operators_only() -> None:
    change = ProfileChange("u1", None, RULES)
    for minute, item in ((0, "a"), (10, "b"), (50, "c"), (55, "d")):
        change.apply(ev(minute, itemId=item), ("Comedy",))
    change.apply(ev(60, "Order Completed", itemId="d", price=10.0), ("Comedy",))
    update = change.update(NOW)
    assert update["$inc"] == {
        "version": 5,
        "counts.byType.track": 5,
        "counts.byName.Item Viewed": 4,
        "counts.byName.Order Completed": 1,
        "sessions.count": 2,  # gap of 40 min after b
    }
    assert update["$min"] == {"firstSeen": T0}
    assert update["$max"] == {"lastSeen": T0 + timedelta(minutes=60)}
    assert unpack(update["$set"]["recentItems"]) == ["c", "d", "d"]  # the last 3, packed
    assert update["$push"]["activeDays"]["$each"] == [day_number(T0)]
    assert unpack(update["$set"]["purchasedItems"]) == ["d"]
    assert "$addToSet" not in update  # no new anonymous id
    assert update["$set"]["purchases"] == 1 and update["$set"]["revenue"] == 10.0
    assert update["$set"]["rfm"] == {"r": 5, "f": 1, "m": 1, "segment": "new"}
    assert update["$set"]["affinityAt"] == T0 + timedelta(minutes=60)


def test_a_stored_profile_continues_its_session_and_counts() -> None:
    stored = {
        "_id": "u1",
        "version": 7,
        "lastSeen": T0,
        "activeDays": [day_number(T0)],
        "sessions": {"count": 3},
        "recentItems": ["x", "y"],
    }
    change = ProfileChange("u1", stored, RULES)
    change.apply(ev(20, itemId="z"), ())
    update = change.update(NOW)
    assert "sessions.count" not in update["$inc"]  # 20 minutes later: same session
    assert "activeDays" not in update.get("$push", {})
    doc = change.materialize(NOW)
    assert doc["version"] == 8 and doc["sessions"] == {"count": 3}
    assert unpack(doc["recentItems"]) == ["x", "y", "z"]
    assert "purchasedItems" not in update["$set"]  # nothing bought: the stored set stays


def test_item_lists_grow_from_the_stored_packed_values() -> None:
    stored = {
        "_id": "u1",
        "lastSeen": T0,
        "recentItems": pack_sequence(["1", "2", "3"]),
        "purchasedItems": pack_set(["9", "4"]),
    }
    change = ProfileChange("u1", stored, RULES)
    change.apply(ev(5, "Order Completed", itemId="4", price=1.0), ())  # bought before
    update = change.update(NOW)
    assert unpack(update["$set"]["recentItems"]) == ["2", "3", "4"]
    assert "purchasedItems" not in update["$set"]
    change.apply(ev(6, "Order Completed", itemId="1", price=1.0), ())
    assert unpack(change.update(NOW)["$set"]["purchasedItems"]) == ["1", "4", "9"]


def test_older_array_documents_are_packed_by_their_next_write() -> None:
    stored = {"_id": "u1", "lastSeen": T0, "recentItems": ["a", "b"], "purchasedItems": ["a"]}
    change = ProfileChange("u1", stored, RULES)
    change.apply(ev(5, "Order Completed", itemId="b", price=1.0), ())
    update = change.update(NOW)
    assert isinstance(update["$set"]["recentItems"], bytes)
    assert unpack(update["$set"]["recentItems"]) == ["a", "b", "b"]
    assert sorted(unpack(update["$set"]["purchasedItems"])) == ["a", "b"]


def test_absorbing_an_anonymous_history() -> None:
    anonymous = {
        "_id": "anon-1",
        "version": 2,
        "counts": {"byType": {"page": 2}},
        "sessions": {"count": 1},
        "firstSeen": T0 - timedelta(days=1),
        "lastSeen": T0 - timedelta(days=1),
        "recentItems": pack_sequence(["p"]),
        "purchasedItems": pack_set(["p"]),
        "traits": {"plan": "free", "email": "a@x"},
    }
    known = {"_id": "u1", "version": 1, "traits": {"email": "u@x"}, "lastSeen": T0}
    change = ProfileChange("u1", known, RULES)
    change.absorb(anonymous)
    update = change.update(NOW)
    assert update["$inc"]["version"] == 2
    assert update["$inc"]["counts.byType.page"] == 2
    assert update["$min"] == {"firstSeen": T0 - timedelta(days=1)}
    assert update["$addToSet"]["anonymousIds"] == {"$each": ["anon-1"]}
    assert update["$set"]["traits.plan"] == "free"
    assert "traits.email" not in update["$set"]  # the known user's trait wins
    assert change.materialize(NOW)["version"] == 3
    assert unpack(update["$set"]["recentItems"]) == ["p"]
    assert unpack(update["$set"]["purchasedItems"]) == ["p"]


def test_an_order_counts_each_product_once_and_a_refund_takes_its_amount_back() -> None:
    rules = Rules(currency=Rates("USD", {"EUR": 2.0}))
    change = ProfileChange("u1", None, rules)
    products = [{"product_id": "p1", "price": 4.0, "quantity": 2}, {"sku": "s2", "price": 2.0}]
    order = ev(0, "Order Completed", products=products, currency="EUR")
    change.apply(order, [("Games",), ()])
    change.apply(ev(1, "Order Refunded", total=3.0, currency="EUR"), [])
    change.apply(ev(2, "Order Completed", product_id="p3", total=7.0, currency="JPY"), [()])
    update = change.update(NOW)
    assert update["$set"]["purchases"] == 2  # orders, not products
    assert update["$set"]["revenue"] == (8.0 + 2.0 - 3.0) * 2.0  # EUR at 2.0; JPY left out
    assert change.limited == {"revenue_currency": 1}
    assert sorted(unpack(update["$set"]["purchasedItems"])) == ["p1", "p3", "s2"]
    assert set(update["$set"]["affinity"]) == {"Games"}
    # A refund never takes revenue below zero (an order from before the history began).
    change.apply(ev(3, "Order Cancelled", total=1000.0), [])
    assert change.update(NOW)["$set"]["revenue"] == 0.0
