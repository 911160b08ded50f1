"""Reading events.raw records: what the updater uses and what goes to the DLQ."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from services.profiles import parsing
from services.profiles.parsing import PoisonEvent, parse_event, parse_record

AT = "2024-05-01T10:00:00.123456Z"


def track(name: str, **props: object) -> dict[str, object]:
    return {"type": "track", "userId": "u1", "event": name, "timestamp": AT, "properties": props}


def test_item_interactions_follow_the_event_name_conventions() -> None:
    viewed = parse_event(track("Item Viewed", itemId=42, categories=["Comedy", "Drama"]))
    assert viewed.key == "u1"
    assert viewed.at == datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)  # milliseconds
    assert viewed.interaction is not None
    assert viewed.interaction.item_id == "42"
    assert viewed.interaction.kind == parsing.VIEW
    assert viewed.interaction.categories == ("Comedy", "Drama")

    bought = parse_event(track("Order Completed", itemId="7", price=4.5, quantity=2))
    assert bought.interaction is not None
    assert (bought.interaction.kind, bought.interaction.revenue) == (parsing.PURCHASE, 9.0)
    assert parse_event(track("Item Purchased", itemId="7", revenue=3)).interaction.revenue == 3.0  # type: ignore[union-attr]
    rated = parse_event(track("item rated", itemId="7", rating=4))
    assert rated.interaction is not None
    assert (rated.interaction.kind, rated.interaction.rating) == (parsing.RATING, 4.0)
    assert rated.interaction.categories is None  # resolved from the items collection
    assert parse_event(track("Signed Up")).interaction is None


def test_catalogue_calls_become_items_not_interactions() -> None:
    upsert = parse_event(track("Item Upserted", itemId="9", title="Heat", categories=["Crime"]))
    assert upsert.catalogue is not None and upsert.interaction is None
    assert (upsert.catalogue.item_id, upsert.catalogue.title, upsert.catalogue.categories) == (
        "9",
        "Heat",
        ("Crime",),
    )
    identify = parse_event(
        {
            "type": "identify",
            "userId": "cms",
            "timestamp": AT,
            "properties": {"item": {"id": "10", "title": "Up", "categories": []}},
        }
    )
    assert identify.catalogue is not None and identify.catalogue.item_id == "10"


def test_trait_names_are_escaped_for_mongodb() -> None:
    event = parse_event(
        {
            "type": "identify",
            "userId": "u1",
            "timestamp": AT,
            "traits": {"$where": 1, "a.b": {"$gt": 2}},
        }
    )
    assert event.traits == {"\uff04where": 1, "a\uff0eb": {"\uff04gt": 2}}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", parsing.UNPARSEABLE),
        (b"[1, 2]", parsing.NOT_AN_OBJECT),
        (
            b'{"type": "track", "event": "x", "timestamp": "2024-01-01T00:00:00Z"}',
            parsing.MISSING_USER,
        ),
        (b'{"type": "shout", "userId": "u"}', parsing.UNKNOWN_TYPE),
        (b'{"type": "track", "userId": "u", "timestamp": "yesterday"}', parsing.BAD_FIELD),
        (
            b'{"type": "track", "userId": "u", "timestamp": "2024-01-01T00:00:00Z", "event": "Item Viewed", "properties": {"itemId": {"$ne": 1}}}',
            parsing.BAD_FIELD,
        ),
        (
            b'{"type": "track", "userId": "u", "timestamp": "2024-01-01T00:00:00Z", "event": "Order Completed", "properties": {"itemId": "1", "price": "free"}}',
            parsing.BAD_FIELD,
        ),
        (
            b'{"type": "identify", "userId": "u", "timestamp": "2024-01-01T00:00:00Z", "traits": {"n": 18446744073709551615}}',
            parsing.BAD_FIELD,
        ),
        (
            b'{"type": "alias", "userId": "u", "timestamp": "2024-01-01T00:00:00Z"}',
            parsing.BAD_FIELD,
        ),
    ],
)
def test_poison_events_are_refused_with_a_typed_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(PoisonEvent) as caught:
        parse_record(raw)
    assert caught.value.reason == reason


def test_delete_events_are_understood() -> None:
    event = parse_record(orjson.dumps({"type": "delete", "userId": "u1", "timestamp": AT}))
    assert event.is_delete and event.key == "u1"
