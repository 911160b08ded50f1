"""The profile budget: every growing structure of a profile stops at its cap, by rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import bson

from services.profiles.limits import OTHER_EVENT_NAME, Limits, trait_size
from services.profiles.parsing import ParsedEvent, parse_event
from services.profiles.updates import ProfileChange, Rules
from shared.packed_ids import pack_set, unpack

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
NOW = datetime(2024, 3, 2, tzinfo=UTC)
SMALL = Limits(
    traits=3, trait_bytes=100, traits_bytes=200, event_names=2, anonymous_ids=2, purchased_items=3
)


def event(kind: str = "track", n: int = 0, **fields: Any) -> ParsedEvent:
    at = (T0 + timedelta(seconds=n)).isoformat().replace("+00:00", "Z")
    return parse_event({"type": kind, "userId": "u1", "timestamp": at, **fields})


def identify(n: int = 0, **traits: Any) -> ParsedEvent:
    return event("identify", n, traits=traits)


def change(base: dict[str, Any] | None = None, limits: Limits = SMALL) -> ProfileChange:
    return ProfileChange("u1", base, Rules(limits=limits))


def test_a_trait_larger_than_its_cap_is_refused_and_the_rest_applied() -> None:
    profile = change()
    profile.apply(identify(plan="pro", blob="x" * 200), ())
    assert profile.traits == {"plan": "pro"}
    assert profile.limited == {"trait_bytes": 1}
    assert profile.update(NOW)["$inc"]["version"] == 1  # the event itself counts


def test_new_trait_names_beyond_the_count_are_refused_existing_ones_still_change() -> None:
    profile = change({"_id": "u1", "traits": {"a": 1, "b": 2}})
    profile.apply(identify(c=3, d=4), ())
    profile.apply(identify(1, a=10), ())
    assert profile.traits == {"c": 3, "a": 10}
    assert profile.limited == {"traits": 1}


def test_the_sum_of_trait_sizes_stays_under_its_cap() -> None:
    profile = change()
    for n in range(5):
        profile.apply(identify(n, **{f"t{n}": "y" * 80}), ())  # 84 bytes each
    kept = profile.traits
    assert sum(trait_size(k, v) for k, v in kept.items()) <= SMALL.traits_bytes
    assert list(kept) == ["t0", "t1"]  # a third would take the sum to 252 bytes
    assert profile.limited == {"traits_bytes": 3}


def test_event_names_past_the_cap_share_one_counter() -> None:
    profile = change({"_id": "u1", "counts": {"byName": {"Seen": 4}}})
    for n, name in enumerate(["Seen", "New", "Third", "Fourth", "New"]):
        profile.apply(event(n=n, event=name), ())
    inc = profile.update(NOW)["$inc"]
    names = {k.removeprefix("counts.byName."): v for k, v in inc.items() if "byName" in k}
    assert names == {"Seen": 1, "New": 2, OTHER_EVENT_NAME: 2}
    assert profile.limited == {"event_names": 2}


def test_purchased_items_stop_at_their_cap() -> None:
    profile = change({"_id": "u1", "purchasedItems": pack_set({"1", "2"})})
    for n, item in enumerate(["3", "4", "5", "2"]):
        profile.apply(event(n=n, event="Order Completed", properties={"itemId": item}), ())
    assert sorted(unpack(profile.update(NOW)["$set"]["purchasedItems"])) == ["1", "2", "3"]
    assert profile.limited == {"purchased_items": 2}


def test_anonymous_ids_stop_at_their_cap_also_through_a_merge() -> None:
    profile = change()
    assert profile.link("a1") and profile.link("a2")
    assert not profile.can_link()
    assert not profile.link("a3")
    profile.absorb({"_id": "a2", "anonymousIds": ["a4"], "traits": {"x": 1}})
    assert profile.update(NOW)["$addToSet"]["anonymousIds"] == {"$each": ["a1", "a2"]}
    assert profile.limited == {"anonymous_ids": 2}


def test_merged_traits_obey_the_caps_and_never_override_the_users_own() -> None:
    profile = change({"_id": "u1", "traits": {"plan": "pro"}})
    profile.absorb({"_id": "anon", "traits": {"plan": "free", "big": "z" * 500, "ok": 1}})
    assert profile.traits == {"ok": 1}
    assert profile.limited == {"trait_bytes": 1}


def test_a_profile_at_every_default_cap_stays_far_below_16_mb() -> None:
    limits = Limits()
    long_id = "i" * 256
    traits = {
        f"t{n:03d}": "v" * (limits.traits_bytes // limits.traits - 8) for n in range(limits.traits)
    }
    doc = {
        "_id": long_id,
        "userId": long_id,
        "traits": traits,
        "counts": {
            "byName": {f"{n:04d}" + "n" * 252: 1 for n in range(limits.event_names + 1)},
            "byType": {t: 1 for t in ("track", "identify", "page", "screen")},
        },
        "anonymousIds": [f"{n:04d}" + "a" * 252 for n in range(limits.anonymous_ids)],
        "purchasedItems": pack_set({f"{n:04d}" + "p" * 252 for n in range(limits.purchased_items)}),
        "recentItems": pack_set({f"{n:04d}" + "r" * 252 for n in range(50)}),
        "activeDays": list(range(19000, 19366)),
        "affinity": {f"{n:02d}" + "c" * 254: 1.0 for n in range(32)},
    }
    size = len(bson.encode(doc))
    assert size <= limits.worst_case_bytes()
    assert limits.worst_case_bytes() < 1_048_576  # under 1 MB: 16 times below MongoDB's limit
