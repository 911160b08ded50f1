"""Durable writes to Kafka with aiokafka's asyncio producer.

``acks=all`` with the idempotent producer, so a returned send means every in-sync replica has
the record and a retried produce request cannot duplicate it. The producer lives on the
service's event loop: acknowledgements resolve asyncio futures directly, with no thread
hand-off (kafka-python's background I/O thread cost about ten times more CPU per record here;
see docs/ingest.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.ingest.spans import RecordSpan, unsampled_request_headers
from shared.kafka_config import aiokafka_config
from shared.settings import KafkaSettings
from shared.tracing import tracing_enabled

log = logging.getLogger(__name__)


class KafkaUnavailable(Exception):
    """Kafka did not acknowledge in time; the caller answers 503/UNAVAILABLE.

    ``futures`` are the delivery futures of the records that did reach the producer's buffer,
    in record order: they may still be written once Kafka is back, and the caller must not
    treat their events as never stored (a client retry would then write them twice).
    """

    def __init__(self, message: str, futures: Sequence[asyncio.Future[Any]] = ()) -> None:
        super().__init__(message)
        self.futures = list(futures)


class WeakDurability(RuntimeError):
    """The producer would not wait for every in-sync replica, or could duplicate on retry."""


# What a 200 promises: every in-sync replica has the record, and a retry cannot duplicate it.
DURABLE_OPTIONS: dict[str, Any] = {"acks": "all", "enable_idempotence": True}


def durability_problems(producer: AIOKafkaProducer) -> list[str]:
    """What weakens the promise in a built producer (read back from the client, not from our
    own arguments, so a library default or a changed option cannot slip through)."""
    problems = []
    sender = getattr(producer, "_sender", None)
    acks = getattr(sender, "_acks", None)
    if acks != -1:
        problems.append(f"acks is {acks!r}, not all (-1)")
    if getattr(producer, "_txn_manager", None) is None:
        problems.append("idempotence is off")
    return problems


class EventProducer:
    def __init__(self, settings: KafkaSettings, *, timeout_seconds: float = 5.0) -> None:
        self._settings = settings
        self._timeout = timeout_seconds
        self._producer: AIOKafkaProducer | None = None
        # Set by the reachability probe (see ``monitor``); requests fail fast while False.
        self.ready = False
        # Wakes the probe at once after a (re)connection, so that readiness and gRPC health
        # change together instead of up to one probe interval apart.
        self._probe_now = asyncio.Event()

    async def start(self, warm_topics: Sequence[str] = ()) -> None:
        producer = AIOKafkaProducer(
            client_id="lumen-ingest",
            **DURABLE_OPTIONS,
            linger_ms=2,
            max_batch_size=256 * 1024,
            # Give up on a record before the HTTP client does; the request then gets 503.
            request_timeout_ms=int(self._timeout * 1000),
            retry_backoff_ms=100,
            **aiokafka_config(self._settings),
        )
        problems = durability_problems(producer)
        if problems:
            raise WeakDurability("the Kafka producer is not durable: " + "; ".join(problems))
        try:
            await asyncio.wait_for(producer.start(), self._timeout * 2)
            # Fetch partition metadata now, so that no request waits for it.
            for topic in warm_topics:
                await asyncio.wait_for(producer.partitions_for(topic), self._timeout)
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer
        self._probe_now.set()

    @property
    def started(self) -> bool:
        return self._producer is not None

    async def send_many(
        self,
        topic: str,
        records: Sequence[tuple[bytes | None, bytes]],
        message_ids: Sequence[str | None] = (),
    ) -> None:
        """Send (key, value) records; return once Kafka acknowledged all of them.

        With tracing on, each record gets a PRODUCER span (named by its ``message_ids`` entry)
        whose W3C context goes in the record's headers; with tracing off nothing is added.
        """
        if self._producer is None:
            raise KafkaUnavailable("producer not started")
        futures: list[asyncio.Future[Any]] = []
        traced = tracing_enabled()
        try:
            async with asyncio.timeout(self._timeout + 1):
                # Records join the producer's shared per-partition batches. (Its send_batch
                # is not used: it allows one queued batch per partition, and its wait for a
                # free slot mis-computes the remaining timeout under concurrency.)
                send = self._producer.send
                # Inside a request that is not sampled, per-record spans would record nothing:
                # every record carries the request's context instead (its unsampled flag tells
                # the consumers not to sample either), built once for the whole request.
                shared_headers = unsampled_request_headers() if traced else None
                for index, (key, value) in enumerate(records):
                    if not traced or shared_headers is not None:
                        futures.append(
                            await send(topic, value=value, key=key, headers=shared_headers)
                        )
                        continue
                    message_id = message_ids[index] if index < len(message_ids) else None
                    span = RecordSpan(topic, message_id)
                    try:
                        delivery = await send(topic, value=value, key=key, headers=span.headers)
                    except BaseException as exc:
                        span.failed(exc)
                        raise
                    span.end_on_delivery(delivery)
                    futures.append(delivery)
        except (KafkaError, TimeoutError) as exc:
            _ignore_outcomes(futures)
            raise KafkaUnavailable(str(exc) or type(exc).__name__, futures) from exc
        # asyncio.wait does not cancel what is still pending when it times out.
        done, pending = await asyncio.wait(futures, timeout=self._timeout + 1)
        if pending:
            _ignore_outcomes(futures)
            raise KafkaUnavailable("Kafka did not acknowledge in time", futures)
        errors = [f.exception() for f in done if f.exception() is not None]
        if errors:
            raise KafkaUnavailable(str(errors[0]) or type(errors[0]).__name__, futures) from errors[
                0
            ]

    def reachable(self, timeout: float = 0.5) -> bool:
        """True when a bootstrap broker accepts a TCP connection."""
        for server in self._settings.bootstrap_list():
            host, _, port = server.rpartition(":")
            try:
                with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                    return True
            except (OSError, ValueError):
                continue
        return False

    async def monitor(self, interval: float, on_change: Callable[[bool], object]) -> None:
        """Probe Kafka every ``interval`` seconds; keep ``ready`` current and report the first
        state and every change."""
        reported: bool | None = None
        while True:
            self._probe_now.clear()
            up = self.started and await asyncio.to_thread(self.reachable)
            if not up:
                self.ready = False  # refuse requests first, then tell health checkers
            if up != reported:
                if reported is not None:
                    log.warning("Kafka is reachable again" if up else "Kafka is unreachable")
                reported = up
                result = on_change(up)
                if asyncio.iscoroutine(result):
                    await result
            self.ready = up  # ready only once health says so too
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._probe_now.wait(), interval)

    async def close(self) -> None:
        """Send what is buffered, then disconnect."""
        self.ready = False
        if self._producer is not None:
            producer, self._producer = self._producer, None
            try:
                await asyncio.wait_for(producer.flush(), self._timeout * 2)
            finally:
                await producer.stop()


def _ignore_outcomes(futures: Sequence[asyncio.Future[Any]]) -> None:
    """The request has failed already; later outcomes of its records need no report."""
    for future in futures:
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
