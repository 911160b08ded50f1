"""First- and last-touch attribution of a profile, planned without MongoDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from pymongo import UpdateOne

from services.profiles.parsing import ParsedEvent, parse_event
from services.profiles.planner import Plan, Policy, Snapshot, plan_batch
from services.profiles.trends import HOUR
from services.profiles.updates import ProfileChange, Rules
from shared import attribution
from shared.mongo import PROFILES
from shared.profile_document import FIRST_TOUCH, LAST_TOUCH, MalformedProfile, ProfileDocument
from shared.trends import CHANNEL, TREND_CONTRIBUTIONS, TRENDS, trend_id

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
T0 = NOW - timedelta(hours=6)
POLICY = Policy(hash_key=b"test-key")
PAGE = "https://shop.example/lamps"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def page(minutes: float, user: str = "u1", **context: Any) -> ParsedEvent:
    stamp = at(minutes).isoformat().replace("+00:00", "Z")
    page_context = {"url": PAGE, **context.pop("page", {})}
    return parse_event(
        {
            "type": "page",
            "userId": user,
            "timestamp": stamp,
            "context": {"page": page_context, **context},
        }
    )


def from_campaign(minutes: float, source: str, medium: str, name: str, **ids: Any) -> ParsedEvent:
    return page(minutes, campaign={"source": source, "medium": medium, "name": name}, **ids)


def server_side(minutes: float, user: str = "u1") -> ParsedEvent:
    stamp = at(minutes).isoformat().replace("+00:00", "Z")
    return parse_event({"type": "track", "event": "Signed Up", "userId": user, "timestamp": stamp})


def plan(events: list[ParsedEvent], stored: dict[str, Any] | None = None) -> Plan:
    snapshot = Snapshot(profiles={stored["_id"]: stored} if stored else {})
    return plan_batch(events, snapshot, POLICY, NOW)


def set_fields(result: Plan, key: str = "u1") -> dict[str, Any]:
    [update] = [
        cast(dict[str, Any], o._doc)
        for o in result.writes[PROFILES]
        if type(o) is UpdateOne and o._filter == {"_id": key}
    ]
    return cast(dict[str, Any], update["$set"])


def stored_after(events: list[ParsedEvent], stored: dict[str, Any] | None = None) -> dict[str, Any]:
    """The profile document once the planned change is applied (as the writer would)."""
    change = ProfileChange("u1", stored, Rules())
    for event in events:
        change.apply(event, ())
    return change.materialize(NOW)


def test_the_first_touch_is_the_first_event_with_attribution_context() -> None:
    events = [
        server_side(0),  # a backend call: no context, no touch
        from_campaign(1, "google", "cpc", "spring"),
        from_campaign(90, "newsletter", "email", "may"),
    ]
    fields = set_fields(plan(events))
    assert fields[FIRST_TOUCH] == {
        "channel": attribution.PAID_SEARCH,
        "source": "google",
        "medium": "cpc",
        "campaign": "spring",
        "referrer": "",
        "at": at(1),
    }
    assert fields[LAST_TOUCH]["channel"] == attribution.EMAIL
    assert fields[LAST_TOUCH]["campaign"] == "may"
    assert fields[LAST_TOUCH]["at"] == at(90)


def test_a_stored_first_touch_is_never_replaced() -> None:
    stored = stored_after([from_campaign(0, "google", "cpc", "spring")])
    later = plan([from_campaign(120, "facebook", "paid_social", "retarget")], stored)
    fields = set_fields(later)
    assert FIRST_TOUCH not in fields  # not even rewritten with the same value
    assert fields[LAST_TOUCH]["channel"] == attribution.PAID_SOCIAL


def test_a_replayed_older_touch_changes_neither_touch() -> None:
    first = from_campaign(0, "google", "cpc", "spring")
    last = from_campaign(120, "newsletter", "email", "may")
    stored = stored_after([first, last])
    for replay in ([first], [first, last], [last]):
        fields = set_fields(plan(replay, stored))
        assert FIRST_TOUCH not in fields
        if LAST_TOUCH in fields:  # the same event again: the same value
            assert fields[LAST_TOUCH] == stored[LAST_TOUCH]
    assert stored[FIRST_TOUCH]["campaign"] == "spring"


def test_direct_does_not_replace_a_campaign_touch_within_the_session() -> None:
    events = [
        from_campaign(0, "google", "cpc", "spring"),
        page(10),  # direct (typed URL, reload) 10 minutes later: same visit
    ]
    assert set_fields(plan(events))[LAST_TOUCH]["channel"] == attribution.PAID_SEARCH


def test_direct_replaces_it_in_a_new_session() -> None:
    events = [from_campaign(0, "google", "cpc", "spring"), page(10), page(100)]
    last = set_fields(plan(events))[LAST_TOUCH]
    assert last["channel"] == attribution.DIRECT
    assert last["at"] == at(100)


def test_the_session_counts_other_events_as_activity() -> None:
    # The backend's events keep the visit open: a direct page 20 minutes after the last of
    # them is the same session, though 50 minutes after the campaign's touch.
    events = [from_campaign(0, "google", "cpc", "spring"), server_side(30), page(50)]
    assert set_fields(plan(events))[LAST_TOUCH]["channel"] == attribution.PAID_SEARCH


def test_a_non_direct_touch_always_replaces_the_last_one() -> None:
    events = [
        from_campaign(0, "google", "cpc", "spring"),
        page(5, page={"referrer": "https://t.co/x"}),
    ]
    last = set_fields(plan(events))[LAST_TOUCH]
    assert (last["channel"], last["referrer"]) == (attribution.SOCIAL, "t.co")


def test_navigation_within_the_site_leaves_the_touches_alone() -> None:
    stored = stored_after([from_campaign(0, "google", "cpc", "spring")])
    fields = set_fields(plan([page(5, page={"referrer": "https://shop.example/"})], stored))
    assert FIRST_TOUCH not in fields and LAST_TOUCH not in fields


def test_events_without_attribution_context_write_no_touch() -> None:
    fields = set_fields(plan([server_side(0), server_side(5)]))
    assert FIRST_TOUCH not in fields and LAST_TOUCH not in fields


def test_a_merge_keeps_the_earlier_first_touch_and_the_later_last_touch() -> None:
    anonymous = stored_after([from_campaign(0, "facebook", "cpc", "ad")])
    anonymous = {k: v for k, v in anonymous.items() if k != "userId"} | {"_id": "anon-1"}
    known = stored_after([from_campaign(60, "newsletter", "email", "may")])
    identify = parse_event(
        {
            "type": "identify",
            "userId": "u1",
            "anonymousId": "anon-1",
            "timestamp": at(70).isoformat().replace("+00:00", "Z"),
        }
    )
    snapshot = Snapshot(profiles={"u1": known, "anon-1": anonymous})
    fields = set_fields(plan_batch([identify], snapshot, POLICY, NOW))
    assert fields[FIRST_TOUCH]["channel"] == attribution.PAID_SOCIAL
    assert fields[FIRST_TOUCH]["at"] == at(0)
    assert LAST_TOUCH not in fields  # the known profile's own last touch is the later one
    assert known[LAST_TOUCH]["channel"] == attribution.EMAIL


def test_the_read_view_decodes_both_touches() -> None:
    doc = stored_after([from_campaign(0, "google", "cpc", "spring"), page(200)])
    profile = ProfileDocument.decode(doc)
    assert profile.first_touch is not None and profile.last_touch is not None
    assert (profile.first_touch.channel, profile.first_touch.campaign) == (
        attribution.PAID_SEARCH,
        "spring",
    )
    assert (profile.last_touch.channel, profile.last_touch.at) == (attribution.DIRECT, at(200))


def test_an_unreadable_stored_touch_names_its_field() -> None:
    with pytest.raises(MalformedProfile, match=r"lastTouch\.at"):
        ProfileDocument.decode({"_id": "u1", LAST_TOUCH: {"channel": "email", "at": "yesterday"}})
    with pytest.raises(MalformedProfile, match=r"firstTouch\.channel"):
        ProfileDocument.decode({"_id": "u1", FIRST_TOUCH: {"channel": None, "at": NOW}})


def viewed(minutes: float, item: str, **context: Any) -> ParsedEvent:
    stamp = at(minutes).isoformat().replace("+00:00", "Z")
    return parse_event(
        {
            "type": "track",
            "event": "Product Viewed",
            "userId": "u1",
            "timestamp": stamp,
            "properties": {"product_id": item},
            **({"context": context} if context else {}),
        }
    )


def channel_trends(result: Plan) -> dict[str, tuple[int, int]]:
    """(window start | channel) -> (views, purchases) of the hourly channel windows."""
    out = {}
    for operation in result.writes[TRENDS]:
        doc = cast(dict[str, Any], operation._doc)
        insert = doc.get("$setOnInsert", {})
        if insert.get("kind") == CHANNEL and insert.get("window") == "1h":
            out[insert["key"]] = (doc["$inc"]["views"], doc["$inc"]["purchases"])
    return out


def test_interactions_count_in_trends_under_the_users_last_touch_channel() -> None:
    events = [
        viewed(0, "7"),  # no touch yet: not counted by channel
        from_campaign(1, "google", "cpc", "spring"),
        viewed(2, "7"),  # a backend's event: the user's last touch names the channel
        viewed(3, "8", campaign={"source": "newsletter", "medium": "email"}),
    ]
    result = plan(events)
    assert channel_trends(result) == {attribution.PAID_SEARCH: (1, 0), attribution.EMAIL: (1, 0)}
    hour = int(at(2).timestamp()) // HOUR * HOUR
    contributions = [
        cast(dict[str, Any], o._doc)["$inc"] for o in result.writes[TREND_CONTRIBUTIONS]
    ]
    fields = {name for inc in contributions for name in inc}
    assert any(name.endswith(f"~h~{attribution.PAID_SEARCH}.v") for name in fields)
    # An erasure takes the channel windows back out too.
    stored = [{"c": {f"{hour}~h~paid_search": {"v": 1}}}]
    erase = parse_event({"type": "delete", "userId": "u1", "timestamp": "2024-03-01T11:00:00Z"})
    snapshot = Snapshot(profiles={}, contributions={"u1": stored})
    erased = plan_batch([erase], snapshot, POLICY, NOW)
    taken = [cast(dict[str, Any], o._doc) for o in erased.writes[TRENDS]]
    assert {"$inc": {"views": -1, "purchases": 0}} in taken
    assert any(
        o._filter == {"_id": trend_id("1h", CHANNEL, hour, attribution.PAID_SEARCH)}
        for o in erased.writes[TRENDS]
    )
