"""The record written to ``events.dlq`` for every rejected event (Snowplow-style bad row).

Shape: ``{"reason", "field", "message", "index", "sourceId", "receivedAt", "transport",
"payload"}``; ``reason`` is one of the typed codes in ``services.ingest.validation``
(``schema_violation``, ``size_violation``). The key is the user key when the payload has one.
"""

from __future__ import annotations

from typing import Any

from services.ingest.validation import Rejection
from shared.events import encode, user_key


def dlq_record(
    item: Any, index: int, rejection: Rejection, source_id: str, received_at: str, transport: str
) -> tuple[bytes | None, bytes]:
    value = {
        "reason": rejection.reason,
        "field": rejection.field,
        "message": rejection.message,
        "index": index,
        "sourceId": source_id,
        "receivedAt": received_at,
        "transport": transport,
        "payload": item,
    }
    key = user_key(item) if isinstance(item, dict) else ""
    return (key.encode() if key else None), encode(value)
