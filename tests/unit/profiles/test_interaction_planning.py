"""The interaction store's writes and the catalogue's removal mark, planned without MongoDB."""

from __future__ import annotations

from typing import Any, cast

from pymongo import DeleteMany, InsertOne, UpdateMany, UpdateOne

from services.profiles.planner import INTERACTIONS, WRITE_ORDER, Plan, Snapshot
from shared.mongo import ITEMS, PROFILES
from tests.unit.profiles.test_planner import NOW, T0, event, plan


def rated(item: str, stars: float, message_id: str, **ids: Any) -> Any:
    return event(
        event="Item Rated",
        properties={"itemId": item, "rating": stars},
        messageId=message_id,
        **ids,
    )


def inserted(result: Plan) -> dict[str, dict[str, Any]]:
    """_id -> the document each planned interaction insert writes (without its _id)."""
    found = {}
    for op in result.writes[INTERACTIONS]:
        if type(op) is InsertOne:
            doc = dict(cast(dict[str, Any], op._doc))
            found[doc.pop("_id")] = doc
    return found


def test_each_applied_interaction_is_stored_once_with_its_kind_and_weight() -> None:
    order = event(
        event="Order Completed",
        userId="u1",
        messageId="m-order",
        properties={"products": [{"product_id": "p1"}, {"product_id": "p2"}]},
    )
    result = plan([rated("i9", 4, "m-rate", userId="u1"), order])
    docs = inserted(result)
    assert docs == {
        "m-rate:0": {"u": "u1", "i": "i9", "k": "rating", "t": T0, "w": 4 * 0.8},
        "m-order:0": {"u": "u1", "i": "p1", "k": "purchase", "t": T0, "w": 5.0},
        "m-order:1": {"u": "u1", "i": "p2", "k": "purchase", "t": T0, "w": 5.0},
    }
    # Written with the profile, in the batch's transaction.
    assert WRITE_ORDER.index(INTERACTIONS) == WRITE_ORDER.index(PROFILES) + 1


def test_an_event_sent_twice_in_one_batch_is_planned_once() -> None:
    again = rated("i1", 4, "m1", userId="u1")
    result = plan([again, again])
    assert list(inserted(result)) == ["m1:0"] and len(result.writes[INTERACTIONS]) == 1


def test_events_without_an_item_or_of_an_erased_id_store_nothing() -> None:
    signed_up = event(event="Signed Up", userId="u1", messageId="m1")
    erased = rated("i1", 5, "m2", userId="gone")
    result = plan([signed_up, erased], Snapshot(erased={"gone"}))
    assert result.writes[INTERACTIONS] == []
    assert result.result.suppressed == 1


def test_an_interaction_routed_to_a_linked_user_is_stored_under_that_user() -> None:
    holder = {"_id": "u1", "userId": "u1", "anonymousIds": ["a1"]}
    viewed = event(
        event="Item Viewed", anonymousId="a1", messageId="m1", properties={"itemId": "i1"}
    )
    result = plan([viewed], Snapshot(profiles={"u1": holder}))
    assert inserted(result)["m1:0"]["u"] == "u1"


def test_an_identify_moves_the_visitors_interactions_after_writing_the_batchs_own() -> None:
    visit = rated("i1", 3, "m1", anonymousId="a1")
    identify = event("identify", userId="u1", anonymousId="a1", messageId="m2")
    result = plan([visit, identify])
    ops = result.writes[INTERACTIONS]
    assert inserted(result)["m1:0"]["u"] == "a1"
    assert ops[-1] == UpdateMany({"u": "a1"}, {"$set": {"u": "u1"}})
    assert type(ops[0]) is InsertOne  # the visit's insert comes first


def test_a_stored_visitor_profile_merged_in_takes_its_stored_interactions_along() -> None:
    visitor = {"_id": "a1", "version": 2, "counts": {"byType": {"track": 2}}}
    identify = event("identify", userId="u1", anonymousId="a1")
    result = plan([identify], Snapshot(profiles={"a1": visitor}))
    assert result.writes[INTERACTIONS] == [UpdateMany({"u": "a1"}, {"$set": {"u": "u1"}})]


def test_a_refused_link_moves_nothing() -> None:
    other = {"_id": "u2", "userId": "u2", "anonymousIds": ["a1"]}
    identify = event("identify", userId="u1", anonymousId="a1")
    result = plan([identify], Snapshot(profiles={"u2": other}))
    assert result.writes[INTERACTIONS] == []


def test_an_erasure_deletes_the_interactions_of_every_id_of_the_user() -> None:
    holder = {"_id": "u1", "userId": "u1", "anonymousIds": ["a1", "a2"]}
    before = rated("i1", 5, "m1", userId="u1")
    erase = event("delete", userId="u1")
    after = rated("i2", 5, "m2", userId="u1")
    result = plan([before, erase, after], Snapshot(profiles={"u1": holder}, contributions={}))
    ops = result.writes[INTERACTIONS]
    assert ops[-1] == DeleteMany({"u": {"$in": ["a1", "a2", "u1"]}})
    assert list(inserted(result)) == ["m1:0"]  # the event after the erasure writes nothing


def test_item_deleted_marks_the_item_removed_and_an_upsert_revives_it() -> None:
    deleted = event(event="Item Deleted", userId="cms", properties={"item": {"id": "i1"}})
    result = plan([deleted])
    [mark] = result.writes[ITEMS]
    assert mark == UpdateOne(
        {"_id": "i1"}, {"$set": {"removed": True, "updatedAt": NOW}}, upsert=True
    )
    assert result.writes[PROFILES] == [] and result.writes[INTERACTIONS] == []
    assert result.catalogue == {}  # the cached categories stay (late events still count)
    upserted = event(
        event="Item Upserted",
        userId="cms",
        properties={"item": {"id": "i1", "title": "Heat", "description": "LA, 1995"}},
    )
    [revived] = plan([deleted, upserted]).writes[ITEMS][1:]
    assert revived._doc["$set"]["removed"] is False
    assert revived._doc["$set"]["description"] == "LA, 1995"
