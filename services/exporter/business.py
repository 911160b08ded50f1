"""Business figures computed from the event stream: pure, bounded state, no per-user labels.

The exporter's consumer feeds every record of ``events.raw``, ``support.intents`` and
``support.feedback`` here;
scrapes read a copy. Label values come from small closed sets (event types, funnel steps,
recommendation actions) or are capped (intents, currencies: the rest become ``other``;
categories: only the top N of the sliding window are exported).

Revenue follows the one rule of ``shared.vocabulary.revenue_of``: orders add to ``revenue``,
refunds and cancellations to ``refunds`` (both counters only grow; net revenue is the
difference). Amounts are converted to the base currency by ``shared.currency``; an amount in
a currency without a rate is kept under that currency's own label, out of the converted total.
"""

from __future__ import annotations

import re
import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from services.exporter.channels import ChannelFigures
from shared.currency import Rates, code_of
from shared.events import DELETE_TYPE, EVENT_TYPES
from shared.messages import SupportFeedback, SupportIntent
from shared.vocabulary import (
    ADDS,
    CURRENCY,
    FUNNEL_ORDER,
    IMPRESSION,
    RECOMMENDATION_CLICK,
    categories_mentioned,
    fold,
    revenue_of,
    spellings_with,
)

OTHER = "other"
# From the shared vocabulary, names matched as the profile updater matches them (``fold``).
FUNNEL_STEPS: dict[str, str] = spellings_with(lambda event: event.funnel)
ORDERS: frozenset[str] = frozenset(spellings_with(lambda event: event.order))
# ADDS (orders) or REVERSES (refunds, cancellations) the event's amount.
REVENUE_ROLES: dict[str, int] = spellings_with(lambda event: event.revenue)
# Events that show or open a recommendation; they count only with properties.recommendationId.
RECOMMENDATION_ROLES: dict[str, str] = spellings_with(lambda event: event.recommendation)
OUT_OF_SCOPE = "out_of_scope"
_INTENT = re.compile(r"^[a-z0-9_.-]{1,64}$")
_MODEL_VERSION = re.compile(r"^[A-Za-z0-9_.:-]{1,32}$")
_MAX_MODEL_VERSIONS = 20
_MAX_CATEGORY_CHARS = 64
_MAX_CATEGORIES_PER_MINUTE = 10_000


@dataclass(frozen=True)
class BusinessSnapshot:
    events_by_type: dict[str, int] = field(default_factory=dict)
    funnel: dict[str, int] = field(default_factory=dict)
    revenue: dict[str, float] = field(default_factory=dict)  # orders, by currency (see module)
    refunds: dict[str, float] = field(default_factory=dict)  # refunded or cancelled, the same
    orders: int = 0
    recommendations: dict[str, int] = field(default_factory=dict)
    intents: dict[str, int] = field(default_factory=dict)
    out_of_scope: int = 0
    trending: list[tuple[str, int]] = field(default_factory=list)
    # support.feedback: (intent, model version, action) -> count
    feedback: dict[tuple[str, str, str], int] = field(default_factory=dict)

    @property
    def net_revenue(self) -> dict[str, float]:
        """Revenue less refunds, by currency."""
        return {
            c: self.revenue.get(c, 0.0) - self.refunds.get(c, 0.0)
            for c in {*self.revenue, *self.refunds}
        }


def _number(value: Any, name: str = "") -> float | None:
    """A number, or a string that reads as one; anything else counts as absent."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def categories_of(properties: dict[str, Any]) -> list[str]:
    """The categories an event names (``shared.vocabulary.categories_mentioned``), each cut
    to a label's length."""
    return [c[:_MAX_CATEGORY_CHARS] for c in categories_mentioned(properties)]


