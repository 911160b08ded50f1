"""The event envelope on ``events.raw``: a Segment-spec JSON object enriched by ingest.

Ingest writes, and every consumer reads, one JSON object per Kafka record:
Segment's fields (``type``, ``userId``, ``anonymousId``, ``event``, ``properties``, ``traits``,
``context``, ``timestamp``, ``messageId``, ...) plus the server's ``receivedAt``, ``sentAt``,
``originalTimestamp`` and ``sourceId``. The record key is the user key (see ``user_key``).
"""

from __future__ import annotations

from typing import Any

import orjson

EVENT_TYPES = ("track", "identify", "page", "screen", "group", "alias")
# Written by ingest for a GDPR erasure request; consumers forget the user.
DELETE_TYPE = "delete"


def user_key(event: dict[str, Any]) -> str:
    """Partitioning key: the userId, else the anonymousId (one user's events stay ordered)."""
    return str(event.get("userId") or event.get("anonymousId") or "")


def encode(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)


def decode(raw: bytes) -> dict[str, Any]:
    """Parse one record value; raises ``ValueError`` for anything that is not a JSON object."""
    value = orjson.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("event is not a JSON object")
    return value
