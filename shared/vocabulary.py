"""The events Lumen understands: one table every consumer derives its rules from.

Each row of ``EVENTS`` is one event (its Segment name and aliases) and says everything any
service does with it: the interaction kind the profile updater records, the interest weight
that kind adds, whether trending counts it as a view or a purchase, the business funnel step,
how revenue is read, and whether it is a recommendation impression or click. The profile
updater (``services/profiles``: parsing, decay, trends) and the exporter's business figures
(``services/exporter/business.py``) build their lookups from it; ``problems`` lists what would
make the table inconsistent and a unit test keeps that list empty.

Name matching: every consumer folds case and surrounding spaces (``fold``). Segment's
E-commerce spec v2 events are rows or aliases here; docs/event-model.md has the table.

Pure, no dependencies: any service may import it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

# Interaction kinds: the profile's ``Interaction.kind``.
VIEW, CART, PURCHASE, RATING, CLICK, OTHER = "view", "cart", "purchase", "rating", "click", "other"
WISHLIST, SHARE = "wishlist", "share"
# A track event with an item id that no row names is an interaction of this weight.
OTHER_WEIGHT = 1.0
# A page or screen call with an item id is a view (its weight is the view rows' weight).
PAGE_KIND = VIEW

# What trending counts an interaction as (the measures of ``shared/trends.py`` documents).
VIEWS, PURCHASES = "views", "purchases"
# Business funnel steps, in funnel order: Product Viewed -> Product Added -> Checkout Started ->
# Order Completed (Segment's E-commerce spec v2 names; Lumen's Item * names count the same).
FUNNEL_ORDER = ("view", "add_to_cart", "checkout", "purchase")
# Recommendation roles; they count only with ``properties.recommendationId``.
IMPRESSION, RECOMMENDATION_CLICK = "impression", "click"
# Revenue roles: an order adds its amount (``revenue_of``), a refund or cancellation takes it back.
ADDS, REVERSES = 1, -1

# Catalogue changes: items, not interactions (ingest asks a catalogue key for them).
ITEM_UPSERTED, ITEM_DELETED = "Item Upserted", "Item Deleted"

# Where an interaction's item is read: Lumen's ``itemId``, else Segment's ``product_id``, else
# ``sku``; an event with a ``products`` array is one interaction per product (each read the same).
ITEM_ID_FIELDS = ("itemId", "product_id", "sku")
# Where categories are read. An interaction's own categories: ``categories`` (a list of strings,
# or one), else Segment's ``category``; a path "a/b/c" names each level ("a", "a/b", "a/b/c"),
# so interest and trends build up at every level. Without them the profile updater looks the
# item up in the catalogue.
CATEGORIES = "categories"
CATEGORY, PRODUCTS = "category", "products"
CATEGORY_SEPARATOR = "/"
# The currency of an amount (ISO 4217); without it, the base currency (``shared.currency``).
CURRENCY = "currency"


def item_id_of(properties: dict[str, Any]) -> Any:
    """The raw item id of one product: the first of ``ITEM_ID_FIELDS`` that is set."""
    for name in ITEM_ID_FIELDS:
        value = properties.get(name)
        if value is not None and value != "":
            return value
    return None


def products_of(properties: dict[str, Any]) -> list[dict[str, Any]]:
    """The items an event is about: each object of ``products``, else the event's own
    properties when they name an item; empty for an event about no single item."""
    products = properties.get(PRODUCTS)
    if isinstance(products, list):
        listed = [p for p in products if isinstance(p, dict) and item_id_of(p) is not None]
        if listed:
            return listed
    return [properties] if item_id_of(properties) is not None else []


def category_levels(category: str) -> list[str]:
    """``"a/b/c"`` -> ``["a", "a/b", "a/b/c"]`` (blank levels dropped); ``"a"`` -> ``["a"]``."""
    parts = [part.strip() for part in category.split(CATEGORY_SEPARATOR) if part.strip()]
    return [CATEGORY_SEPARATOR.join(parts[: n + 1]) for n in range(len(parts))]


def revenue_of(
    properties: dict[str, Any], number: Callable[[Any, str], float | None]
) -> float | None:
    """The one revenue rule (profiles and business figures): ``revenue``, else ``total``, else
    the sum of ``price`` x ``quantity`` over ``products``, else ``price`` x ``quantity`` of the
    event (missing quantity 1); None when nothing says an amount. ``number(value, name)`` is the
    caller's reading of one value (None when absent); it may raise for a malformed one."""
    for name in ("revenue", "total"):
        amount = number(properties.get(name), name)
        if amount is not None:
            return amount
    products = properties.get(PRODUCTS)
    if isinstance(products, list):
        lines = [
            _line(p, number, f"products[{n}].")
            for n, p in enumerate(products)
            if isinstance(p, dict)
        ]
        priced = [line for line in lines if line is not None]
        if priced:
            return sum(priced)
    return _line(properties, number, "")


