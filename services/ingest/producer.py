"""Durable writes to Kafka: an awaitable wrapper around kafka-python's producer.

``acks=all`` with the idempotent producer, so a returned send means every in-sync replica has
the record. One asyncio future per request (not per record) is resolved from the producer's
I/O thread once every record of the request is acknowledged, which keeps the event loop's
wake-ups to one per request.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable, Sequence

from kafka import KafkaProducer
from kafka.errors import KafkaError

from shared.settings import KafkaSettings

log = logging.getLogger(__name__)


class KafkaUnavailable(Exception):
    """Kafka did not acknowledge in time; the caller answers 503/UNAVAILABLE."""


class EventProducer:
    def __init__(self, settings: KafkaSettings, *, timeout_seconds: float = 5.0) -> None:
        self._settings = settings
        self._timeout = timeout_seconds
        self._producer: KafkaProducer | None = None
        # Set by the reachability probe (see ``monitor``); requests fail fast while False.
        self.ready = False

    def start(self, warm_topics: Sequence[str] = ()) -> None:
        producer = KafkaProducer(
            client_id="lumen-ingest",
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            batch_size=256 * 1024,
            compression_type=None,
            max_in_flight_requests_per_connection=5,
            # Give up on a record well before the HTTP client does.
            request_timeout_ms=int(self._timeout * 1000),
            delivery_timeout_ms=int(self._timeout * 1000) + 1000,
            max_block_ms=int(self._timeout * 1000),
            reconnect_backoff_max_ms=1000,
            **self._settings.kafka_python_config(),
        )
        try:
            # Fetch partition metadata now, so that send() never blocks the event loop for it.
            for topic in warm_topics:
                producer.partitions_for(topic)
        except KafkaError:
            producer.close(timeout=1)
            raise
        self._producer = producer
        self.ready = True

    @property
    def started(self) -> bool:
        return self._producer is not None

    async def send_many(self, topic: str, records: Sequence[tuple[bytes | None, bytes]]) -> None:
        """Send (key, value) records; return once Kafka acknowledged all of them."""
        if self._producer is None:
            raise KafkaUnavailable("producer not started")
        if not records:
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        acks = _Acks(loop, waiter, len(records))
        send = self._producer.send
        try:
            for key, value in records:
                send(topic, key=key, value=value).add_callback(acks.ok).add_errback(acks.fail)
        except KafkaError as exc:  # e.g. metadata for the topic not available in max_block_ms
            acks.fail(exc)
        try:
            await asyncio.wait_for(waiter, timeout=self._timeout + 1)
        except (KafkaError, TimeoutError) as exc:
            raise KafkaUnavailable(str(exc) or type(exc).__name__) from exc

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
        """Probe Kafka every ``interval`` seconds; keep ``ready`` current and report changes."""
        while True:
            up = self.started and await asyncio.to_thread(self.reachable)
            if up != self.ready:
                self.ready = up
                log.warning("Kafka is reachable again" if up else "Kafka is unreachable")
                result = on_change(up)
                if asyncio.iscoroutine(result):
                    await result
            await asyncio.sleep(interval)

    def close(self, timeout: float = 10.0) -> None:
        self.ready = False
        if self._producer is not None:
            self._producer.flush(timeout=timeout)
            self._producer.close(timeout=timeout)
            self._producer = None


class _Acks:
    """Counts acknowledgements from the producer's I/O thread; wakes the loop once."""

    __slots__ = ("_failed", "_lock", "_loop", "_remaining", "_waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop, waiter: asyncio.Future[None],
                 count: int) -> None:  # fmt: skip
        self._loop = loop
        self._waiter = waiter
        self._remaining = count
        self._failed = False
        self._lock = threading.Lock()

    def ok(self, _metadata: object) -> None:
        with self._lock:
            self._remaining -= 1
            done = self._remaining == 0 and not self._failed
        if done:
            self._loop.call_soon_threadsafe(_set_result, self._waiter)

    def fail(self, exc: BaseException) -> None:
        with self._lock:
            first = not self._failed
            self._failed = True
        if first:
            self._loop.call_soon_threadsafe(_set_exception, self._waiter, exc)


def _set_result(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _set_exception(waiter: asyncio.Future[None], exc: BaseException) -> None:
    if not waiter.done():
        waiter.set_exception(exc)
