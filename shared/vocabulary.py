"""The events Lumen understands: one table every consumer derives its rules from.

Each row of ``EVENTS`` is one event (its Segment name and aliases) and says everything any
service does with it: the interaction kind the profile updater records, the interest weight
that kind adds, whether trending counts it as a view or a purchase, the business funnel step,
how revenue is read, and whether it is a recommendation impression or click. The profile
updater (``services/profiles``: parsing, decay, trends) and the exporter's business figures
(``services/exporter/business.py``) build their lookups from it; ``problems`` lists what would
make the table inconsistent and a unit test keeps that list empty.

Name matching: the profile updater folds case and surrounding spaces (``fold``); the business
figures match the spellings exactly as written here (Segment's e-commerce spelling).

Pure, no dependencies: any service may import it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

# Interaction kinds: the profile's ``Interaction.kind``.
VIEW, CART, PURCHASE, RATING, CLICK, OTHER = "view", "cart", "purchase", "rating", "click", "other"
# A track event with an ``itemId`` that no row names is an interaction of this weight.
OTHER_WEIGHT = 1.0
# A page or screen call with an ``itemId`` is a view (its weight is the view rows' weight).
PAGE_KIND = VIEW

# What trending counts an interaction as (the measures of ``shared/trends.py`` documents).
VIEWS, PURCHASES = "views", "purchases"
# Business funnel steps, in funnel order.
FUNNEL_ORDER = ("view", "add_to_cart", "purchase")
# Recommendation roles; they count only with ``properties.recommendationId``.
IMPRESSION, RECOMMENDATION_CLICK = "impression", "click"

# Catalogue changes: items, not interactions (ingest asks a catalogue key for them).
ITEM_UPSERTED, ITEM_DELETED = "Item Upserted", "Item Deleted"

# Where categories are read. An interaction's own categories (a list of strings, or one);
# without them the profile updater looks the item up in the catalogue.
CATEGORIES = "categories"
# Every category an event mentions (business figures' trending categories) also comes from
# Segment's singular ``category`` and the ``category`` of each of its ``products``.
CATEGORY, PRODUCTS = "category", "products"


@dataclass(frozen=True)
class Amount:
    """How an amount is read from ``properties``: the first of ``fields`` that holds a number,
    else ``price`` x ``quantity`` (missing price 0, missing or zero quantity 1) when ``price`` is
    named, else nothing."""

    fields: tuple[str, ...]
    price: str | None = None
    quantity: str = "quantity"

    def read(
        self, properties: dict[str, Any], number: Callable[[Any, str], float | None]
    ) -> float | None:
        """``number(value, property name)`` is the caller's reading of one value (None when
        absent); it may raise for a malformed one."""
        for name in self.fields:
            amount = number(properties.get(name), name)
            if amount is not None:
                return amount
        if self.price is None:
            return None
        price = number(properties.get(self.price), self.price) or 0.0
        quantity = number(properties.get(self.quantity), self.quantity) or 1.0
        return price * quantity


# What a purchase adds to the buyer's profile revenue.
ITEM_REVENUE = Amount(("revenue",), price="price")
# What an order adds to the business figures' revenue (Segment's order-level properties).
ORDER_REVENUE = Amount(("revenue", "total"))


@dataclass(frozen=True)
class PerStar:
    """A weight read from ``properties.rating``: ``per_star`` x stars, ``unrated`` without."""

    per_star: float
    unrated: float

    def of(self, rating: float | None) -> float:
        return self.unrated if rating is None else max(0.0, rating) * self.per_star


@dataclass(frozen=True)
class Event:
    """One event the vocabulary knows; every column but the name is optional."""

    name: str
    kind: str | None = None  # profile interaction kind; None: not an interaction of its own
    weight: float | PerStar | None = None  # interest one interaction adds to its categories
    trend: str | None = None  # VIEWS or PURCHASES: what trending counts it as
    funnel: str | None = None  # business funnel step (FUNNEL_ORDER)
    revenue: Amount | None = None  # what it adds to the profile's revenue (purchases)
    order: Amount | None = None  # an order of the business figures, worth this amount
    recommendation: str | None = None  # IMPRESSION or RECOMMENDATION_CLICK
    aliases: tuple[str, ...] = ()  # other names of the same event

    @property
    def spellings(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


# One row per event; adding an interaction is one row here plus its line in
# tests/unit/shared/test_vocabulary_roles.py (docs/architecture.md, "Adding an interaction event").
EVENTS: tuple[Event, ...] = (
    # name, kind, weight, trend, funnel step, profile revenue, order revenue, ...
    Event("Item Viewed", VIEW, 1.0, VIEWS, "view", aliases=("Product Viewed",)),
    Event("Item Added to Cart", CART, 3.0),
    Event("Product Added", CART, 3.0, funnel="add_to_cart"),
    Event("Order Completed", PURCHASE, 5.0, PURCHASES, "purchase", ITEM_REVENUE, ORDER_REVENUE),
    Event("Item Purchased", PURCHASE, 5.0, PURCHASES, revenue=ITEM_REVENUE),
    # A rating of r (out of 5) weighs 4 * r / 5: five stars count nearly like a purchase.
    Event("Item Rated", RATING, PerStar(0.8, unrated=2.0), VIEWS),
    Event("Recommendation Clicked", CLICK, 2.0, VIEWS, recommendation=RECOMMENDATION_CLICK),
    Event("Product Clicked", recommendation=RECOMMENDATION_CLICK),
    Event("Product List Viewed", recommendation=IMPRESSION),
    Event("Recommendation Viewed", recommendation=IMPRESSION),
)


def fold(name: str) -> str:
    """The form the profile updater matches names in: case and surrounding spaces ignored."""
    return name.strip().lower()


def interactions_by_name(events: Iterable[Event] = EVENTS) -> dict[str, Event]:
    """Folded spelling -> row, for the rows that are interactions of their own."""
    return {fold(s): event for event in events if event.kind for s in event.spellings}


def weights_by_kind(events: Iterable[Event] = EVENTS) -> dict[str, float | PerStar]:
    weights: dict[str, float | PerStar] = {OTHER: OTHER_WEIGHT}
    for event in events:
        if event.kind and event.weight is not None:
            weights[event.kind] = event.weight
    return weights


def kinds_counted_as(trend: str, events: Iterable[Event] = EVENTS) -> frozenset[str]:
    return frozenset(event.kind for event in events if event.kind and event.trend == trend)


def spellings_with(
    column: Callable[[Event], Any], events: Iterable[Event] = EVENTS
) -> dict[str, Any]:
    """Exact spelling -> the column's value, for the rows where it is set."""
    return {s: column(event) for event in events if column(event) for s in event.spellings}


