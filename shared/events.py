"""The event envelope on ``events.raw``: a Segment-spec JSON object enriched by ingest.

Ingest writes, and every consumer reads, one JSON object per Kafka record:
Segment's fields (``type``, ``userId``, ``anonymousId``, ``event``, ``properties``, ``traits``,
``context``, ``timestamp``, ``messageId``, ...) plus the server's ``receivedAt``, ``sentAt``,
``originalTimestamp`` and ``sourceId``. The record key is the user key (see ``user_key``).
"""

from __future__ import annotations

from typing import Any

import orjson

# Segment's call types: every table of call types (routes, the gRPC enum, the OpenAPI
# schemas, the exporter's counters) is derived from this one.
EVENT_TYPES = ("track", "identify", "page", "screen", "group", "alias")
# The field a call type needs besides userId or anonymousId (Segment's spec).
REQUIRED_FIELD_BY_TYPE = {"track": "event", "alias": "previousId", "group": "groupId"}
# The Segment fields a client sends, by JSON type (ingest checks them; gRPC's Event carries the
# same fields under their snake_case names).
STRING_FIELDS = (
    "userId",
    "anonymousId",
    "event",
    "messageId",
    "previousId",
    "groupId",
    "name",
    "category",
)
OBJECT_FIELDS = ("properties", "traits", "context", "integrations")
# Longest userId, anonymousId or messageId accepted: ingest refuses longer ones, the profile
# updater sends any that reach it to the DLQ, and inference refuses them in queries.
MAX_ID_LENGTH = 256
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