def _line(
    item: dict[str, Any], number: Callable[[Any, str], float | None], prefix: str
) -> float | None:
    price = number(item.get("price"), f"{prefix}price")
    if price is None:
        return None
    quantity = number(item.get("quantity"), f"{prefix}quantity")
    return price * (1.0 if quantity is None or quantity == 0 else quantity)


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
    kind: str | None = None  # profile interaction kind (per product); None: no interaction
    weight: float | PerStar | None = None  # interest one interaction adds to its categories
    trend: str | None = None  # VIEWS or PURCHASES: what trending counts it as
    funnel: str | None = None  # business funnel step (FUNNEL_ORDER)
    revenue: int = 0  # ADDS or REVERSES ``revenue_of`` (profile revenue and business figures)
    order: bool = False  # counted as an order of the business figures
    recommendation: str | None = None  # IMPRESSION or RECOMMENDATION_CLICK
    aliases: tuple[str, ...] = ()  # other names of the same event

    @property
    def spellings(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


# One row per event; adding an interaction is one row here plus its line in
# tests/unit/shared/test_vocabulary_roles.py (docs/architecture.md, "Adding an interaction event").
# Segment's E-commerce spec v2 events are rows of their own or aliases of Lumen's names.
EVENTS: tuple[Event, ...] = (
    # name, kind, weight, trend, funnel step, revenue, order, ...
    Event("Item Viewed", VIEW, 1.0, VIEWS, "view", aliases=("Product Viewed",)),
    # Opening a cart lists what is in it: a look at each product, not another add.
    Event("Cart Viewed", VIEW, 1.0, VIEWS),
    Event("Product Added", CART, 3.0, funnel="add_to_cart", aliases=("Item Added to Cart",)),
    Event("Checkout Started", CART, 3.0, funnel="checkout"),
    Event(
        "Order Completed",
        PURCHASE,
        5.0,
        PURCHASES,
        "purchase",
        ADDS,
        True,
        aliases=("Item Purchased",),
    ),
    # A refund or a cancellation takes the order's amount back; no interest is taken away.
    Event("Order Refunded", revenue=REVERSES),
    Event("Order Cancelled", revenue=REVERSES),
    # A rating of r (out of 5) weighs 4 * r / 5: five stars count nearly like a purchase.
    Event("Item Rated", RATING, PerStar(0.8, unrated=2.0), VIEWS, aliases=("Product Reviewed",)),
    Event("Recommendation Clicked", CLICK, 2.0, VIEWS, recommendation=RECOMMENDATION_CLICK),
    Event("Product Clicked", CLICK, 2.0, VIEWS, recommendation=RECOMMENDATION_CLICK),
    Event("Product Added to Wishlist", WISHLIST, 2.0),
    Event("Product Shared", SHARE, 2.0),
    Event("Product List Viewed", recommendation=IMPRESSION),
    Event("Recommendation Viewed", recommendation=IMPRESSION),
    # Known, counted by name on the profile, about no single item (or, for Order Updated and
    # Product Removed, a change that would count twice or take interest that was never given).
    Event("Products Searched"),
    Event("Product List Filtered"),
    Event("Product Removed"),
    Event("Checkout Step Viewed"),
    Event("Checkout Step Completed"),
    Event("Payment Info Entered"),
    Event("Order Updated"),
    Event("Coupon Entered"),
    Event("Coupon Applied"),
    Event("Coupon Denied"),
    Event("Coupon Removed"),
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


def by_name(events: Iterable[Event] = EVENTS) -> dict[str, Event]:
    """Folded spelling -> row, for every row (interactions or not)."""
    return {fold(s): event for event in events for s in event.spellings}


def spellings_with(
    column: Callable[[Event], Any], events: Iterable[Event] = EVENTS
) -> dict[str, Any]:
    """Folded spelling -> the column's value, for the rows where it is set (match names with
    ``fold``, as the profile updater does)."""
    return {fold(s): column(event) for event in events if column(event) for s in event.spellings}


def categories_mentioned(properties: dict[str, Any]) -> list[str]:
    """The categories an event names: ``categories`` as given, ``category`` and each
    product's ``category`` at every level of their path (as the profile updater reads them);
    stripped, blanks and non-strings left out."""
    listed = properties.get(CATEGORIES)
    found = [c.strip() for c in listed if isinstance(c, str)] if isinstance(listed, list) else []
    paths: list[Any] = [properties.get(CATEGORY)]
    if isinstance(properties.get(PRODUCTS), list):
        paths.extend(p.get(CATEGORY) for p in properties[PRODUCTS] if isinstance(p, dict))
    found.extend(level for c in paths if isinstance(c, str) for level in category_levels(c))
    return list(dict.fromkeys(c for c in found if c))


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
        if (event.weight, event.trend) != (None, None):
            found.append("weight and trend need an interaction kind")
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
    if event.revenue not in (0, ADDS, REVERSES):
        found.append(f"revenue role {event.revenue!r} is neither ADDS nor REVERSES")
    if event.revenue == ADDS and event.kind != PURCHASE:
        found.append("only purchases add revenue")
    if event.revenue == REVERSES and event.kind is not None:
        found.append("a refund reverses revenue; it is not an interaction")
    if event.order and (event.funnel != FUNNEL_ORDER[-1] or event.revenue != ADDS):
        found.append("an order is the funnel's last step and adds revenue")
    if event.recommendation not in (None, IMPRESSION, RECOMMENDATION_CLICK):
        found.append(f"recommendation role {event.recommendation!r} is unknown")
    return found