def categories_mentioned(properties: dict[str, Any]) -> list[str]:
    """The categories an event names: ``category``, ``categories``, each product's
    ``category``; stripped, blanks and non-strings left out."""
    found: list[Any] = [properties.get(CATEGORY)]
    if isinstance(properties.get(CATEGORIES), list):
        found.extend(properties[CATEGORIES])
    if isinstance(properties.get(PRODUCTS), list):
        found.extend(p.get(CATEGORY) for p in properties[PRODUCTS] if isinstance(p, dict))
    return [c.strip() for c in found if isinstance(c, str) and c.strip()]


def problems(events: tuple[Event, ...] = EVENTS) -> list[str]:
    """What makes the table inconsistent; empty for a table every consumer can follow."""
    found: list[str] = []
    owners: dict[str, int] = {}
    catalogue = {fold(ITEM_UPSERTED), fold(ITEM_DELETED)}
    for row, event in enumerate(events):
        for spelling in dict.fromkeys(fold(s) for s in event.spellings):
            owner = owners.setdefault(spelling, row)
            if owner != row:
                found.append(f"{spelling!r} names both {events[owner].name!r} and {event.name!r}")
            if spelling in catalogue:
                found.append(f"{spelling!r} is a catalogue change, not an interaction")
    for event in events:
        found.extend(f"{event.name!r}: {p}" for p in _row_problems(event))
    for kind in {e.kind for e in events if e.kind}:
        rows = [e for e in events if e.kind == kind]
        if len({(e.weight, e.trend) for e in rows}) > 1:
            found.append(f"kind {kind!r}: its rows disagree on weight or trend")
    if PAGE_KIND not in weights_by_kind(events):
        found.append(f"no row gives page and screen views ({PAGE_KIND!r}) a weight")
    missing = set(FUNNEL_ORDER) - {e.funnel for e in events}
    if missing:
        found.append(f"every funnel step needs a row; none for {sorted(missing)}")
    return found


def _row_problems(event: Event) -> list[str]:
    found = []
    if event.kind == OTHER:
        found.append(f"kind {OTHER!r} is for the track events no row names")
    if event.kind is None:
        if (event.weight, event.trend, event.revenue) != (None, None, None):
            found.append("weight, trend and revenue need an interaction kind")
    elif event.weight is None:
        found.append(f"kind {event.kind!r} has no weight (its events would fail to apply)")
    elif not isinstance(event.weight, PerStar) and event.weight < 0:
        found.append("a weight cannot be negative")
    if isinstance(event.weight, PerStar) and event.kind != RATING:
        found.append("a per-star weight needs the rating kind")
    if event.trend not in (None, VIEWS, PURCHASES):
        found.append(f"trend {event.trend!r} is neither {VIEWS!r} nor {PURCHASES!r}")
    if event.funnel is not None and event.funnel not in FUNNEL_ORDER:
        found.append(f"funnel step {event.funnel!r} is not one of {FUNNEL_ORDER}")
    if event.revenue is not None and event.kind != PURCHASE:
        found.append("only purchases add revenue to a profile")
    if event.order is not None and event.funnel != FUNNEL_ORDER[-1]:
        found.append("an order is the funnel's last step")
    if event.recommendation not in (None, IMPRESSION, RECOMMENDATION_CLICK):
        found.append(f"recommendation role {event.recommendation!r} is unknown")
    return found
