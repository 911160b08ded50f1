"""The transport-neutral heart of ingest: validate, enrich and durably write events.

The HTTP and gRPC adapters only translate their wire formats into calls of ``EventIngestor``
and its errors back into status codes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from services.ingest import metrics
from services.ingest.errors import Unavailable
from services.ingest.producer import EventProducer, KafkaUnavailable
from services.ingest.settings import IngestSettings
from services.ingest.validation import SIZE, Rejection, enrich, validate
from shared.events import encode, user_key
from shared.topics import EVENTS_RAW


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    # (index in the request, why it was refused)
    errors: list[tuple[int, Rejection]] = field(default_factory=list)


class EventIngestor:
    def __init__(self, settings: IngestSettings, producer: EventProducer) -> None:
        self.settings = settings
        self.producer = producer

    async def ingest(
        self,
        items: list[Any],
        call_type: str | None,
        source_id: str,
        batch_sent_at: str | None = None,
    ) -> IngestResult:
        """Accept the valid items, report the invalid ones; raise ``Unavailable`` when Kafka
        does not acknowledge, in which case nothing of this request counts as accepted."""
        received_at = datetime.now(UTC)
        result = IngestResult()
        records: list[tuple[bytes, bytes]] = []
        types: list[str] = []
        for index, item in enumerate(items):
            try:
                if len(orjson.dumps(item)) > self.settings.max_event_bytes:
                    raise Rejection(
                        SIZE, "event", f"is larger than {self.settings.max_event_bytes} bytes"
                    )
                event = enrich(validate(item, call_type), source_id, received_at, batch_sent_at)
            except Rejection as rejection:
                result.errors.append((index, rejection))
                metrics.EVENTS_REJECTED.labels(rejection.reason).inc()
                continue
            records.append((user_key(event).encode(), encode(event)))
            types.append(event["type"])
        metrics.BATCH_SIZE.observe(len(items))
        if records:
            started = time.perf_counter()
            try:
                await self.producer.send_many(EVENTS_RAW.name, records)
            except KafkaUnavailable as exc:
                metrics.KAFKA_UP.set(0)
                raise Unavailable(
                    f"Kafka did not acknowledge the events ({exc}); retry later",
                    retry_after=self.settings.retry_after_seconds,
                ) from exc
            metrics.KAFKA_UP.set(1)
            metrics.PRODUCE_SECONDS.observe(time.perf_counter() - started)
            for event_type in types:
                metrics.EVENTS_ACCEPTED.labels(event_type).inc()
            result.accepted = len(records)
        return result
