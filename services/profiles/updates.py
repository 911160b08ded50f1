"""Turns one event into one MongoDB update of its user's profile.

Pure functions, unit-tested without a database; the agent sends the results in bulk.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import UpdateOne

from services.profiles.field_names import escape
from shared.events import user_key


def event_time(event: dict[str, Any]) -> datetime:
    raw = event.get("timestamp") or event.get("receivedAt")
    if isinstance(raw, str):
        try:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        except ValueError:
            pass
    return datetime.now(UTC)


def profile_update(event: dict[str, Any], now: datetime) -> UpdateOne:
    """The upsert that applies ``event`` to its user's profile document (``_id`` = user key)."""
    key = user_key(event)
    if not key:
        raise ValueError("event has neither userId nor anonymousId")
    at = event_time(event)
    inc: dict[str, Any] = {"version": 1, f"counts.byType.{escape(str(event['type']))}": 1}
    if event.get("event"):
        inc[f"counts.byName.{escape(str(event['event']))}"] = 1
    set_fields: dict[str, Any] = {"updatedAt": now}
    if event.get("userId"):
        set_fields["userId"] = event["userId"]
    update: dict[str, Any] = {
        "$inc": inc,
        "$set": set_fields,
        "$min": {"firstSeen": at},
        "$max": {"lastSeen": at},
    }
    if event.get("anonymousId"):
        update["$addToSet"] = {"anonymousIds": event["anonymousId"]}
    return UpdateOne({"_id": key}, update, upsert=True)
