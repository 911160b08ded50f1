"""Identity, erasure, catalogue and trending rules of a batch, planned without MongoDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from pymongo import DeleteMany, UpdateOne
from pymongo.operations import DeleteOne

from services.profiles import identity
from services.profiles.identity import ERASED_IDS, IDENTITY_CLAIMS
from services.profiles.limits import TREND_EVENTS, Limits
from services.profiles.parsing import ParsedEvent, parse_event
from services.profiles.planner import Plan, Policy, Snapshot, offset_writes, plan_batch
from services.profiles.result import Record
from services.profiles.trends import HOUR, Retention, contribution_field, window_start
from services.profiles.updates import Rules
from shared.mongo import ITEMS, PROFILES
from shared.trends import ITEM, TREND_CONTRIBUTIONS, TRENDS, trend_id

NOW = datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
T0 = NOW - timedelta(minutes=20)
POLICY = Policy(hash_key=b"test-key", retention=Retention())


def event(kind: str = "track", minutes: float = 0, **fields: Any) -> ParsedEvent:
    at = (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")
    return parse_event({"type": kind, "timestamp": at, **fields})


def viewed(item: str, minutes: float = 0, **ids: Any) -> ParsedEvent:
    return event(event="Item Viewed", minutes=minutes, properties={"itemId": item}, **ids)


def plan(events: list[ParsedEvent], snapshot: Snapshot | None = None, **policy: Any) -> Plan:
    chosen = Policy(**{**POLICY.__dict__, **policy}) if policy else POLICY
    return plan_batch(events, snapshot or Snapshot(), chosen, NOW)


def doc_of(operation: Any) -> dict[str, Any]:
    """The update document of a planned operation."""
    return cast(dict[str, Any], operation._doc)


def upsert_of(result: Plan, key: str) -> dict[str, Any]:
    [update] = [
        doc_of(o)
        for o in result.writes[PROFILES]
        if type(o) is UpdateOne and o._filter == {"_id": key}
    ]
    return update


# -- identity --------------------------------------------------------------------------------


def test_identify_folds_the_anonymous_profile_in_and_claims_its_id() -> None:
    anonymous = {
        "_id": "a1",
        "version": 3,
        "counts": {"byType": {"track": 3}},
        "traits": {"plan": "free"},
    }
    result = plan(
        [event("identify", userId="u1", anonymousId="a1")], Snapshot(profiles={"a1": anonymous})
    )
    assert DeleteOne({"_id": "a1"}) in result.writes[PROFILES]
    update = upsert_of(result, "u1")
    assert update["$addToSet"] == {"anonymousIds": {"$each": ["a1"]}}
    assert update["$inc"]["version"] == 4 and update["$inc"]["counts.byType.track"] == 3
    assert update["$set"]["traits.plan"] == "free" and update["$set"]["userId"] == "u1"
    [claim] = result.writes[IDENTITY_CLAIMS]
    assert claim._filter == {"_id": POLICY.hash("a1")} and claim._upsert
    assert ("a1", None) in result.result.messages  # the merged profile's tombstone
    assert not result.result.refused and not result.needs


def test_an_id_another_profile_holds_is_not_claimed_again() -> None:
    holder = {"_id": "u2", "userId": "u2", "anonymousIds": ["a1"]}
    result = plan([viewed("i1", userId="u1", anonymousId="a1")], Snapshot(profiles={"u2": holder}))
    assert result.result.refused == {identity.CLAIMED: 1}
    assert "$addToSet" not in upsert_of(result, "u1")  # the event still counts for u1
    assert not result.writes[IDENTITY_CLAIMS]
    assert all(o._filter != {"_id": "u2"} for o in result.writes[PROFILES])


def test_two_identified_users_are_never_merged() -> None:
    other = {"_id": "u2", "userId": "u2", "version": 9}
    result = plan([event("alias", userId="u1", previousId="u2")], Snapshot(profiles={"u2": other}))
    assert result.result.refused == {identity.IDENTIFIED: 1}
    assert DeleteOne({"_id": "u2"}) not in result.writes[PROFILES]
    assert upsert_of(result, "u1")["$inc"]["version"] == 1


def test_an_erased_id_is_neither_linked_nor_given_a_profile_again() -> None:
    snapshot = Snapshot(erased={"a1", "u9"})
    result = plan(
        [event("identify", userId="u1", anonymousId="a1"), viewed("i1", userId="u9")], snapshot
    )
    assert result.result.refused == {identity.ERASED: 1}
    assert result.result.suppressed == 1
    assert [o._filter for o in result.writes[PROFILES]] == [{"_id": "u1"}]


def test_a_profile_at_its_anonymous_id_cap_links_no_more() -> None:
    full = {"_id": "u1", "userId": "u1", "anonymousIds": ["a0"]}
    rules = Rules(limits=Limits(anonymous_ids=1))
    result = plan(
        [event("identify", userId="u1", anonymousId="a1")],
        Snapshot(profiles={"u1": full}),
        rules=rules,
    )
    assert result.result.refused == {identity.TOO_MANY: 1}
    assert "$addToSet" not in upsert_of(result, "u1")


def test_an_anonymous_event_of_a_linked_id_updates_the_known_user() -> None:
    known = {"_id": "u1", "userId": "u1", "anonymousIds": ["a1"], "traits": {"plan": "pro"}}
    anonymous_event = event(
        anonymousId="a1",
        event="Item Viewed",
        properties={"itemId": "i1"},
        traits={"plan": "free", "tz": "CET"},
    )
    result = plan(
        [anonymous_event],
        Snapshot(profiles={"u1": known}, trend_slots_read={("u1", window_start(T0, HOUR))}),
    )
    update = upsert_of(result, "u1")
    assert update["$inc"]["counts.byName.Item Viewed"] == 1
    assert (
        update["$set"]["traits.tz"] == "CET" and "traits.plan" not in update["$set"]
    )  # fills only
    assert [o._filter for o in result.writes[PROFILES]] == [{"_id": "u1"}]
    assert not result.needs


# -- erasure ---------------------------------------------------------------------------------


def stored_share(user: str, item: str, views: int) -> dict[str, Any]:
    minute = window_start(T0, 60)
    return {
        "_id": f"{user}|{minute - minute % HOUR}",
        "user": user,
        "c": {contribution_field(minute, ITEM, item): {"v": views}},
    }


def test_a_delete_removes_the_profile_and_its_ids_and_takes_their_trending_share_back() -> None:
    snapshot = Snapshot(
        profiles={"u1": {"_id": "u1", "userId": "u1", "anonymousIds": ["a1"]}},
        contributions={"u1": [stored_share("u1", "i1", 2)], "a1": [stored_share("a1", "i1", 1)]},
    )
    result = plan(
        [
            event("delete", userId="u1"),
            viewed("i1", 1, userId="u1"),
            viewed("i2", 2, anonymousId="a1"),
        ],
        snapshot,
    )
    assert result.writes[PROFILES] == [DeleteMany({"_id": {"$in": ["a1", "u1"]}})]
    assert result.result.messages == [("a1", None), ("u1", None)]
    assert result.result.erased == 1 and result.result.suppressed == 2
    erased = {o._filter["_id"] for o in result.writes[ERASED_IDS]}
    assert erased == {POLICY.hash("a1"), POLICY.hash("u1")}  # by hash only
    minute = window_start(T0, 60)
    hour_doc = trend_id("1h", ITEM, minute - minute % HOUR, "i1")
    taken = [o._doc for o in result.writes[TRENDS] if o._filter == {"_id": hour_doc}]
    assert sum(d["$inc"]["views"] for d in taken) == -3
    assert hour_doc in result.emptied_trends
    assert DeleteMany({"user": {"$in": ["a1", "u1"]}}) in result.writes[TREND_CONTRIBUTIONS]
    assert not [o for o in result.writes[TRENDS] if o._upsert]  # nothing of theirs counted anew


def test_an_erasure_asks_for_the_contributions_it_has_not_read() -> None:
    snapshot = Snapshot(profiles={"u1": {"_id": "u1", "userId": "u1", "anonymousIds": ["a1"]}})
    assert plan([event("delete", userId="u1")], snapshot).needs.contributions == {"a1", "u1"}


def test_a_repeated_delete_takes_the_trending_share_back_once() -> None:
    snapshot = Snapshot(contributions={"u1": [stored_share("u1", "i1", 2)]})
    result = plan([event("delete", userId="u1"), event("delete", minutes=1, userId="u1")], snapshot)
    assert sum(o._doc["$inc"]["views"] for o in result.writes[TRENDS]) == -4  # 1m and 1h, once
    assert result.result.erased == 2


# -- catalogue -------------------------------------------------------------------------------


def test_a_catalogue_item_is_upserted_and_its_categories_serve_the_same_batch() -> None:
    upserted = event(
        event="Item Upserted",
        userId="catalogue",
        properties={"itemId": "i1", "title": "Heat", "categories": ["Crime"]},
    )
    result = plan(
        [upserted, viewed("i1", 1, userId="u1")],
        Snapshot(trend_slots_read={("u1", window_start(T0, HOUR))}),
    )
    [item] = result.writes[ITEMS]
    assert item._filter == {"_id": "i1"} and item._upsert
    assert item._doc["$set"] == {
        "title": "Heat",
        "categories": ["Crime"],
        "description": "",
        "attributes": {},
        "removed": False,  # an upsert revives an item marked removed
        "updatedAt": NOW,
    }
    assert result.catalogue == {"i1": ("Crime",)}
    assert set(upsert_of(result, "u1")["$set"]["affinity"]) == {"Crime"}
    keys = {o._doc["$setOnInsert"]["key"] for o in result.writes[TRENDS]}
    assert keys == {"i1", "Crime"}
    assert [o._filter for o in result.writes[PROFILES]] == [{"_id": "u1"}]  # no profile of its own


def test_an_interaction_without_categories_takes_the_stored_ones() -> None:
    snapshot = Snapshot(
        categories={"i1": ("Drama",)}, trend_slots_read={("u1", window_start(T0, HOUR))}
    )
    result = plan([viewed("i1", userId="u1")], snapshot)
    assert set(upsert_of(result, "u1")["$set"]["affinity"]) == {"Drama"}


def test_each_product_of_an_order_counts_with_its_own_categories() -> None:
    """products[]: every product is an interaction, with its own categories or its stored ones,
    in the profile and in trends; the order counts once in purchases."""
    snapshot = Snapshot(
        categories={"s2": ("Toys",)}, trend_slots_read={("u1", window_start(T0, HOUR))}
    )
    order = event(
        event="Order Completed",
        userId="u1",
        properties={
            "total": 9.0,
            "products": [{"product_id": "p1", "category": "Games/Board"}, {"sku": "s2"}],
        },
    )
    result = plan([order], snapshot)
    update = upsert_of(result, "u1")
    assert set(update["$set"]["affinity"]) == {"Games", "Games/Board", "Toys"}
    assert (update["$set"]["purchases"], update["$set"]["revenue"]) == (1, 9.0)
    purchases = {
        o._doc["$setOnInsert"]["key"]: o._doc["$inc"]["purchases"]
        for o in result.writes[TRENDS]
        if o._filter["_id"].startswith("1h|") and o._upsert
    }
    assert purchases == {"p1": 1, "s2": 1, "Games": 1, "Games/Board": 1, "Toys": 1}


# -- trending budget and offsets ---------------------------------------------------------------


def test_an_interaction_routed_by_a_link_of_the_batch_asks_for_its_budget_then_keeps_it() -> None:
    events = [event("identify", userId="u1", anonymousId="a1"), viewed("i1", 1, anonymousId="a1")]
    slot = ("u1", window_start(T0, HOUR))
    assert plan(events).needs.trend_slots == {slot}
    full = Snapshot(trend_slots_read={slot}, trend_counts={slot: 5})
    result = plan(events, full, trend_events_per_hour=5)
    assert not result.needs and result.result.limited == {TREND_EVENTS: 1}
    assert not result.writes[TRENDS]
    assert (
        upsert_of(result, "u1")["$inc"]["counts.byName.Item Viewed"] == 1
    )  # profile still updated


def test_the_highest_offset_of_each_partition_is_recorded() -> None:
    records = [
        Record("t", 0, 4, None, b""),
        Record("t", 0, 9, None, b""),
        Record("t", 1, 2, None, b""),
    ]
    ops = offset_writes(records, NOW)
    assert [(o._filter["_id"], doc_of(o)["$max"]["offset"]) for o in ops] == [
        ("t|0", 9),
        ("t|1", 2),
    ]
