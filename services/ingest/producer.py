"""Durable writes to Kafka: an awaitable wrapper around kafka-python's producer.

``acks=all`` with the idempotent producer, so a returned send means every in-sync replica has
the record; the asyncio side awaits kafka-python's futures without blocking the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Sequence

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

    def start(self) -> None:
        self._producer = KafkaProducer(
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
            reconnect_backoff_max_ms=2000,
            **self._settings.kafka_python_config(),
        )

    @property
    def started(self) -> bool:
        return self._producer is not None

    async def send_many(self, topic: str, records: Sequence[tuple[bytes, bytes]]) -> None:
        """Send (key, value) records; return once Kafka acknowledged all of them."""
        if self._producer is None:
            raise KafkaUnavailable("producer not started")
        loop = asyncio.get_running_loop()
        waiters: list[asyncio.Future[None]] = []
        try:
            for key, value in records:
                waiter: asyncio.Future[None] = loop.create_future()
                future = self._producer.send(topic, key=key, value=value)
                future.add_callback(_resolve, loop, waiter)
                future.add_errback(_reject, loop, waiter)
                waiters.append(waiter)
        except KafkaError as exc:  # e.g. metadata for the topic not available in max_block_ms
            for w in waiters:
                w.cancel()
            raise KafkaUnavailable(str(exc)) from exc
        try:
            await asyncio.wait_for(asyncio.gather(*waiters), timeout=self._timeout + 1)
        except (KafkaError, TimeoutError) as exc:
            raise KafkaUnavailable(str(exc) or type(exc).__name__) from exc

    def reachable(self, timeout: float = 0.5) -> bool:
        """True when the producer is started and a bootstrap broker accepts a connection."""
        if self._producer is None:
            return False
        for server in self._settings.bootstrap_list():
            host, _, port = server.rpartition(":")
            try:
                with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                    return True
            except (OSError, ValueError):
                continue
        return False

    def close(self, timeout: float = 10.0) -> None:
        if self._producer is not None:
            self._producer.flush(timeout=timeout)
            self._producer.close(timeout=timeout)
            self._producer = None


def _resolve(loop: asyncio.AbstractEventLoop, waiter: asyncio.Future[None], _meta: object) -> None:
    loop.call_soon_threadsafe(_set_result, waiter)


def _reject(
    loop: asyncio.AbstractEventLoop, waiter: asyncio.Future[None], exc: BaseException
) -> None:
    loop.call_soon_threadsafe(_set_exception, waiter, exc)


def _set_result(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _set_exception(waiter: asyncio.Future[None], exc: BaseException) -> None:
    if not waiter.done():
        waiter.set_exception(exc)
