"""Which key scope an event needs, and the limits of the catalogue entries it may carry.

Pure functions: the profile updater turns a track ``Item Upserted`` (any case and spacing) and
any event whose ``properties.item`` is an object into a catalogue write (see
services/profiles/parsing.py), so each of those needs a catalogue key.
"""

from __future__ import annotations

from typing import Any

import orjson

from services.ingest.auth import CATALOG, WRITE
from services.ingest.validation import SCHEMA, SIZE, Rejection

SCOPE = "insufficient_scope"
CATALOGUE_EVENTS = frozenset(("item upserted", "item deleted"))

# Documented in docs/ingest.md ("Catalogue events"); the recommender serves these verbatim.
MAX_TITLE = 500
MAX_DESCRIPTION = 5000
MAX_CATEGORIES = 20
MAX_CATEGORY = 100
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTES_BYTES = 4096


def required_scope(event: dict[str, Any]) -> str:
    properties = event.get("properties")
    if isinstance(properties, dict) and isinstance(properties.get("item"), dict):
        return CATALOG
    name = event.get("event")
    is_catalogue_name = isinstance(name, str) and name.strip().lower() in CATALOGUE_EVENTS
    return CATALOG if event.get("type") == "track" and is_catalogue_name else WRITE


def refuse_scope(event: dict[str, Any], scope: str) -> Rejection:
    name = event.get("event") or "an item object in properties"
    return Rejection(
        SCOPE, "event", f"{name!s:.60} changes the catalogue and needs a key with scope `{scope}`"
    )


def check_catalogue_item(event: dict[str, Any]) -> None:
    """Raise ``Rejection`` naming the field when a catalogue entry is beyond its limits."""
    properties = event.get("properties")
    if not isinstance(properties, dict):
        return
    nested = isinstance(properties.get("item"), dict)
    item = properties["item"] if nested else properties
    prefix = "properties.item." if nested else "properties."
    _text(item.get("title"), prefix + "title", MAX_TITLE)
    _text(item.get("description"), prefix + "description", MAX_DESCRIPTION)
    categories = item.get("categories")
    if categories is not None:
        field = prefix + "categories"
        if not isinstance(categories, list):
            raise Rejection(SCHEMA, field, "must be an array of strings")
        if len(categories) > MAX_CATEGORIES:
            raise Rejection(SIZE, field, f"holds more than {MAX_CATEGORIES} entries")
        for category in categories:
            _text(category, field, MAX_CATEGORY, required=True)
    attributes = item.get("attributes")
    if attributes is not None:
        field = prefix + "attributes"
        if not isinstance(attributes, dict):
            raise Rejection(SCHEMA, field, "must be a JSON object")
        if len(attributes) > MAX_ATTRIBUTES:
            raise Rejection(SIZE, field, f"holds more than {MAX_ATTRIBUTES} keys")
        if len(orjson.dumps(attributes)) > MAX_ATTRIBUTES_BYTES:
            raise Rejection(SIZE, field, f"is larger than {MAX_ATTRIBUTES_BYTES} bytes as JSON")


def _text(value: Any, field: str, limit: int, required: bool = False) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str):
        raise Rejection(SCHEMA, field, "must be a string" if not required else "must hold strings")
    if len(value) > limit:
        raise Rejection(SIZE, field, f"is longer than {limit} characters")
