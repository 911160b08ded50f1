"""The event vocabulary is consistent, and its check finds what would break a consumer."""

from __future__ import annotations

import pytest

from shared import vocabulary
from shared.vocabulary import (
    CART,
    EVENTS,
    FUNNEL_ORDER,
    PURCHASE,
    REVERSES,
    VIEW,
    VIEWS,
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
        (with_row(Event("Saved", kind=CART, weight=9.0)), "disagree on weight or trend"),
        (with_row(Event("Saved", kind=VIEW, weight=1.0)), "disagree on weight or trend"),
        (with_row(Event("Shown", weight=1.0)), "need an interaction kind"),
        (with_row(Event("Gift", kind="gift", weight=-1.0)), "cannot be negative"),
        (with_row(Event("Liked", kind="like", weight=PerStar(1, 1))), "needs the rating kind"),
        (with_row(Event("Liked", kind="like", weight=1.0, trend="likes")), "trend 'likes'"),
        (with_row(Event("Checkout Paid", funnel="paid")), "funnel step 'paid'"),
        (with_row(Event("Tipped", kind="tip", weight=1.0, revenue=1)), "only purchases add"),
        (
            with_row(Event("Returned", kind=CART, weight=3.0, revenue=REVERSES)),
            "not an interaction",
        ),
        (with_row(Event("Refunded", revenue=REVERSES, order=True)), "funnel's last step"),
        (with_row(Event("Doubled", revenue=2)), "revenue role 2"),
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
    assert all(e.kind == PURCHASE for e in EVENTS if e.revenue == vocabulary.ADDS)
    assert all(e.kind is None for e in EVENTS if e.revenue == REVERSES)
    assert {e.kind for e in EVENTS if e.funnel == "add_to_cart"} == {CART}


def number(value: object, name: str) -> float | None:
    return float(value) if isinstance(value, int | float) else None


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ({"revenue": 3, "total": 7.5, "price": 4.0}, 3.0),
        ({"total": 7.5, "price": 4.0}, 7.5),
        ({"price": 4.0, "quantity": 2}, 8.0),
        ({"price": 4.0, "quantity": 0}, 4.0),  # a zero quantity counts once
        ({"products": [{"price": 2.0, "quantity": 3}, {"price": 1.5}, {"sku": "x"}]}, 7.5),
        ({"products": [{"sku": "x"}], "price": 4.0}, 4.0),  # no product priced: the event's
        ({}, None),
    ],
)
def test_one_revenue_rule_reads_revenue_total_then_prices(
    properties: dict[str, object], expected: float | None
) -> None:
    assert vocabulary.revenue_of(properties, number) == expected


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ({"itemId": "1", "product_id": "2", "sku": "3"}, "1"),
        ({"product_id": "2", "sku": "3"}, "2"),
        ({"product_id": "", "sku": "3"}, "3"),
        ({"name": "no id"}, None),
    ],
)
def test_item_ids_come_from_item_id_else_product_id_else_sku(
    properties: dict[str, object], expected: str | None
) -> None:
    assert vocabulary.item_id_of(properties) == expected


def test_products_are_the_items_of_an_event() -> None:
    order = {"product_id": "top", "products": [{"product_id": "a"}, {"name": "x"}, 3, {"sku": "b"}]}
    assert vocabulary.products_of(order) == [{"product_id": "a"}, {"sku": "b"}]
    assert vocabulary.products_of({"product_id": "top", "products": []}) == [
        {"product_id": "top", "products": []}
    ]
    assert vocabulary.products_of({"query": "shoes"}) == []


def test_a_category_path_names_each_level() -> None:
    assert vocabulary.category_levels("Games/ Board //Chess") == [
        "Games",
        "Games/Board",
        "Games/Board/Chess",
    ]
    assert vocabulary.category_levels("Books") == ["Books"]
    assert vocabulary.category_levels(" / ") == []


def test_names_match_whatever_their_case() -> None:
    assert vocabulary.spellings_with(lambda e: e.funnel)["item added to cart"] == "add_to_cart"
    assert vocabulary.by_name()["order refunded"].revenue == REVERSES


def test_categories_mentioned_read_every_place_an_event_names_one() -> None:
    properties = {
        "category": " Books ",
        "categories": ["Drama", 3, " ", "Not/A Path"],
        "products": [{"category": "Toys/Lego"}, "x", {"name": "no category"}, {"category": "Toys"}],
    }
    assert vocabulary.categories_mentioned(properties) == [
        "Drama",
        "Not/A Path",
        "Books",
        "Toys",
        "Toys/Lego",
    ]
