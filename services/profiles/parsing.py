"""Reads one ``events.raw`` record into the few facts the profile updater uses.

Pure: no I/O. Anything the updater cannot use safely raises ``PoisonEvent`` with a typed
reason, and the agent sends the record to ``events.dlq`` instead of stopping the stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from shared import catalogue as items
from shared.attribution import Touch, touch_of
from shared.catalogue import CatalogueItem
from shared.events import DELETE_TYPE, EVENT_TYPES, MAX_ID_LENGTH
from shared.profile_document import escape
from shared.timestamps import parse_iso
from shared.vocabulary import (
    ADDS,
    CATEGORIES,
    CATEGORY,
    CURRENCY,
    ITEM_DELETED,
    ITEM_UPSERTED,
    OTHER,
    PAGE_KIND,
    by_name,
    category_levels,
    fold,
    item_id_of,
    products_of,
    revenue_of,
)
from shared.vocabulary import CART as CART
from shared.vocabulary import CLICK as CLICK
from shared.vocabulary import PURCHASE as PURCHASE
from shared.vocabulary import RATING as RATING
from shared.vocabulary import VIEW as VIEW

# DLQ reasons (the ``kind`` label of lumen_profiles_events_failed_total too).
UNPARSEABLE = "unparseable"
NOT_AN_OBJECT = "not_an_object"
MISSING_USER = "missing_user"
UNKNOWN_TYPE = "unknown_type"
BAD_FIELD = "bad_field"
PROCESSING_ERROR = "processing_error"  # the update code failed on it (a bug): kept aside

# The event names, kinds and revenue rule come from the shared vocabulary; the kinds are
# re-exported for the updater's other modules.
_EVENTS = by_name()
_CATALOGUE_EVENT = fold(ITEM_UPSERTED)
_REMOVAL_EVENT = fold(ITEM_DELETED)
# Scalar fields of an item stored as attributes when sent beside its title (an ``attributes``
# object may carry any other scalar). ``availability`` (schema.org's words) also sets
# ``available`` when the item does not send it.
KNOWN_ATTRIBUTES = ("price", "currency", "available", "availability", "brand")
AVAILABLE, AVAILABILITY = "available", "availability"
IN_STOCK = frozenset(("in stock", "instock", "in_stock", "available", "preorder", "pre-order"))
OUT_OF_STOCK = frozenset(
    ("out of stock", "outofstock", "out_of_stock", "sold out", "soldout", "discontinued")
)
MAX_ATTRIBUTE_CHARS = 500  # a longer string attribute is cut
MAX_CATEGORIES = 20
MAX_PRODUCTS = 100  # interactions one event may carry (an order's products)
MAX_DEPTH = 8
INT64 = (-(2**63), 2**63 - 1)


class PoisonEvent(ValueError):
    """A record the updater cannot apply; ``reason`` is one of the constants above."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Interaction:
    item_id: str
    kind: str
    categories: tuple[str, ...] | None  # None: resolve from the items collection
    rating: float | None = None


@dataclass(frozen=True)
class ParsedEvent:
    type: str
    key: str  # userId, else anonymousId (the Kafka record key)
    at: datetime  # event time (ingest's skew-corrected ``timestamp``)
    user_id: str | None = None
    anonymous_id: str | None = None
    previous_id: str | None = None  # alias
    name: str | None = None
    traits: dict[str, Any] = field(default_factory=dict)
    interactions: tuple[Interaction, ...] = ()  # one per product (an order's products[])
    # Item Upserted: the item's new state; Item Deleted: its id with ``removed`` set.
    catalogue: CatalogueItem | None = None
    # Signed amount the event adds to revenue (negative: a refund), in ``currency`` (ISO 4217,
    # None: the base currency); None when the event moves no revenue.
    revenue: float | None = None
    currency: str | None = None
    purchase: bool = False  # an order: counts once in the profile's purchases
    touch: Touch | None = None  # acquisition channel, if the event carries attribution context
    # Names the event's interactions in the interaction store (ingest gives every event one;
    # the store falls back to the record's position when it is missing).
    message_id: str | None = None

    @property
    def interaction(self) -> Interaction | None:
        """The first interaction (the only one but for events with ``products``)."""
        return self.interactions[0] if self.interactions else None

    @property
    def is_delete(self) -> bool:
        return self.type == DELETE_TYPE