class BusinessFigures:
    """Counters since start plus a per-minute sliding window for trending categories."""

    def __init__(
        self,
        trending_window_seconds: int,
        trending_top: int,
        max_label_values: int,
        rates: Rates | None = None,
    ):
        self.rates = rates or Rates()
        self.trending_minutes = max(1, trending_window_seconds // 60)
        self.trending_top = trending_top
        self.max_label_values = max_label_values
        self._lock = threading.Lock()
        self._events: Counter[str] = Counter({t: 0 for t in (*EVENT_TYPES, DELETE_TYPE)})
        self._funnel: Counter[str] = Counter({step: 0 for step in FUNNEL_ORDER})
        self._revenue: dict[str, float] = {}
        self._refunds: dict[str, float] = {}
        self._orders = 0
        self._recommendations: Counter[str] = Counter({IMPRESSION: 0, RECOMMENDATION_CLICK: 0})
        self._intents: Counter[str] = Counter()
        self._out_of_scope = 0
        self._feedback: Counter[tuple[str, str, str]] = Counter()
        self._minutes: deque[tuple[int, Counter[str]]] = deque()
        self.channels = ChannelFigures()  # the same events by acquisition channel

    def observe_event(self, event: dict[str, Any], now: float) -> None:
        kind = str(event.get("type") or "")
        name = event.get("event")
        properties = event.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        self.channels.observe(event)
        with self._lock:
            self._events[kind if kind in self._events else OTHER] += 1
            name = fold(name) if isinstance(name, str) else ""
            step = FUNNEL_STEPS.get(name)
            if step:
                self._funnel[step] += 1
            if name in ORDERS:
                self._orders += 1
            revenue_role = REVENUE_ROLES.get(name)
            if revenue_role:
                totals = self._revenue if revenue_role == ADDS else self._refunds
                self._add_revenue(totals, properties)
            role = RECOMMENDATION_ROLES.get(name)
            if role and properties.get("recommendationId"):
                self._recommendations[role] += 1
            categories = categories_of(properties)
            if categories:
                bucket = self._minute_bucket(now)
                for category in categories:
                    if category in bucket or len(bucket) < _MAX_CATEGORIES_PER_MINUTE:
                        bucket[category] += 1

    def observe_intent(self, message: SupportIntent) -> None:
        """A classified support message (``support.intents``): its intent and out-of-scope flag."""
        intent = message.intent or ""
        out = message.out_of_scope or intent == OUT_OF_SCOPE
        label = OUT_OF_SCOPE if out else intent.lower()
        with self._lock:
            if not _INTENT.match(label):
                label = OTHER
            reserved = label in (OUT_OF_SCOPE, OTHER)
            known = [i for i in self._intents if i not in (OUT_OF_SCOPE, OTHER)]
            if not reserved and label not in self._intents and len(known) >= self.max_label_values:
                label = OTHER
            self._intents[label] += 1
            self._out_of_scope += out

    def observe_feedback(self, message: SupportFeedback) -> None:
        """What an agent did with a suggested reply (``support.feedback``), by the intent and
        model version of the suggestion; both label sets are capped like the intents'."""
        intent = (message.intent or OUT_OF_SCOPE).lower()
        version = message.model_version or "unknown"
        with self._lock:
            intents = {i for i, _, _ in self._feedback}
            if not _INTENT.match(intent) or (
                intent not in intents and len(intents) >= self.max_label_values
            ):
                intent = OTHER
            versions = {v for _, v, _ in self._feedback}
            if not _MODEL_VERSION.match(version) or (
                version not in versions and len(versions) >= _MAX_MODEL_VERSIONS
            ):
                version = OTHER
            self._feedback[(intent, version, message.action)] += 1

    def snapshot(self, now: float) -> BusinessSnapshot:
        with self._lock:
            self._expire(now)
            window: Counter[str] = Counter()
            for _, bucket in self._minutes:
                window.update(bucket)
            return BusinessSnapshot(
                events_by_type=dict(self._events),
                funnel=dict(self._funnel),
                revenue=dict(self._revenue),
                refunds=dict(self._refunds),
                orders=self._orders,
                recommendations=dict(self._recommendations),
                intents=dict(self._intents),
                out_of_scope=self._out_of_scope,
                trending=window.most_common(self.trending_top),
                feedback=dict(self._feedback),
            )

    def _add_revenue(self, totals: dict[str, float], properties: dict[str, Any]) -> None:
        """The amount (``vocabulary.revenue_of``) in the base currency when the rates convert
        it, else under its own currency's label (capped: past the cap, ``other``)."""
        amount = revenue_of(properties, _number)
        if amount is None or amount < 0:
            return
        currency = code_of(properties.get(CURRENCY), self.rates.base) or OTHER
        converted = self.rates.to_base(amount, currency)
        if converted is not None:
            currency, amount = self.rates.base, converted
        labels = {*self._revenue, *self._refunds}
        if currency not in labels and len(labels) >= self.max_label_values:
            currency = OTHER
        totals[currency] = totals.get(currency, 0.0) + amount

    def _minute_bucket(self, now: float) -> Counter[str]:
        minute = int(now // 60)
        if not self._minutes or self._minutes[-1][0] < minute:
            self._minutes.append((minute, Counter()))
        self._expire(now)
        return self._minutes[-1][1]

    def _expire(self, now: float) -> None:
        oldest = int(now // 60) - self.trending_minutes + 1
        while self._minutes and self._minutes[0][0] < oldest:
            self._minutes.popleft()
