"""The stream processor: events.raw -> batched profile upserts in MongoDB."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from services.profiles import metrics
from services.profiles.app import app, events_topic, settings
from services.profiles.store import ProfileStore
from services.profiles.updates import event_time, profile_update
from shared.events import decode
from shared.mongo import database, ensure_indexes, mongo_client

log = logging.getLogger(__name__)

_store: ProfileStore | None = None


def store() -> ProfileStore:
    global _store
    if _store is None:
        db = database(mongo_client(settings.mongo), settings.mongo)
        ensure_indexes(db)
        _store = ProfileStore(db)
    return _store


@app.agent(events_topic)
async def update_profiles(stream: Any) -> None:
    async for values in stream.take(settings.batch_size, within=settings.batch_seconds):
        now = datetime.now(UTC)
        updates = []
        applied: list[dict[str, Any]] = []
        for raw in values:
            try:
                event = decode(raw)
                updates.append(profile_update(event, now))
                applied.append(event)
            except (ValueError, KeyError, TypeError) as exc:
                metrics.EVENTS_FAILED.labels("unparseable").inc()
                log.warning("skipped an event", extra={"fields": {"error": str(exc)}})
        await asyncio.to_thread(store().apply, updates)
        metrics.BATCH_SIZE.observe(len(updates))
        written = datetime.now(UTC)
        for event in applied:
            metrics.EVENTS_PROCESSED.labels(str(event.get("type"))).inc()
            metrics.PROCESSING_LAG.observe(max(0.0, (written - event_time(event)).total_seconds()))
