"""Each event of the vocabulary moves the profile and the business figures as it should.

``EXPECTED`` states, independently of ``shared/vocabulary.py``, what every spelling does; a row
added to the vocabulary without its line here fails ``test_every_spelling_has_its_expectation``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from services.exporter.business import BusinessFigures
from services.profiles import decay, trends
from services.profiles.parsing import parse_event
from shared.currency import Rates
from shared.vocabulary import EVENTS

AT = "2024-05-01T10:00:00Z"
# Enough properties for every rule: the one revenue rule reads ``total`` (11.0) before
# price x quantity (8.0), in profiles and in the business figures alike.
PROPERTIES = {"itemId": "7", "price": 4.0, "quantity": 2, "total": 11.0, "recommendationId": "r1"}
# Segment's E-commerce shape: products[] (each one an interaction), product_id or sku.
PRODUCTS = {
    "order_id": "o1",
    "currency": "USD",
    "products": [
        {"product_id": "p1", "category": "Games/Board", "price": 2.0, "quantity": 3},
        {"sku": "s2", "price": 5.0},
    ],
}


@dataclass(frozen=True)
class Expected:
    kind: str | None  # the profile's interaction kind for a track with an item (None: none)
    weight: float = 0.0  # interest the event adds (a rating without stars for "rating")
    trend: tuple[int, int] = (0, 0)  # (views, purchases) it counts in trending
    funnel: str | None = None  # the business funnel step it counts in
    revenue: int = 0  # +1 adds its amount to revenue (profile and business), -1 takes it back
    order: bool = False  # an order of the business figures
    recommendation: str | None = None  # counted as this with a recommendationId


VIEWED = Expected("view", 1.0, (1, 0), "view")
ADDED = Expected("cart", 3.0, (0, 0), "add_to_cart")
ORDERED = Expected("purchase", 5.0, (0, 1), "purchase", revenue=1, order=True)
RATED = Expected("rating", 2.0, (1, 0))
CLICKED = Expected("click", 2.0, (1, 0), recommendation="click")
REFUND = Expected(None, revenue=-1)
NOTHING = Expected(None)

EXPECTED = {
    # Lumen's names
    "Item Viewed": VIEWED,
    "Item Added to Cart": ADDED,
    "Item Purchased": ORDERED,
    "Item Rated": RATED,
    "Recommendation Clicked": CLICKED,
    "Recommendation Viewed": Expected(None, recommendation="impression"),
    # Segment's E-commerce spec v2
    "Products Searched": NOTHING,
    "Product List Viewed": Expected(None, recommendation="impression"),
    "Product List Filtered": NOTHING,
    "Product Clicked": CLICKED,
    "Product Viewed": VIEWED,
    "Product Added": ADDED,
    "Product Removed": NOTHING,
    "Cart Viewed": Expected("view", 1.0, (1, 0)),
    "Checkout Started": Expected("cart", 3.0, (0, 0), "checkout"),
    "Checkout Step Viewed": NOTHING,
    "Checkout Step Completed": NOTHING,
    "Payment Info Entered": NOTHING,
    "Order Completed": ORDERED,
    "Order Updated": NOTHING,
    "Order Refunded": REFUND,
    "Order Cancelled": REFUND,
    "Coupon Entered": NOTHING,
    "Coupon Applied": NOTHING,
    "Coupon Denied": NOTHING,
    "Coupon Removed": NOTHING,
    "Product Added to Wishlist": Expected("wishlist", 2.0),
    "Product Shared": Expected("share", 2.0),
    "Product Reviewed": RATED,
}


def track(name: str, **properties: object) -> dict[str, object]:
    return {
        "type": "track",
        "userId": "u1",
        "event": name,
        "timestamp": AT,
        "properties": properties,
    }


def test_every_spelling_has_its_expectation() -> None:
    spellings = {spelling for event in EVENTS for spelling in event.spellings}
    assert spellings == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_profile_moves_as_the_vocabulary_says(name: str) -> None:
    expected = EXPECTED[name]
    # Event names are matched whatever their case and surrounding spaces.
    for spelling in (name, f"  {name.upper()} "):
        event = parse_event(track(spelling, **PROPERTIES))
        if expected.kind is None:
            assert event.interactions == ()
        else:
            (interaction,) = event.interactions
            assert (interaction.item_id, interaction.kind) == ("7", expected.kind)
            assert decay.weight(interaction) == expected.weight
            assert trends.counted(interaction) == expected.trend
        assert event.revenue == (11.0 * expected.revenue if expected.revenue else None)
        assert event.purchase == (expected.revenue > 0)
    with_revenue = parse_event(track(name, **PROPERTIES, revenue=3))
    assert with_revenue.revenue == (3.0 * expected.revenue if expected.revenue else None)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_product_moves_the_profile(name: str) -> None:
    """An event with products[] is one interaction per product (product_id, else sku; each
    level of a category path); revenue is the products' price x quantity."""
    expected = EXPECTED[name]
    event = parse_event(track(name, **PRODUCTS))
    if expected.kind is None:
        assert event.interactions == ()
    else:
        first, second = event.interactions
        assert (first.item_id, second.item_id) == ("p1", "s2")
        assert first.categories == ("Games", "Games/Board")
        assert second.categories is None  # from the catalogue
        assert {i.kind for i in event.interactions} == {expected.kind}
        assert [trends.counted(i) for i in event.interactions] == [expected.trend] * 2
    assert event.revenue == (11.0 * expected.revenue if expected.revenue else None)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_business_figures_move_as_the_vocabulary_says(name: str) -> None:
    expected = EXPECTED[name]
    rates = Rates("USD", {"EUR": 2.0})
    figures = BusinessFigures(60, trending_top=5, max_label_values=5, rates=rates)
    figures.observe_event(track(name, **PROPERTIES), now=0.0)
    figures.observe_event(track(name.lower(), **PROPERTIES, revenue=3, currency="EUR"), now=0.0)
    figures.observe_event(track(name, **PROPERTIES, revenue=5, currency="JPY"), now=0.0)
    snapshot = figures.snapshot(0.0)
    funnel = dict.fromkeys(("view", "add_to_cart", "checkout", "purchase"), 0)
    if expected.funnel:
        funnel[expected.funnel] = 3
    assert snapshot.funnel == funnel
    assert snapshot.orders == (3 if expected.order else 0)
    # EUR converts at the configured rate; JPY has none: kept under its own label.
    amounts = {"USD": 11.0 + 6.0, "JPY": 5.0}
    assert snapshot.revenue == (amounts if expected.revenue > 0 else {})
    assert snapshot.refunds == (amounts if expected.revenue < 0 else {})
    recommendations = {"impression": 0, "click": 0}
    if expected.recommendation:
        recommendations[expected.recommendation] = 3
    assert snapshot.recommendations == recommendations


def test_a_rating_weighs_by_its_stars() -> None:
    rated = parse_event(track("Item Rated", itemId="7", rating=5)).interaction
    assert rated is not None and decay.weight(rated) == 4.0


def test_page_and_screen_calls_with_an_item_are_views() -> None:
    for call in ("page", "screen"):
        event = {"type": call, "userId": "u1", "timestamp": AT, "properties": {"itemId": "7"}}
        interaction = parse_event(event).interaction
        assert interaction is not None and interaction.kind == "view"
        assert (decay.weight(interaction), trends.counted(interaction)) == (1.0, (1, 0))
