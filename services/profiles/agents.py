"""The stream processor: events.raw -> one MongoDB transaction per batch -> profiles.updated.

Faust acknowledges a batch (and so may commit its offsets) only after this agent returns from
it, which happens after the MongoDB transaction committed; failed writes are retried, never
skipped. Messages to ``profiles.updated`` and ``events.dlq`` are sent after the commit (at least
once: a crash right after a commit can repeat or, for profiles.updated, miss a message).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import faust
import orjson
from bson.errors import BSONError
from pymongo.errors import PyMongoError

from services.profiles import metrics
from services.profiles.health import Health
from services.profiles.mongo_errors import record_reason
from services.profiles.parsing import PROCESSING_ERROR, PoisonEvent
from services.profiles.result import BatchResult, Record
from services.profiles.settings import ProfilesSettings
from services.profiles.spans import BatchSpans, publishing
from services.profiles.store import ProfileStore
from shared.messages import encode_profile_updated
from shared.timestamps import now_iso
from shared.topics import EVENTS_DLQ, PROFILES_UPDATED
from shared.tracing import trace_exemplar, tracing_enabled

log = logging.getLogger(__name__)

# The agent's name as Faust knows it (the name it had as a module-level function).
AGENT_NAME = "services.profiles.agents.update_profiles"


class StoppedWhileFailing(Exception):
    """The worker is stopping while MongoDB refuses the batch: give the batch up unwritten."""


class Updater:
    """Writes the batches of one worker: its store, its retries, and what it publishes."""

    def __init__(
        self,
        app: faust.App,
        settings: ProfilesSettings,
        health: Health,
        store: Callable[[], ProfileStore] | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.health = health
        self._make_store = store or (lambda: ProfileStore.configured(settings))
        self._store: ProfileStore | None = None

    def store(self) -> ProfileStore:
        """The worker's store, connected on first use (not when the app is built)."""
        if self._store is None:
            self._store = self._make_store()
        return self._store

    async def _write_once(self, records: list[Record]) -> BatchResult:
        # Shielded: a shutdown arriving mid-write waits for the commit instead of abandoning it.
        store = self.store()
        task = asyncio.ensure_future(asyncio.to_thread(store.apply, records, datetime.now(UTC)))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            await asyncio.wait([task])
            raise

    async def write(self, records: list[Record]) -> BatchResult:
        """Apply ``records``; retry MongoDB failures a retry can cure until they succeed.

        A record that makes the update code fail, or that MongoDB refuses for itself (a profile
        past 16 MB, a value it cannot store), is isolated by halving the batch and is sent to
        the DLQ with its reason (its offset is still recorded as applied); the rest of the batch
        goes on.
        """
        delay = 0.1
        while True:
            try:
                result = await self._write_once(records)
                self.health.committed()
                metrics.LAST_COMMIT.set_to_current_time()
                return result
            except Exception as exc:
                mongo = isinstance(exc, PyMongoError)
                reason = record_reason(exc) if mongo or isinstance(exc, BSONError) else None
                # Records already marked for the DLQ only write their offsets: if even that
                # fails, the fault is not theirs (a broken store), and isolating again would
                # never end.
                marked = all(record.failure is not None for record in records)
                if not marked and (reason is not None or not mongo):
                    return await self._isolate(records, exc, reason or PROCESSING_ERROR)
                metrics.ERRORS.labels("mongo" if mongo else "internal").inc()
                self.health.failed(f"{'mongo' if mongo else type(exc).__name__}: {exc}")
                if self.app.should_stop:
                    raise StoppedWhileFailing(str(exc)) from exc
                log.warning(
                    "writing a batch failed; retrying",
                    extra={"fields": {"error": str(exc)[:300], "retry_in": delay}},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.retry_max_seconds)

    async def _isolate(self, records: list[Record], exc: Exception, reason: str) -> BatchResult:
        """Halve the batch until the record that caused ``exc`` is alone, then quarantine it."""
        kind = "internal" if reason == PROCESSING_ERROR else "rejected"
        metrics.ERRORS.labels(kind).inc()
        log.warning(
            "a batch failed on its records; isolating them",
            extra={"fields": {"records": len(records), "reason": reason, "error": str(exc)[:300]}},
            exc_info=reason == PROCESSING_ERROR,
        )
        if len(records) == 1:
            return await self._quarantine(records[0], exc, reason)
        middle = len(records) // 2
        first = await self.write(records[:middle])
        return first + await self.write(records[middle:])

    async def _quarantine(self, record: Record, exc: Exception, reason: str) -> BatchResult:
        # The value is kept for the DLQ record (the store does not apply a marked record).
        marked = Record(
            record.topic,
            record.partition,
            record.offset,
            record.key,
            record.value,
            failure=f"{type(exc).__name__}: {str(exc)[:1000]}",
            failure_reason=reason,
        )
        return await self.write([marked])

    async def publish(self, result: BatchResult) -> None:
        """profiles.updated messages and DLQ records of a committed batch (with tracing on,
        under a PRODUCER span whose context every record carries in its headers)."""
        if not (result.messages or result.poison):
            return
        if not tracing_enabled():
            await self._publish(result, None)
            return
        with publishing(
            PROFILES_UPDATED.name, len(result.messages) + len(result.poison)
        ) as headers:
            await self._publish(result, headers)

    async def _publish(self, result: BatchResult, headers: list[tuple[str, bytes]] | None) -> None:
        producer = self.app.producer
        pending = []
        for key, body in result.messages:
            value = encode_profile_updated(body)
            pending.append(
                await producer.send(PROFILES_UPDATED.name, key.encode(), value, None, None, headers)
            )
            metrics.MESSAGES_PUBLISHED.labels("tombstone" if body is None else "update").inc()
        for record, error in result.poison:
            value = dlq_value(record, error)
            pending.append(
                await producer.send(EVENTS_DLQ.name, record.key, value, None, None, headers)
            )
            metrics.EVENTS_FAILED.labels(error.reason).inc()
        if pending:
            try:
                await asyncio.gather(*pending)
            except Exception as exc:
                metrics.ERRORS.labels("publish").inc()
                log.warning(
                    "publishing after a commit failed", extra={"fields": {"error": str(exc)[:300]}}
                )

    async def on_assigned(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        mine = [
            tp for tp in self.app.consumer.assignment() if tp.topic == self.settings.events_topic
        ]
        metrics.ASSIGNED_PARTITIONS.set(len(mine))

    async def process(self, events: list[Any], spans: BatchSpans | None = None) -> bool:
        """Write one batch, then publish what it changed; False when the worker stopped
        before MongoDB took it (its offsets stay uncommitted)."""
        records = [
            Record(
                e.message.topic,
                e.message.partition,
                e.message.offset,
                e.message.key,
                e.message.value,
            )
            for e in events
        ]
        try:
            result = await self.write(records)
        except StoppedWhileFailing as exc:
            self.hold_back(events, release=True)
            log.warning(
                "stopping with a batch MongoDB did not take; its offsets stay uncommitted",
                extra={"fields": {"records": len(records), "error": str(exc)[:300]}},
            )
            return False
        except BaseException:
            self.hold_back(events)
            raise
        if spans is not None:
            spans.describe(len(result.applied), result.skipped, len(result.poison))
        observe(result, len(records))
        await self.publish(result)
        return True

    def hold_back(self, events: list[Any], release: bool = False) -> None:
        """Keep a batch that was not written from being acknowledged.

        ``take_events`` acknowledges the events it yielded when the agent leaves them, even by
        an exception or a cancellation: Faust would then commit their offsets although they
        were never written. One more reference on each message keeps its offset uncommitted;
        the next owner of the partition reads the batch again (and MongoDB's applied offsets
        skip whatever a shielded write did commit). ``release`` (the worker is stopping) does
        the same for every message fetched and not yet acknowledged -- the ones waiting behind
        this batch were not written either -- and stops the consumer's shutdown from waiting
        for them (``stream_wait_empty`` would wait for their acknowledgement until the process
        is killed).
        """
        for event in events:
            event.message.incref()
        unacked = getattr(self.app.consumer, "_unacked_messages", None) if release else None
        if unacked is not None:
            for message in list(unacked):
                if not message.acked:
                    message.incref()
            unacked.clear()

    async def update_profiles(self, stream: Any) -> None:
        """The agent: take batches off ``stream``, write each, then publish what it changed."""
        settings = self.settings
        try:
            async for events in stream.take_events(
                settings.batch_size, within=settings.batch_seconds
            ):
                if not tracing_enabled():
                    written = await self.process(events)
                else:
                    messages = [e.message for e in events]
                    with BatchSpans(messages, settings.app_id) as spans:
                        written = await self.process(events, spans)
                if not written:
                    return
        except Exception as exc:
            self.health.agent_stopped(f"{type(exc).__name__}: {str(exc)[:300]}")
            raise


def install(app: faust.App, events_topic: faust.TopicT, updater: Updater) -> None:
    """Register the updater's agent and partition signal on ``app``."""
    app.agent(events_topic, name=AGENT_NAME)(updater.update_profiles)
    app.on_partitions_assigned.connect(updater.on_assigned)  # type: ignore[arg-type]


def dlq_value(record: Record, error: PoisonEvent) -> bytes:
    payload: Any
    try:
        payload = orjson.loads(record.value) if record.value is not None else None
    except orjson.JSONDecodeError:
        payload = (record.value or b"")[:32768].decode("utf-8", "replace")
    return orjson.dumps(
        {
            "reason": error.reason,
            "message": str(error),
            "service": "profiles",
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "failedAt": now_iso("auto"),
            "payload": payload,
        }
    )


def observe(result: BatchResult, size: int) -> None:
    metrics.BATCH_SIZE.observe(size)
    metrics.EVENTS_SKIPPED.inc(result.skipped)
    metrics.PROFILES_ERASED.inc(result.erased)
    metrics.EVENTS_SUPPRESSED.inc(result.suppressed)
    for limit, count in result.limited.items():
        metrics.LIMITED.labels(limit).inc(count)
    for reason, count in result.refused.items():
        metrics.IDENTITY_REFUSED.labels(reason).inc(count)
    if result.limited or result.refused:
        log.info(
            "profile caps or identity rules refused part of a batch",
            extra={"fields": {"limited": dict(result.limited), "refused": dict(result.refused)}},
        )
    done = datetime.now(UTC)
    by_type: dict[str, int] = {}
    lag = metrics.PROCESSING_LAG.observe
    # The batch's trace (when sampled) is every event's exemplar: looked up once per batch.
    exemplar = trace_exemplar()
    for event in result.applied:
        by_type[event.type] = by_type.get(event.type, 0) + 1
        lag(max(0.0, (done - event.at).total_seconds()), exemplar)
    for kind, count in by_type.items():  # one labelled increment per type, not per event
        metrics.EVENTS_PROCESSED.labels(kind).inc(count)