def _id(value: Any, name: str, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise PoisonEvent(BAD_FIELD, f"{name} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise PoisonEvent(BAD_FIELD, f"{name} must be a string")
    text = str(value)
    if len(text) > MAX_ID_LENGTH:
        raise PoisonEvent(BAD_FIELD, f"{name} is longer than {MAX_ID_LENGTH} characters")
    return text


def _number(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PoisonEvent(BAD_FIELD, f"{name} must be a finite number")
    return float(value)


def _categories(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(c, str) and c for c in value):
        raise PoisonEvent(BAD_FIELD, "categories must be a list of non-empty strings")
    return tuple(dict.fromkeys(value))[:MAX_CATEGORIES]


def _category_path(value: Any) -> tuple[str, ...] | None:
    """Segment's ``category``: every level of an "a/b/c" path (``vocabulary.category_levels``)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PoisonEvent(BAD_FIELD, "category must be a string")
    return tuple(category_levels(value))[:MAX_CATEGORIES] or None


def _time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise PoisonEvent(BAD_FIELD, "timestamp must be an ISO-8601 string")
    try:
        moment = parse_iso(value)
    except ValueError:  # TimestampOutOfRange included: past year 9999 in UTC
        raise PoisonEvent(BAD_FIELD, f"timestamp is not ISO-8601: {value[:40]!r}") from None
    # MongoDB keeps milliseconds: truncate now so replays compute with the stored value.
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _object(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PoisonEvent(BAD_FIELD, f"{name} must be a JSON object")
    return value


def _storable(value: Any, depth: int = 0) -> Any:
    """A JSON value MongoDB can store as given: keys escaped, integers within int64."""
    if depth > MAX_DEPTH:
        raise PoisonEvent(BAD_FIELD, f"traits are nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        return {escape(str(k)): _storable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v, depth + 1) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not INT64[0] <= value <= INT64[1]:
        raise PoisonEvent(BAD_FIELD, "an integer does not fit in 64 bits")
    return value


def _property_number(value: Any, name: str) -> float | None:
    return _number(value, f"properties.{name}")


def _interaction(kind: str, props: dict[str, Any]) -> Interaction:
    item_id = _id(item_id_of(props), "properties.itemId (or product_id, sku)", required=True)
    assert item_id is not None
    categories = _categories(props.get(CATEGORIES))
    if categories is None:
        categories = _category_path(props.get(CATEGORY))
    rating = _number(props.get("rating"), "properties.rating")
    return Interaction(item_id, kind, categories, rating)


def _interactions(kind: str, props: dict[str, Any]) -> tuple[Interaction, ...]:
    """One interaction per product (``vocabulary.products_of``), at most ``MAX_PRODUCTS``."""
    return tuple(_interaction(kind, p) for p in products_of(props)[:MAX_PRODUCTS])


def _currency(props: dict[str, Any]) -> str | None:
    value = props.get(CURRENCY)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PoisonEvent(BAD_FIELD, "properties.currency must be a string")
    return value.strip().upper()[:8]


def _attribute(value: Any, name: str) -> Any:
    """One attribute value as stored: a string (cut), a finite number, a boolean or None."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value[:MAX_ATTRIBUTE_CHARS]
    if isinstance(value, int):
        return _storable(value)
    if isinstance(value, float):
        return _number(value, name)
    raise PoisonEvent(BAD_FIELD, f"{name} must be a string, a number or a boolean")


def _attributes(item: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The item's scalar extras: its known fields, then its ``attributes`` object (at most
    ``catalogue.MAX_ATTRIBUTES``, names escaped for MongoDB)."""
    found: dict[str, Any] = {}
    for name in KNOWN_ATTRIBUTES:
        if item.get(name) is not None:
            found[name] = _attribute(item[name], prefix + name)
    extra = _object(item.get(items.ATTRIBUTES), prefix + items.ATTRIBUTES)
    for name, value in extra.items():
        found.setdefault(escape(str(name)), _attribute(value, f"{prefix}attributes.{name}"))
    _number(found.get("price"), prefix + "price")
    if AVAILABLE in found and not isinstance(found[AVAILABLE], bool | None):
        raise PoisonEvent(BAD_FIELD, f"{prefix}available must be a boolean")
    availability = found.get(AVAILABILITY)
    if found.get(AVAILABLE) is None and isinstance(availability, str):
        state = availability.strip().lower()
        if state in IN_STOCK or state in OUT_OF_STOCK:
            found[AVAILABLE] = state in IN_STOCK
    if isinstance(found.get("currency"), str):
        found["currency"] = found["currency"].strip().upper()[:8]
    kept = {name: value for name, value in found.items() if value is not None}
    return dict(list(kept.items())[: items.MAX_ATTRIBUTES])


def _text(value: Any, name: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PoisonEvent(BAD_FIELD, f"{name} must be a string")
    return value[:limit]


def _catalogue(props: dict[str, Any], removed: bool = False) -> CatalogueItem:
    """Item Upserted: the item's new state (sizes cut to ``shared.catalogue``'s limits).
    Item Deleted: the id only, marked removed."""
    nested = _object(props.get("item"), "properties.item")
    item = nested or props
    prefix = "properties.item." if nested else "properties."
    item_id = _id(item.get("id", item.get("itemId")), "item id", required=True)
    assert item_id is not None
    if removed:
        return CatalogueItem(item_id, removed=True)
    return CatalogueItem(
        item_id,
        title=_text(item.get("title"), prefix + "title", items.MAX_TITLE_CHARS),
        categories=_categories(item.get("categories")) or (),
        description=_text(
            item.get(items.DESCRIPTION), prefix + items.DESCRIPTION, items.MAX_DESCRIPTION_CHARS
        ),
        attributes=_attributes(item, prefix),
    )


def parse_record(raw: bytes | None) -> ParsedEvent:
    """Parse and check one record value."""
    if raw is None:
        raise PoisonEvent(UNPARSEABLE, "empty record value")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise PoisonEvent(UNPARSEABLE, f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise PoisonEvent(NOT_AN_OBJECT, "event is not a JSON object")
    return parse_event(value)


def parse_event(event: dict[str, Any]) -> ParsedEvent:
    kind = event.get("type")
    if kind not in EVENT_TYPES and kind != DELETE_TYPE:
        raise PoisonEvent(UNKNOWN_TYPE, f"unknown event type {str(kind)[:40]!r}")
    user_id = _id(event.get("userId"), "userId")
    anonymous_id = _id(event.get("anonymousId"), "anonymousId")
    key = user_id or anonymous_id
    if not key:
        raise PoisonEvent(MISSING_USER, "event has neither userId nor anonymousId")
    at = _time(event.get("timestamp") or event.get("receivedAt"))
    props = _object(event.get("properties"), "properties")
    # RudderStack's libraries send identify traits in context.traits; top-level traits win.
    context = _object(event.get("context"), "context")
    traits = _storable(
        {
            **_object(context.get("traits"), "context.traits"),
            **_object(event.get("traits"), "traits"),
        }
    )
    name = event.get("event")
    if name is not None and not isinstance(name, str):
        raise PoisonEvent(BAD_FIELD, "event must be a string")
    previous_id = _id(event.get("previousId"), "previousId", required=kind == "alias")

    interactions: tuple[Interaction, ...] = ()
    catalogue = None
    revenue = currency = None
    folded = fold(name or "")
    named = _EVENTS.get(folded) if kind == "track" else None
    if (kind == "track" and folded == _CATALOGUE_EVENT) or (
        kind == "identify" and isinstance(props.get("item"), dict)
    ):
        catalogue = _catalogue(props)
    elif kind == "track" and folded == _REMOVAL_EVENT:
        catalogue = _catalogue(props, removed=True)
    elif named is not None:
        # A known event with no kind (a search, a list, a refund) is about no single item.
        if named.kind is not None:
            interactions = _interactions(named.kind, props)
        if named.revenue:
            amount = revenue_of(props, _property_number)
            if amount is not None and amount > 0:
                revenue, currency = named.revenue * amount, _currency(props)
    elif kind in ("track", "page", "screen") and item_id_of(props) is not None:
        interactions = (_interaction(PAGE_KIND if kind != "track" else OTHER, props),)
    return ParsedEvent(
        type=str(kind),
        key=key,
        at=at,
        user_id=user_id,
        anonymous_id=anonymous_id,
        previous_id=previous_id,
        name=name,
        traits=traits,
        interactions=interactions,
        catalogue=catalogue,
        revenue=revenue,
        currency=currency,
        purchase=named is not None and named.revenue == ADDS,
        touch=touch_of(event) if catalogue is None else None,
        message_id=_id(event.get("messageId"), "messageId"),
    )
