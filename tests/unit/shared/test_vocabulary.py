"""The event vocabulary is consistent, and its check finds what would break a consumer."""

from __future__ import annotations

import pytest

from shared import vocabulary
from shared.vocabulary import (
    CART,
    EVENTS,
    FUNNEL_ORDER,
    ITEM_REVENUE,
    ORDER_REVENUE,
    PURCHASE,
    VIEW,
    VIEWS,
    Amount,
    Event,
    PerStar,
    problems,
)


def test_the_table_has_no_problem() -> None:
    assert problems() == []


def test_every_kind_of_the_table_has_a_weight_and_one_trend_role() -> None:
    weights = vocabulary.weights_by_kind()
    for event in EVENTS:
        if event.kind:
            assert weights[event.kind] == event.weight
    assert weights[vocabulary.PAGE_KIND] == 1.0
    assert weights[vocabulary.OTHER] == vocabulary.OTHER_WEIGHT
    views = vocabulary.kinds_counted_as(VIEWS)
    purchases = vocabulary.kinds_counted_as(vocabulary.PURCHASES)
    assert views.isdisjoint(purchases)


def with_row(event: Event) -> tuple[Event, ...]:
    return (*EVENTS, event)


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        (with_row(Event("Example Happened", kind="example")), "has no weight"),
        (with_row(Event(" product viewed", kind=VIEW, weight=1.0)), "names both"),
        (with_row(Event("Wishlisted", kind=CART, weight=9.0)), "disagree on weight or trend"),
        (with_row(Event("Wishlisted", kind=VIEW, weight=1.0)), "disagree on weight or trend"),
        (with_row(Event("Shown", weight=1.0)), "need an interaction kind"),
        (with_row(Event("Gift", kind="gift", weight=-1.0)), "cannot be negative"),
        (with_row(Event("Liked", kind="like", weight=PerStar(1, 1))), "needs the rating kind"),
        (with_row(Event("Liked", kind="like", weight=1.0, trend="likes")), "trend 'likes'"),
        (with_row(Event("Checkout Started", funnel="checkout")), "funnel step 'checkout'"),
        (with_row(Event("Tipped", kind="tip", weight=1.0, revenue=ITEM_REVENUE)), "purchases"),
        (with_row(Event("Refunded", order=ORDER_REVENUE)), "funnel's last step"),
        (with_row(Event("Ad Seen", recommendation="ad")), "role 'ad'"),
        (with_row(Event("Tracked", kind=vocabulary.OTHER, weight=1.0)), "no row names"),
        (with_row(Event("item upserted", kind=VIEW, weight=1.0)), "catalogue change"),
        (tuple(e for e in EVENTS if e.funnel != "add_to_cart"), "every funnel step"),
        (tuple(e for e in EVENTS if e.kind != VIEW), "page and screen views"),
    ],
)
def test_the_check_finds_each_inconsistency(table: tuple[Event, ...], problem: str) -> None:
    found = problems(table)
    assert any(problem in p for p in found), found


def test_a_new_interaction_is_one_row() -> None:
    example = Event("Example Happened", kind="example", weight=2.0, trend=VIEWS)
    table = with_row(example)
    assert problems(table) == []
    assert vocabulary.interactions_by_name(table)["example happened"] is example
    assert vocabulary.weights_by_kind(table)["example"] == 2.0
    assert "example" in vocabulary.kinds_counted_as(VIEWS, table)


def test_funnel_steps_follow_the_funnel_order() -> None:
    steps = vocabulary.spellings_with(lambda e: e.funnel)
    assert sorted(set(steps.values()), key=FUNNEL_ORDER.index) == list(FUNNEL_ORDER)
    assert all(e.funnel == FUNNEL_ORDER[-1] for e in EVENTS if e.order)
    assert all(e.kind == PURCHASE for e in EVENTS if e.revenue)
    assert {e.kind for e in EVENTS if e.funnel == "add_to_cart"} == {CART}


def number(value: object, name: str) -> float | None:
    return float(value) if isinstance(value, int | float) else None


@pytest.mark.parametrize(
    ("amount", "properties", "expected"),
    [
        (ITEM_REVENUE, {"revenue": 3, "price": 4.0}, 3.0),
        (ITEM_REVENUE, {"price": 4.0, "quantity": 2}, 8.0),
        (ITEM_REVENUE, {"price": 4.0, "quantity": 0}, 4.0),  # a zero quantity counts once
        (ITEM_REVENUE, {}, 0.0),
        (ORDER_REVENUE, {"total": 7.5}, 7.5),
        (ORDER_REVENUE, {"revenue": 1, "total": 7.5}, 1.0),
        (ORDER_REVENUE, {"price": 4.0}, None),
        (Amount(("value",)), {"value": 2}, 2.0),
    ],
)
def test_amounts_read_the_first_property_set(
    amount: Amount, properties: dict[str, object], expected: float | None
) -> None:
    assert amount.read(properties, number) == expected


def test_categories_mentioned_read_every_place_an_event_names_one() -> None:
    properties = {
        "category": " Books ",
        "categories": ["Drama", 3, " "],
        "products": [{"category": "Toys"}, "x", {"name": "no category"}],
    }
    assert vocabulary.categories_mentioned(properties) == ["Books", "Drama", "Toys"]
