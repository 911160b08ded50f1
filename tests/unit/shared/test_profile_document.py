"""The profile document's key escaping and its decoded read view."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shared.packed_ids import pack_sequence, pack_set
from shared.profile_document import (
    EMPTY_KEY,
    MalformedProfile,
    ProfileDocument,
    Rfm,
    escape,
    unescape,
)


@pytest.mark.parametrize("name", ["Item Viewed", "a.b", "$set", "$where.x", "sci-fi", "品 目.種類"])
def test_escaped_names_round_trip_and_hold_no_dot_or_leading_dollar(name: str) -> None:
    stored = escape(name)
    assert "." not in stored and not stored.startswith("$")
    assert unescape(stored) == name


def test_a_nul_and_an_empty_name_still_make_storable_keys() -> None:
    assert "\x00" not in escape("a\x00b")
    assert escape("") == EMPTY_KEY


def _stored(**fields: Any) -> dict[str, Any]:
    """A document as the profile updater writes it (escaped keys, packed item lists)."""
    at = datetime(2026, 3, 1, 12, tzinfo=UTC)
    doc: dict[str, Any] = {
        "_id": "u42",
        "userId": "u42",
        "anonymousIds": ["anon-7"],
        "traits": {escape("plan.tier"): "pro", "address": {escape("$city"): "Lyon"}},
        "firstSeen": at,
        "lastSeen": at,
        "updatedAt": at,
        "counts": {
            "byType": {"track": 4, "page": 1},
            "byName": {escape("Item Viewed"): 3, escape("v1.checkout"): 1},
        },
        "sessions": {"count": 2},
        "activeDays": [20513, 20514],
        "recentItems": pack_sequence(["12", "7", "12"]),
        "purchasedItems": pack_set(["sku-9", "sku-1"]),
        "affinity": {escape("sci.fi"): 0.75},
        "purchases": 2,
        "revenue": 59.9,
        "rfm": {"r": 5, "f": 2, "m": 2, "segment": "potential_loyalist"},
        "version": 9,
    }
    doc.update(fields)
    return doc


def test_a_written_document_reads_back_unescaped_and_unpacked() -> None:
    view = ProfileDocument.decode(_stored())
    assert view.id == "u42" and view.user_id == "u42" and view.anonymous_ids == ["anon-7"]
    assert view.traits == {"plan.tier": "pro", "address": {"$city": "Lyon"}}
    assert view.counts_by_name == {"Item Viewed": 3, "v1.checkout": 1}
    assert view.counts_by_type == {"track": 4, "page": 1}
    assert view.affinity == {"sci.fi": 0.75}
    assert view.recent_items == ["12", "7", "12"]
    assert view.purchased_items == ["sku-1", "sku-9"]
    assert view.sessions == 2 and view.active_days == [20513, 20514]
    assert view.rfm == Rfm(5, 2, 2, "potential_loyalist")
    assert (view.purchases, view.revenue, view.version) == (2, 59.9, 9)
    assert view.last_seen == datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_a_projection_reads_missing_fields_as_empty() -> None:
    view = ProfileDocument.decode({"_id": "u1", "recentItems": pack_sequence(["3"])})
    assert view.recent_items == ["3"] and view.purchased_items == []
    assert view.rfm is None and view.user_id == "" and view.counts_by_name == {}
    assert view.last_seen is None and view.version == 0


def test_seen_items_join_purchases_with_other_tools_arrays_and_maps() -> None:
    doc = {
        "_id": "u1",
        "purchasedItems": pack_set(["1"]),
        "ratedItems": ["2"],
        "seenItems": {"3": True},
    }
    assert ProfileDocument.decode(doc).seen_items == {"1", "2", "3"}


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"purchasedItems": pack_sequence(["300"])[:-1]}, "purchasedItems"),  # cut in a number
        ({"recentItems": "7,9"}, "recentItems"),
        ({"counts": {"byName": {"a": "three"}}}, "counts.byName"),
        ({"counts": ["a"]}, "counts"),
        ({"sessions": {"count": None}}, "sessions.count"),
        ({"affinity": {"x": "high"}}, "affinity"),
        ({"revenue": "59.9"}, "revenue"),
        ({"purchases": True}, "purchases"),
        ({"rfm": {"r": "5"}}, "rfm.r"),
        ({"lastSeen": "2026-03-01"}, "lastSeen"),
        ({"traits": ["a"]}, "traits"),
        ({"anonymousIds": "anon-7"}, "anonymousIds"),
    ],
)
def test_a_malformed_field_is_one_error_naming_the_profile_and_field(
    fields: dict[str, Any], named: str
) -> None:
    with pytest.raises(MalformedProfile, match=rf"^{named} of profile 'u42'") as caught:
        ProfileDocument.decode(_stored(**fields))
    assert caught.value.field_name == named and caught.value.profile_id == "u42"


def test_a_document_without_an_id_is_malformed() -> None:
    with pytest.raises(MalformedProfile, match="_id"):
        ProfileDocument.decode({"userId": "u1"})
