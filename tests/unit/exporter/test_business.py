"""Business figures from events: funnel, revenue, recommendations, intents, trending categories."""

from __future__ import annotations

from services.exporter.business import OTHER, BusinessFigures, categories_of
from shared.messages import SupportIntent


def figures(
    trending_window_seconds: int = 120, trending_top: int = 2, max_label_values: int = 3
) -> BusinessFigures:
    return BusinessFigures(trending_window_seconds, trending_top, max_label_values)


def track(name: str, **properties: object) -> dict[str, object]:
    return {"type": "track", "userId": "u1", "event": name, "properties": properties}


def classified(intent: str, out_of_scope: bool) -> SupportIntent:
    """A support.intents message as the support router writes it."""
    return SupportIntent(
        route="support",
        model_name="intent-classifier",
        model_version="1",
        classified_at="2026-01-01T00:00:00Z",
        intent=intent,
        confidence=0.9,
        out_of_scope=out_of_scope,
    )


def test_counts_events_by_type_and_funnel_step() -> None:
    f = figures()
    for event in (
        track("Product Viewed"),
        track("Item Viewed"),
        track("Product Added"),
        track("Order Completed", revenue=10),
        {"type": "identify"},
        {"type": "weird"},
    ):
        f.observe_event(event, now=0.0)
    snap = f.snapshot(0.0)
    assert snap.events_by_type["track"] == 4
    assert snap.events_by_type["identify"] == 1
    assert snap.events_by_type[OTHER] == 1
    assert snap.events_by_type["page"] == 0  # known types exist from the start
    assert snap.funnel == {"view": 2, "add_to_cart": 1, "checkout": 0, "purchase": 1}


def test_revenue_by_currency_from_revenue_or_total() -> None:
    f = figures()
    f.observe_event(track("Order Completed", revenue="12.5", currency="eur"), 0.0)
    f.observe_event(track("Order Completed", total=7.5), 0.0)
    f.observe_event(track("Order Completed", revenue=-3), 0.0)
    f.observe_event(track("Order Completed", revenue=1, currency="not-a-code"), 0.0)
    snap = f.snapshot(0.0)
    assert snap.revenue == {"EUR": 12.5, "USD": 7.5, OTHER: 1.0}
    assert snap.orders == 4


def test_recommendation_events_need_a_recommendation_id() -> None:
    f = figures()
    f.observe_event(track("Product List Viewed", recommendationId="r1"), 0.0)
    f.observe_event(track("Product List Viewed"), 0.0)
    f.observe_event(track("Product Clicked", recommendationId="r1"), 0.0)
    f.observe_event(track("Product Clicked"), 0.0)
    assert f.snapshot(0.0).recommendations == {"impression": 1, "click": 1}


def test_intents_are_capped_and_out_of_scope_is_counted() -> None:
    f = figures(max_label_values=2)
    for intent, out_of_scope in (
        ("refund", False),
        ("shipping", False),
        ("billing", False),
        ("refund", True),
        ("Bad Label!", False),
    ):
        f.observe_intent(classified(intent, out_of_scope))
    snap = f.snapshot(0.0)
    assert snap.intents == {"refund": 1, "shipping": 1, OTHER: 2, "out_of_scope": 1}
    assert snap.out_of_scope == 1


def test_trending_keeps_the_top_categories_of_the_window() -> None:
    f = figures(trending_window_seconds=120, trending_top=2)
    f.observe_event(track("Product Viewed", category="books"), now=0.0)
    f.observe_event(track("Product Viewed", categories=["games", "books"]), now=30.0)
    f.observe_event(track("Product Added", products=[{"category": "toys"}]), now=61.0)
    f.observe_event(track("Product Viewed", category="toys"), now=70.0)
    f.observe_event(track("Product Viewed", category="toys"), now=75.0)
    assert f.snapshot(75.0).trending == [("toys", 3), ("books", 2)]
    # Two minutes later the first minute has left the window.
    assert f.snapshot(125.0).trending == [("toys", 3)]
    assert f.snapshot(300.0).trending == []


def test_categories_ignore_non_strings() -> None:
    assert categories_of({"category": 3, "categories": ["a", None, " "], "products": ["x"]}) == [
        "a"
    ]
