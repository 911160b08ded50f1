"""The transport-neutral heart of ingest: limit, validate, deduplicate, enrich, scrub and
durably write events.

The HTTP and gRPC adapters only translate their wire formats into calls of ``EventIngestor``
and its errors back into status codes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from services.ingest import metrics
from services.ingest.auth import CATALOG, WRITE
from services.ingest.dedupe import DedupeStore
from services.ingest.dlq import dlq_record
from services.ingest.errors import PayloadTooLarge, RateLimited, Unavailable
from services.ingest.privacy import Scrubber
from services.ingest.producer import EventProducer, KafkaUnavailable
from services.ingest.ratelimit import Limit, RateLimiter, parse_overrides
from services.ingest.scopes import check_catalogue_item, refuse_scope, required_scope
from services.ingest.settings import IngestSettings
from services.ingest.validation import SIZE, Rejection, clamp_future, enrich, validate
from shared.events import DELETE_TYPE, encode, user_key
from shared.timestamps import format_iso, now_iso
from shared.topics import EVENTS_DLQ, EVENTS_RAW
from shared.tracing import observe_with_exemplar

log = logging.getLogger(__name__)

Record = tuple[bytes | None, bytes]
WRITE_ONLY = frozenset((WRITE,))


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    # (index in the request, why it was refused): the first ``report_limit`` refusals only
    errors: list[tuple[int, Rejection]] = field(default_factory=list)
    # every refused event, reported or not
    rejected: int = 0
    report_limit: int = 100

    def refuse(self, index: int, rejection: Rejection) -> bool:
        """Count a refusal; True when it is still reported by index (and written to the DLQ)."""
        self.rejected += 1
        if len(self.errors) >= self.report_limit:
            return False
        self.errors.append((index, rejection))
        return True

    @property
    def unreported(self) -> int:
        return self.rejected - len(self.errors)

    def merge(self, other: IngestResult, offset: int) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        room = max(0, self.report_limit - len(self.errors))
        self.errors.extend((offset + i, r) for i, r in other.errors[:room])


class EventIngestor:
    def __init__(self, settings: IngestSettings, producer: EventProducer) -> None:
        self.settings = settings
        self.producer = producer
        self.dedupe = DedupeStore(settings.dedupe_window_seconds, settings.dedupe_max_entries)
        # The store is most of ingest's memory growth under steady load: make it visible.
        metrics.DEDUPE_ENTRIES.set_function(lambda: len(self.dedupe))
        self.limiter = RateLimiter(
            Limit(settings.rate_limit_events_per_second, settings.rate_limit_burst),
            parse_overrides(settings.rate_limit_overrides),
        )
        self.scrubber = Scrubber(
            settings.privacy_ip,
            settings.privacy_trait_keys,
            settings.privacy_trait_policy,
            settings.privacy_hash_salt.get_secret_value(),
        )
        # (source, messageId) -> outcome of the request that is writing it right now, so that a
        # concurrent retry neither writes it twice nor counts as stored before Kafka says so.
        self._in_flight: dict[tuple[str, str], asyncio.Future[bool]] = {}
        self._dlq_tasks: set[asyncio.Task[None]] = set()

    def admit(self, source_id: str, cost: int) -> None:
        """Fail fast before any work: Kafka known down -> Unavailable; over the limit -> 429."""
        if not self.producer.ready:
            raise Unavailable(
                "Kafka is unreachable; nothing was stored, retry later",
                retry_after=self.settings.retry_after_seconds,
            )
        wait = self.limiter.check(source_id, cost)
        if wait:
            metrics.RATE_LIMITED.labels(source_id).inc()
            raise RateLimited(f"rate limit of source {source_id!r} exceeded", retry_after=wait)

    def check_count(self, count: int) -> None:
        """A request's events are bounded, so one request's work, DLQ writes and answer are."""
        limit = self.settings.max_batch_items
        if count > limit:
            raise PayloadTooLarge(
                f"the request holds {count} events; at most {limit} are accepted per request",
                field="batch",
                reason="too_many_events",
            )

    async def ingest(
        self,
        items: list[Any],
        call_type: str | None,
        source_id: str,
        batch_sent_at: str | None = None,
        transport: str = "http",
        scopes: frozenset[str] = WRITE_ONLY,
    ) -> IngestResult:
        """Accept the valid items, report the invalid ones; raise ``Unavailable`` when Kafka
        does not acknowledge, in which case nothing of this request counts as accepted.
        ``scopes`` are those of the caller's key: a catalogue change needs ``catalog``."""
        self.check_count(len(items))
        self.admit(source_id, len(items))
        received = datetime.now(UTC)
        received_at = format_iso(received)
        max_skew = timedelta(seconds=self.settings.max_future_skew_seconds)
        result = IngestResult(report_limit=self.settings.max_reported_errors)
        records: list[Record] = []
        bad: list[Record] = []
        types: dict[str, int] = {}
        claimed: list[str] = []  # message ids this request writes (and then remembers)
        record_ids: list[str | None] = []  # the claimed message id of each record, if any
        message_ids: list[str | None] = []  # every record's message id (names its span)
        waiting: list[asyncio.Future[bool]] = []  # concurrent writers of our duplicates
        in_request: set[str] = set()
        max_bytes = self.settings.max_event_bytes
        for index, item in enumerate(items):
            try:
                if len(orjson.dumps(item)) > max_bytes:
                    raise Rejection(SIZE, "event", f"is larger than {max_bytes} bytes")
                event = validate(item, call_type)
                if required_scope(event) == CATALOG:
                    if CATALOG not in scopes:
                        raise refuse_scope(event, CATALOG)
                    check_catalogue_item(event)
            except Rejection as rejection:
                metrics.EVENTS_REJECTED.labels(rejection.reason).inc()
                if result.refuse(index, rejection):
                    # The DLQ holds personal data no longer than events.raw does: scrub first.
                    payload = self.scrubber.scrub(dict(item)) if isinstance(item, dict) else item
                    bad.append(
                        dlq_record(payload, index, rejection, source_id, received_at, transport)
                    )
                continue
            message_id = event.get("messageId")
            claimed_id: str | None = None
            if message_id and self.dedupe.enabled:
                key = (source_id, message_id)
                pending = self._in_flight.get(key)
                if message_id in in_request or self.dedupe.seen(source_id, message_id):
                    result.duplicates += 1
                    continue
                if pending is not None:
                    result.duplicates += 1
                    waiting.append(pending)
                    continue
                in_request.add(message_id)
                claimed.append(message_id)
                claimed_id = message_id
            event = enrich(event, source_id, received, batch_sent_at, received_at)
            clamped = clamp_future(event, received, max_skew)
            if clamped:
                metrics.TIMESTAMPS_CLAMPED.labels(clamped).inc()
            event = self.scrubber.scrub(event)
            records.append((user_key(event).encode(), encode(event)))
            record_ids.append(claimed_id)
            message_ids.append(event.get("messageId"))
            types[event["type"]] = types.get(event["type"], 0) + 1
        metrics.BATCH_SIZE.observe(len(items))
        if result.unreported:
            metrics.DLQ_SUPPRESSED.inc(result.unreported)
        if result.duplicates:
            metrics.EVENTS_DUPLICATE.inc(result.duplicates)
        if bad:
            task = asyncio.create_task(self._send_dlq(bad))
            self._dlq_tasks.add(task)
            task.add_done_callback(self._dlq_tasks.discard)
        if records:
            loop = asyncio.get_running_loop()
            outcomes = {message_id: loop.create_future() for message_id in claimed}
            for message_id, outcome in outcomes.items():
                self._in_flight[(source_id, message_id)] = outcome
            try:
                await self._send(EVENTS_RAW.name, records, message_ids)
            except Unavailable as refused:
                self._settle_when_delivered(source_id, record_ids, refused, outcomes)
                raise
            except BaseException:
                for message_id in claimed:
                    self._settle(source_id, message_id, outcomes[message_id], stored=False)
                raise
            self.dedupe.remember(source_id, claimed)
            for message_id in claimed:
                self._settle(source_id, message_id, outcomes[message_id], stored=True)
            for event_type, count in types.items():
                metrics.EVENTS_ACCEPTED.labels(event_type).inc(count)
            result.accepted = len(records)
        # A duplicate of an event another request is still writing is only "stored" once that
        # write is acknowledged; if it failed or is still undecided, this request is refused
        # so the client retries (and then finds it stored, or writes it).
        if waiting:
            decided, undecided = await asyncio.wait(
                waiting, timeout=self.settings.produce_timeout_seconds
            )
            if undecided or not all(f.result() for f in decided):
                raise Unavailable(
                    "an earlier copy of an event in this request is not stored yet; retry later",
                    retry_after=self.settings.retry_after_seconds,
                )
        return result

    def _settle(
        self, source_id: str, message_id: str, outcome: asyncio.Future[bool], stored: bool
    ) -> None:
        """Decide one claimed message id: remember it if stored, release it otherwise."""
        if stored:
            self.dedupe.remember(source_id, [message_id])
        if self._in_flight.get((source_id, message_id)) is outcome:
            del self._in_flight[(source_id, message_id)]
        if not outcome.done():
            outcome.set_result(stored)

    def _settle_when_delivered(
        self,
        source_id: str,
        record_ids: list[str | None],
        refused: Unavailable,
        outcomes: dict[str, asyncio.Future[bool]],
    ) -> None:
        """A refused request's records may still reach Kafka (they sit in the producer's
        buffer while the broker is away). Keep their ids claimed until each delivery is
        decided, so that the client's retry is neither written twice nor lost."""
        futures = refused.pending_deliveries
        for index, message_id in enumerate(record_ids):
            if message_id is None:
                continue
            outcome = outcomes[message_id]
            delivery = futures[index] if index < len(futures) else None
            if delivery is None:  # never reached the producer: certainly not stored
                self._settle(source_id, message_id, outcome, stored=False)
                continue
            delivery.add_done_callback(
                functools.partial(self._delivered, source_id, message_id, outcome)
            )

    def _delivered(
        self,
        source_id: str,
        message_id: str,
        outcome: asyncio.Future[bool],
        delivery: asyncio.Future[Any],
    ) -> None:
        stored = not delivery.cancelled() and delivery.exception() is None
        self._settle(source_id, message_id, outcome, stored=stored)

    async def delete_user(self, user_id: str, source_id: str) -> str:
        """Publish the erasure event that tells every downstream service to forget the user."""
        self.admit(source_id, 1)
        message_id = str(uuid.uuid4())
        event = {
            "type": DELETE_TYPE,
            "userId": user_id,
            "messageId": message_id,
            "receivedAt": now_iso(),
            "sourceId": source_id,
        }
        await self._send(EVENTS_RAW.name, [(user_id.encode(), encode(event))], [message_id])
        metrics.EVENTS_ACCEPTED.labels(DELETE_TYPE).inc()
        log.info(
            "user deletion published",
            extra={"fields": {"sourceId": source_id, "messageId": message_id}},
        )
        return message_id

    async def drain(self) -> None:
        """Wait for DLQ writes still on their way (called on shutdown)."""
        if self._dlq_tasks:
            await asyncio.gather(*self._dlq_tasks, return_exceptions=True)

    async def _send(self, topic: str, records: list[Record], message_ids: list[str | None]) -> None:
        started = time.perf_counter()
        try:
            await self.producer.send_many(topic, records, message_ids)
        except KafkaUnavailable as exc:
            metrics.PRODUCE_FAILURES.inc()
            log.warning(
                "Kafka did not acknowledge; answering 503",
                extra={
                    "fields": {
                        "topic": topic,
                        "records": len(records),
                        "error": repr(exc.__cause__ or exc),
                    }
                },
            )
            refused = Unavailable(
                f"Kafka did not acknowledge the events ({exc}); retry later",
                retry_after=self.settings.retry_after_seconds,
            )
            refused.pending_deliveries = exc.futures
            raise refused from exc
        observe_with_exemplar(metrics.PRODUCE_SECONDS, time.perf_counter() - started)

    async def _send_dlq(self, records: list[Record]) -> None:
        """Best effort: the client already hears why each event was refused."""
        try:
            await self.producer.send_many(EVENTS_DLQ.name, records)
            metrics.DLQ_WRITTEN.inc(len(records))
        except KafkaUnavailable as exc:
            metrics.DLQ_FAILURES.inc(len(records))
            log.warning(
                "could not write rejected events to the DLQ",
                extra={"fields": {"count": len(records), "error": str(exc)}},
            )
