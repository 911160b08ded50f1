"""Checks one incoming event against the Segment spec and enriches it for ``events.raw``.

Pure functions: no I/O, so every rule is unit-tested without Kafka.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.events import (
    EVENT_TYPES,
    MAX_ID_LENGTH,
    OBJECT_FIELDS,
    REQUIRED_FIELD_BY_TYPE,
    STRING_FIELDS,
)
from shared.timestamps import TimestampOutOfRange, format_iso, parse_iso


@dataclass(frozen=True)
class Rejection(Exception):
    """Why one event was refused; ``reason`` is a typed code, ``field`` the offending field."""

    reason: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"

    def describe(self) -> str:
        """A sentence naming the field, e.g. ``userId must be a string``."""
        return (
            self.message if self.message.startswith(self.field) else f"{self.field} {self.message}"
        )


SCHEMA = "schema_violation"
SIZE = "size_violation"

_TIME_FIELDS = ("timestamp", "sentAt", "originalTimestamp")
_STRING, _OBJECT, _TIME = "string", "object", "time"
_KINDS = {
    **dict.fromkeys(STRING_FIELDS, _STRING),
    **dict.fromkeys(OBJECT_FIELDS, _OBJECT),
    **dict.fromkeys(_TIME_FIELDS, _TIME),
}
_ID_FIELDS = frozenset(("userId", "anonymousId", "messageId"))


def parse_time(value: Any, field: str) -> datetime:
    """The date-time of an event field in UTC; ``Rejection`` names the field when it is not one."""
    if not isinstance(value, str):
        raise Rejection(SCHEMA, field, "must be an ISO-8601 date-time string")
    try:
        return parse_iso(value)
    except TimestampOutOfRange:
        raise Rejection(SCHEMA, field, f"is out of range: {value[:40]!r}") from None
    except ValueError:
        raise Rejection(SCHEMA, field, f"is not an ISO-8601 date-time: {value[:40]!r}") from None


def validate(raw: Any, call_type: str | None) -> dict[str, Any]:
    """Return a shallow copy of the event if it is valid; raise ``Rejection`` otherwise.

    ``call_type`` is the type implied by the route (``/v1/track``), or None for batch items,
    which must name their own ``type``.
    """
    if not isinstance(raw, dict):
        raise Rejection(SCHEMA, "event", "must be a JSON object")
    event = dict(raw)
    declared = event.get("type")
    if call_type is None:
        if declared not in EVENT_TYPES:
            raise Rejection(SCHEMA, "type", f"must be one of {', '.join(EVENT_TYPES)}")
    elif declared is not None and declared != call_type:
        raise Rejection(SCHEMA, "type", f"is {declared!r} but this endpoint takes {call_type!r}")
    event["type"] = call_type or declared

    # One pass over the fields the event has (cheaper than probing every known field).
    for field, value in event.items():
        kind = _KINDS.get(field)
        if kind is None or value is None:
            continue
        if kind is _STRING:
            if (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and field.endswith("Id")
            ):
                event[field] = value = str(value)  # Segment accepts numeric ids
            if not isinstance(value, str):
                raise Rejection(SCHEMA, field, "must be a string")
            if field in _ID_FIELDS and len(value) > MAX_ID_LENGTH:
                raise Rejection(SCHEMA, field, f"is longer than {MAX_ID_LENGTH} characters")
        elif kind is _OBJECT:
            if not isinstance(value, dict):
                raise Rejection(SCHEMA, field, "must be a JSON object")
        else:
            parse_time(value, field)
    # RudderStack's libraries send identify traits in context.traits; the profile updater
    # reads them, so they are held to what top-level traits are.
    context_traits = (event.get("context") or {}).get("traits")
    if context_traits is not None and not isinstance(context_traits, dict):
        raise Rejection(SCHEMA, "context.traits", "must be a JSON object")
    if not event.get("userId") and not event.get("anonymousId"):
        raise Rejection(SCHEMA, "userId", "userId or anonymousId is required")
    required = REQUIRED_FIELD_BY_TYPE.get(event["type"])
    if required is not None and not event.get(required):
        raise Rejection(SCHEMA, required, f"is required for {event['type']} calls")
    return event


FUTURE_TIMESTAMP = "future_timestamp"


def clamp_future(event: dict[str, Any], received_at: datetime, max_skew: timedelta) -> str | None:
    """An enriched event timestamped more than ``max_skew`` after it arrived (a client clock
    set years ahead, or an attempt to keep an item trending until then) takes ``receivedAt``
    as its time; ``originalTimestamp`` keeps what the client sent. Returns the reason, if any."""
    if parse_time(event["timestamp"], "timestamp") - received_at <= max_skew:
        return None
    event["timestamp"] = event["receivedAt"]
    return FUTURE_TIMESTAMP


def enrich(
    event: dict[str, Any],
    source_id: str,
    received_at: datetime,
    batch_sent_at: str | None = None,
    received_iso: str | None = None,
) -> dict[str, Any]:
    """Add server fields and correct client clock skew as the Segment spec describes:
    ``timestamp = receivedAt - (sentAt - originalTimestamp)``. ``received_iso`` is
    ``format_iso(received_at)`` when the caller has it already (once per request, not per event)."""
    event = dict(event)
    if not event.get("messageId"):
        event["messageId"] = str(uuid.uuid4())
    event["receivedAt"] = received_iso or format_iso(received_at)
    event["sourceId"] = source_id
    sent_at_raw = event.get("sentAt") or batch_sent_at
    original = event.get("timestamp")
    if original is not None:
        event["originalTimestamp"] = original
        if sent_at_raw is not None:
            sent_at = parse_time(sent_at_raw, "sentAt")
            skew = sent_at - received_at
            try:
                event["timestamp"] = format_iso(parse_time(original, "timestamp") - skew)
            except OverflowError:  # a correction past year 1 or 9999: keep the client's time
                event["timestamp"] = format_iso(parse_time(original, "timestamp"))
        else:
            event["timestamp"] = format_iso(parse_time(original, "timestamp"))
    else:
        event["timestamp"] = event["receivedAt"]
    if sent_at_raw is not None:
        event["sentAt"] = sent_at_raw
    return event
