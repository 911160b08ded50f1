"""Reading events.raw records: what the updater uses and what goes to the DLQ."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from services.profiles import parsing
from services.profiles.parsing import PoisonEvent, parse_event, parse_record
from shared import catalogue

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
    assert (bought.interaction.kind, bought.revenue, bought.purchase) == (
        parsing.PURCHASE,
        9.0,
        True,
    )
    assert parse_event(track("Item Purchased", itemId="7", revenue=3)).revenue == 3.0
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


def test_segment_ecommerce_products_are_read_one_interaction_each() -> None:
    order = parse_event(
        track(
            "Order Completed",
            order_id="o1",
            total=30,
            currency="eur",
            products=[
                {"product_id": "p1", "sku": "S-1", "category": "Games/Board/Chess"},
                {"sku": "S-2", "categories": ["Toys"]},
            ],
        )
    )
    assert [(i.item_id, i.kind) for i in order.interactions] == [
        ("p1", parsing.PURCHASE),
        ("S-2", parsing.PURCHASE),
    ]
    assert order.interactions[0].categories == ("Games", "Games/Board", "Games/Board/Chess")
    assert order.interactions[1].categories == ("Toys",)
    assert (order.revenue, order.currency, order.purchase) == (30.0, "EUR", True)
    refund = parse_event(track("Order Refunded", order_id="o1", total=12, currency="EUR"))
    assert (refund.interactions, refund.revenue, refund.purchase) == ((), -12.0, False)
    # No single item: accepted, counted by name, no interaction even with a stray id.
    searched = parse_event(track("Products Searched", query="chess", product_id="p1"))
    assert (searched.interactions, searched.revenue) == ((), None)


@pytest.mark.parametrize(
    "props",
    [
        {"products": [{"product_id": ["p"]}]},
        {"product_id": "p", "category": 3},
        {"product_id": "p", "price": "a lot"},
        {"product_id": "p", "price": 2, "currency": 978},
    ],
)
def test_malformed_ecommerce_properties_are_poison(props: dict[str, object]) -> None:
    with pytest.raises(PoisonEvent):
        parse_event(track("Order Completed", **props))


def test_traits_come_from_traits_or_rudderstacks_context_traits() -> None:
    event = parse_event(
        {
            "type": "identify",
            "userId": "u1",
            "timestamp": AT,
            "context": {"traits": {"email": "a@example.com", "plan": "free"}},
            "traits": {"plan": "pro"},
        }
    )
    assert event.traits == {"email": "a@example.com", "plan": "pro"}


def test_an_upserted_item_carries_its_description_and_scalar_attributes() -> None:
    upsert = parse_event(
        track(
            "Item Upserted",
            item={
                "id": "sku-1",
                "title": "Kettle",
                "categories": ["Kitchen"],
                "description": "1.7 l, steel. " * 400,
                "price": 29,
                "currency": "eur",
                "availability": "Out of Stock",
                "attributes": {"colour": "red", "watts": 2200.0, "a.b": True, "none": None},
            },
        )
    )
    item = upsert.catalogue
    assert item is not None and not item.removed
    assert (item.item_id, item.title, item.categories) == ("sku-1", "Kettle", ("Kitchen",))
    assert len(item.description) == catalogue.MAX_DESCRIPTION_CHARS  # cut to the store's limit
    assert item.attributes == {
        "price": 29,
        "currency": "EUR",
        "availability": "Out of Stock",
        "available": False,  # read from availability when not sent
        "colour": "red",
        "watts": 2200.0,
        "a\uff0eb": True,  # names escaped for MongoDB
    }
    many = {f"k{n}": n for n in range(50)}
    capped = parse_event(track("Item Upserted", itemId="2", attributes=many)).catalogue
    assert capped is not None and len(capped.attributes) == catalogue.MAX_ATTRIBUTES


@pytest.mark.parametrize(
    "item",
    [
        {"id": "1", "title": 7},
        {"id": "1", "description": ["long"]},
        {"id": "1", "price": "9.99"},
        {"id": "1", "available": "yes"},
        {"id": "1", "attributes": ["red"]},
        {"id": "1", "attributes": {"size": {"w": 1}}},
        {"title": "no id"},
    ],
)
def test_catalogue_fields_of_the_wrong_type_are_refused(item: dict[str, object]) -> None:
    with pytest.raises(PoisonEvent) as caught:
        parse_event(track("Item Upserted", item=item))
    assert caught.value.reason == parsing.BAD_FIELD


def test_item_deleted_names_the_item_to_mark_removed_and_is_no_interaction() -> None:
    for props in ({"item": {"id": "9"}}, {"itemId": "9"}):
        deleted = parse_event(track("item deleted", **props))
        assert deleted.catalogue is not None and deleted.interactions == ()
        assert (deleted.catalogue.item_id, deleted.catalogue.removed) == ("9", True)


def test_the_message_id_names_the_events_interactions() -> None:
    viewed = parse_event({**track("Item Viewed", itemId="1"), "messageId": "m-1"})
    assert viewed.message_id == "m-1"
    assert parse_event(track("Item Viewed", itemId="1")).message_id is None
