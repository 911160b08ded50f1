"""Business figures by acquisition channel: counted from each event's own context, bounded."""

from __future__ import annotations

from typing import Any

from services.exporter.business import BusinessFigures
from services.exporter.channels import (
    CHANNEL_LABELS,
    UNATTRIBUTED,
    ChannelFigures,
    channel_metrics,
)
from shared import attribution
from shared.vocabulary import FUNNEL_ORDER


def event(name: str, **context: Any) -> dict[str, Any]:
    return {"type": "track", "userId": "u1", "event": name, "context": context}


def from_campaign(name: str, source: str, medium: str) -> dict[str, Any]:
    return event(name, campaign={"source": source, "medium": medium, "name": "spring"})


def test_events_funnel_steps_and_orders_by_channel() -> None:
    figures = ChannelFigures()
    for e in (
        from_campaign("Product Viewed", "google", "cpc"),
        from_campaign("product viewed", "google", "cpc"),  # matched as the updater matches
        from_campaign("Order Completed", "google", "cpc"),
        event("Item Viewed", page={"url": "https://shop.example/", "referrer": "https://t.co/"}),
        event("Order Completed"),  # a backend's order: no context
        {"type": "identify", "userId": "u1"},
    ):
        figures.observe(e)
    snap = figures.snapshot()
    assert snap.events[attribution.PAID_SEARCH] == 3
    assert snap.events[attribution.SOCIAL] == 1
    assert snap.events[UNATTRIBUTED] == 2
    assert snap.funnel[(attribution.PAID_SEARCH, "view")] == 2
    assert snap.funnel[(attribution.PAID_SEARCH, "purchase")] == 1
    assert snap.funnel[(attribution.SOCIAL, "view")] == 1
    assert snap.funnel[(UNATTRIBUTED, "purchase")] == 1
    assert snap.orders == {
        **{c: 0 for c in CHANNEL_LABELS},
        attribution.PAID_SEARCH: 1,
        UNATTRIBUTED: 1,
    }


def test_label_values_stay_within_the_fixed_set() -> None:
    figures = ChannelFigures()
    for i in range(200):
        figures.observe(from_campaign("Product Viewed", f"source-{i}", f"medium-{i}"))
        figures.observe(event("Product Viewed", referrer={"url": f"https://site-{i}.example/"}))
    families = {m.name: m for m in channel_metrics(figures)}
    channels = {s.labels["channel"] for m in families.values() for s in m.samples}
    assert channels == set(CHANNEL_LABELS)  # every series exists from the start, no more
    funnel = families["lumen_business_channel_funnel_events"].samples
    assert len(funnel) == len(CHANNEL_LABELS) * len(FUNNEL_ORDER) == 12 * len(FUNNEL_ORDER)
    events = {
        s.labels["channel"]: s.value for s in families["lumen_business_channel_events"].samples
    }
    assert events[attribution.OTHER] == 200 and events[attribution.REFERRAL] == 200


def test_the_business_figures_feed_the_channel_split() -> None:
    figures = BusinessFigures(trending_window_seconds=60, trending_top=3, max_label_values=5)
    figures.observe_event(from_campaign("Order Completed", "newsletter", "email"), now=0.0)
    assert figures.channels.snapshot().orders[attribution.EMAIL] == 1
