"""Business figures split by acquisition channel (``shared.attribution``): pure, bounded.

The channel of an event is the one its own context names (``context.campaign``,
``context.referrer``, ``context.page``); an event without attribution context (a backend's
server-side call, most orders) counts under ``unattributed``. The profile keeps the user's
first and last touch; the exporter does not read profiles, so an order sent by a backend is
not credited to the campaign that brought its buyer here (that join is a query on the
profiles, not a metric). The ``channel`` label takes only ``shared.attribution.CHANNELS`` and
``unattributed``, the ``step`` label only the funnel steps: at most 12 series per step.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, Metric

from shared.attribution import CHANNELS, touch_of
from shared.vocabulary import FUNNEL_ORDER, fold, spellings_with

UNATTRIBUTED = "unattributed"
CHANNEL_LABELS = (*CHANNELS, UNATTRIBUTED)
_FUNNEL_STEPS: dict[str, str] = {
    fold(name): step for name, step in spellings_with(lambda event: event.funnel).items()
}
_ORDERS = frozenset(fold(name) for name in spellings_with(lambda event: event.order))


@dataclass(frozen=True)
class ChannelSnapshot:
    events: dict[str, int] = field(default_factory=dict)  # channel -> events
    funnel: dict[tuple[str, str], int] = field(default_factory=dict)  # (channel, step) -> events
    orders: dict[str, int] = field(default_factory=dict)  # channel -> orders


def channel_of(event: Mapping[str, Any]) -> str:
    touch = touch_of(event)
    return touch.channel if touch is not None else UNATTRIBUTED


class ChannelFigures:
    """Counters since start: events, funnel steps and orders by channel."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: Counter[str] = Counter({c: 0 for c in CHANNEL_LABELS})
        self._funnel: Counter[tuple[str, str]] = Counter(
            {(c, s): 0 for c in CHANNEL_LABELS for s in FUNNEL_ORDER}
        )
        self._orders: Counter[str] = Counter({c: 0 for c in CHANNEL_LABELS})

    def observe(self, event: Mapping[str, Any]) -> None:
        channel = channel_of(event)
        name = event.get("event")
        folded = fold(name) if isinstance(name, str) else ""
        step = _FUNNEL_STEPS.get(folded)
        with self._lock:
            self._events[channel] += 1
            if step:
                self._funnel[(channel, step)] += 1
            if folded in _ORDERS:
                self._orders[channel] += 1

    def snapshot(self) -> ChannelSnapshot:
        with self._lock:
            return ChannelSnapshot(dict(self._events), dict(self._funnel), dict(self._orders))


def channel_metrics(figures: ChannelFigures) -> Iterator[Metric]:
    snap = figures.snapshot()
    events = CounterMetricFamily(
        "lumen_business_channel_events",
        "Events on events.raw by the acquisition channel their context names "
        "(unattributed: no campaign, referrer or page).",
        labels=["channel"],
    )
    for channel, count in snap.events.items():
        events.add_metric([channel], float(count))
    yield events
    funnel = CounterMetricFamily(
        "lumen_business_channel_funnel_events",
        "Events per funnel step and acquisition channel.",
        labels=["channel", "step"],
    )
    for (channel, step), count in snap.funnel.items():
        funnel.add_metric([channel, step], float(count))
    yield funnel
    orders = CounterMetricFamily(
        "lumen_business_channel_orders",
        "Order events by the acquisition channel their context names.",
        labels=["channel"],
    )
    for channel, count in snap.orders.items():
        orders.add_metric([channel], float(count))
    yield orders
