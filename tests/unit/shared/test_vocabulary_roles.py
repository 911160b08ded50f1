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
from shared.vocabulary import EVENTS

AT = "2024-05-01T10:00:00Z"
# Enough properties for every rule: profiles read price x quantity (8.0), the exporter total.
PROPERTIES = {"itemId": "7", "price": 4.0, "quantity": 2, "total": 11.0, "recommendationId": "r1"}


@dataclass(frozen=True)
class Expected:
    kind: str  # the profile's interaction kind for a track with an itemId
    weight: float  # interest the event adds (a rating without stars for "rating")
    trend: tuple[int, int]  # (views, purchases) it counts in trending
    funnel: str | None = None  # the business funnel step it counts in
    revenue: bool = False  # adds revenue (else price x quantity) to the profile
    order: bool = False  # an order of the business figures, revenue (else total)
    recommendation: str | None = None  # counted as this with a recommendationId


EXPECTED = {
    "Item Viewed": Expected("view", 1.0, (1, 0), "view"),
    "Product Viewed": Expected("view", 1.0, (1, 0), "view"),
    "Item Added to Cart": Expected("cart", 3.0, (0, 0)),
    "Product Added": Expected("cart", 3.0, (0, 0), "add_to_cart"),
    "Order Completed": Expected("purchase", 5.0, (0, 1), "purchase", revenue=True, order=True),
    "Item Purchased": Expected("purchase", 5.0, (0, 1), revenue=True),
    "Item Rated": Expected("rating", 2.0, (1, 0)),
    "Recommendation Clicked": Expected("click", 2.0, (1, 0), recommendation="click"),
    "Product Clicked": Expected("other", 1.0, (0, 0), recommendation="click"),
    "Product List Viewed": Expected("other", 1.0, (0, 0), recommendation="impression"),
    "Recommendation Viewed": Expected("other", 1.0, (0, 0), recommendation="impression"),
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
        interaction = parse_event(track(spelling, **PROPERTIES)).interaction
        assert interaction is not None
        assert interaction.kind == expected.kind
        assert decay.weight(interaction) == expected.weight
        assert trends.counted(interaction) == expected.trend
        assert interaction.revenue == (8.0 if expected.revenue else 0.0)
    with_revenue = parse_event(track(name, **PROPERTIES, revenue=3)).interaction
    assert with_revenue is not None
    assert with_revenue.revenue == (3.0 if expected.revenue else 0.0)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_business_figures_move_as_the_vocabulary_says(name: str) -> None:
    expected = EXPECTED[name]
    figures = BusinessFigures(trending_window_seconds=60, trending_top=5, max_label_values=5)
    figures.observe_event(track(name, **PROPERTIES), now=0.0)
    figures.observe_event(track(name, **PROPERTIES, revenue=3, currency="EUR"), now=0.0)
    snapshot = figures.snapshot(0.0)
    funnel = {step: 0 for step in ("view", "add_to_cart", "purchase")}
    if expected.funnel:
        funnel[expected.funnel] = 2
    assert snapshot.funnel == funnel
    assert snapshot.orders == (2 if expected.order else 0)
    assert snapshot.revenue == ({"USD": 11.0, "EUR": 3.0} if expected.order else {})
    recommendations = {"impression": 0, "click": 0}
    if expected.recommendation:
        recommendations[expected.recommendation] = 2
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
