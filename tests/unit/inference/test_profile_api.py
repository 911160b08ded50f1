"""The stored profile document as the ProfileService message."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.inference.profile_api import to_proto
from services.inference.store import profile_view
from shared.packed_ids import pack_sequence, pack_set
from shared.profile_document import MalformedProfile, escape


def test_rfm_is_unset_before_the_first_purchase_and_carried_after() -> None:
    browsing = {
        "_id": "u1",
        "userId": "u1",
        "counts": {"byName": {"Item Viewed": 3}},
        "recentItems": ["7", "9"],
        "version": 3,
    }
    message = to_proto(browsing)
    assert not message.HasField("rfm")
    assert list(message.recent_items) == ["7", "9"] and message.version == 3

    bought = {
        **browsing,
        "purchases": 2,
        "revenue": 59.9,
        "lastPurchaseAt": datetime(2026, 1, 1, tzinfo=UTC),
        "rfm": {"r": 5, "f": 2, "m": 2, "segment": "potential_loyalist"},
    }
    message = to_proto(bought)
    assert message.HasField("rfm")
    assert (
        message.rfm.recency,
        message.rfm.frequency,
        message.rfm.monetary,
        message.rfm.segment,
    ) == (5, 2, 2, "potential_loyalist")
    assert message.purchases == 2 and abs(message.revenue - 59.9) < 1e-9


def test_packed_item_lists_are_read_as_ids() -> None:
    doc = {
        "_id": "u1",
        "recentItems": pack_sequence(["12", "7", "12"]),
        "purchasedItems": pack_set(["sku-9", "sku-1"]),
    }
    message = to_proto(doc)
    assert list(message.recent_items) == ["12", "7", "12"]
    assert list(message.purchased_items) == ["sku-1", "sku-9"]
    view = profile_view(doc)
    assert view.recent_items == ["12", "7", "12"] and view.seen_items == {"sku-1", "sku-9"}


def test_an_undecodable_item_list_is_named_in_the_error() -> None:
    truncated = pack_sequence(["300"])[:-1]  # ends inside a number
    with pytest.raises(MalformedProfile, match="purchasedItems of profile 'u1'"):
        to_proto({"_id": "u1", "purchasedItems": truncated})


def test_names_stored_escaped_come_back_as_written() -> None:
    doc = {
        "_id": "u1",
        "traits": {escape("plan.tier"): "pro"},
        "counts": {"byName": {escape("v2.checkout"): 2}},
        "affinity": {escape("$sci.fi"): 0.5},
    }
    message = to_proto(doc)
    assert dict(message.traits) == {"plan.tier": "pro"}
    assert dict(message.event_counts_by_name) == {"v2.checkout": 2}
    assert dict(message.category_affinity) == {"$sci.fi": 0.5}


def test_a_counter_of_the_wrong_type_is_named_like_an_item_list() -> None:
    with pytest.raises(MalformedProfile, match=r"counts\.byType of profile 'u1'"):
        to_proto({"_id": "u1", "counts": {"byType": {"track": "many"}}})
