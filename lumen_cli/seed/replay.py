"""Rate-controlled, resumable replay: batches go out, the checkpoint moves after each ack.

The checkpoint (``var/data/seed/checkpoint.json``) records, per phase, which selection was
replayed and how many of its records were acknowledged; a later run skips those. A phase whose
selection changed starts again from zero (the stable messageIds make ingest drop repeats).
"""

from __future__ import annotations

import base64
import http.client
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from shared.timestamps import format_iso, now_iso


class SeedError(RuntimeError):
    """The replay cannot go on; the message says what to do. ``unreachable`` picks exit 3."""

    def __init__(self, message: str, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


class TokenBucket:
    """Allows ``rate`` records per second on average, in bursts of at most ``burst``."""

    def __init__(
        self,
        rate: float,
        burst: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate, self.burst = rate, burst
        self.clock, self.sleep = clock, sleep
        self.tokens = burst
        self.last = clock()

    def take(self, n: int) -> None:
        if self.rate <= 0:
            return  # unlimited
        while True:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
            self.last = now
            if self.tokens >= n or (n > self.burst and self.tokens >= self.burst):
                self.tokens -= n
                return
            self.sleep((min(n, self.burst) - self.tokens) / self.rate)


@dataclass
class Checkpoint:
    path: Path
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        try:
            data = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return cls(path)
        return cls(path, dict(data.get("phases", {})))

    def done(self, phase: str, plan: str) -> int:
        entry = self.phases.get(phase)
        return int(entry["done"]) if entry and entry.get("plan") == plan else 0

    def advance(self, phase: str, plan: str, done: int, total: int) -> None:
        self.phases[phase] = {
            "plan": plan,
            "done": done,
            "total": total,
            "at": datetime.now(UTC).isoformat(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        partial.write_text(json.dumps({"phases": self.phases}, indent=2))
        partial.replace(self.path)  # atomic: a crash never leaves half a checkpoint


@dataclass
class PhaseResult:
    phase: str
    total: int
    skipped: int = 0  # acknowledged by an earlier run
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    seconds: float = 0.0
    rejections: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Ack:
    accepted: int
    duplicates: int
    rejected: list[dict[str, Any]]


class IngestBatchSender:
    """POSTs batches to ingest's ``/v1/batch`` over one kept-alive HTTP connection."""

    def __init__(
        self,
        base_url: str,
        write_key: str,
        timeout: float = 30.0,
        max_attempts: int = 8,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        url = urlparse(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise SeedError(f"LUMEN_INGEST_URL {base_url!r} is not an http(s) URL")
        self.base_url = base_url
        self.url = url
        self.path = url.path.rstrip("/") + "/v1/batch"
        self.auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
        self.timeout, self.max_attempts, self.sleep = timeout, max_attempts, sleep
        self.conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            cls = (
                http.client.HTTPSConnection
                if self.url.scheme == "https"
                else http.client.HTTPConnection
            )
            self.conn = cls(self.url.hostname or "", self.url.port, timeout=self.timeout)
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def send(self, events: Sequence[dict[str, Any]]) -> Ack:
        body = json.dumps({"batch": list(events), "sentAt": now_iso()}).encode()
        headers = {"Authorization": self.auth, "Content-Type": "application/json"}
        for attempt in range(1, self.max_attempts + 1):
            try:
                conn = self._connection()
                conn.request("POST", self.path, body, headers)
                response = conn.getresponse()
                status, raw = response.status, response.read()
                retry_after = response.getheader("Retry-After")
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if attempt == self.max_attempts:
                    raise SeedError(
                        f"ingest at {self.base_url} is not reachable ({exc}); is the "
                        "platform up? `lumen status`",
                        unreachable=True,
                    ) from None
                self.sleep(min(2.0**attempt * 0.1, 5.0))
                continue
            if status == 200 or status == 400:
                reply = json.loads(raw or b"{}")
                rejected = list(reply.get("rejected", []))
                duplicates = int(reply.get("duplicates", 0))
                accepted = int(reply.get("accepted", len(events) - duplicates - len(rejected)))
                if status == 400 and not rejected:
                    raise SeedError(f"ingest refused the batch: {reply.get('error')}")
                if any(r.get("reason") == "insufficient_scope" for r in rejected):
                    # Otherwise the catalogue would be skipped silently, event by event.
                    raise SeedError(
                        "ingest refused the catalogue (Item Upserted): set "
                        "LUMEN_WRITE_KEY to a key listed in ingest's "
                        "LUMEN_INGEST_CATALOG_KEYS"
                    )
                return Ack(accepted, duplicates, rejected)
            if status == 401:
                raise SeedError(
                    "ingest refused the write key: set LUMEN_WRITE_KEY to a key "
                    "listed in ingest's LUMEN_INGEST_WRITE_KEYS"
                )
            if status in (429, 503) and attempt < self.max_attempts:
                # Rate-limited or Kafka briefly away: nothing was stored, send the same batch.
                self.sleep(float(retry_after) if retry_after else 1.0)
                continue
            raise SeedError(f"ingest answered {status}: {raw[:300]!r}", unreachable=status == 503)
        raise SeedError("unreachable")  # the loop always returns or raises


class SupportProducer:
    """Writes support messages to ``support.messages``, keyed by conversation."""

    def __init__(self) -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        from shared.kafka_config import kafka_python_config
        from shared.settings import KafkaSettings

        settings = KafkaSettings()
        try:
            self.producer = KafkaProducer(
                acks="all", linger_ms=5, client_id="lumen-seed", **kafka_python_config(settings)
            )
        except (KafkaError, OSError) as exc:
            raise SeedError(
                f"Kafka at {settings.bootstrap_servers} is not reachable ({exc}); is "
                "the platform up? `lumen status`",
                unreachable=True,
            ) from None

    def send(self, messages: Sequence[dict[str, Any]]) -> Ack:
        from shared.messages import SupportMessage

        now = now_iso()
        futures = [
            self.producer.send(
                SupportMessage.topic.name,
                key=m["conversationId"].encode(),
                value=SupportMessage.model_validate({**m, "sentAt": now}).encode(),
            )
            for m in messages
        ]
        for future in futures:
            future.get(timeout=30)  # raises if Kafka did not acknowledge
        return Ack(len(messages), 0, [])

    def close(self) -> None:
        self.producer.close(timeout=10)


# Gives a batch its timestamps at ``now``, the time it is sent.
Stamper = Callable[[Sequence[dict[str, Any]], datetime], list[dict[str, Any]]]


def stamp(events: Sequence[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Give a batch replay-time timestamps, 1 ms apart, oldest first, ending at ``now``."""
    n = len(events)
    return [
        {**e, "timestamp": format_iso(now - timedelta(milliseconds=n - 1 - i))}
        for i, e in enumerate(events)
    ]


def original_spacing(last: float, at: Callable[[dict[str, Any]], float]) -> Stamper:
    """Stamp each event at its original time (``at``, Unix seconds) shifted so that the
    phase's ``last`` original time lands at the send time: the replay keeps the order and the
    gaps of the data set, and its newest events are recent (today's trends, the trainer's
    split by time). The shift is taken per batch, so a batch sent later moves a little later;
    order is kept and no event is stamped after it is sent."""

    def shifted(events: Sequence[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
        return [
            {**e, "timestamp": format_iso(now - timedelta(seconds=last - at(e)))} for e in events
        ]

    return shifted


@dataclass
class Replayer:
    checkpoint: Checkpoint
    bucket: TokenBucket
    batch_size: int
    progress: Callable[[str, int, int], Any]  # (phase, total, initial) -> bar with update()

    def run(
        self,
        phase: str,
        plan: str,
        records: Sequence[dict[str, Any]],
        send: Callable[[Sequence[dict[str, Any]]], Ack],
        timestamped: bool,
        stamper: Stamper = stamp,
    ) -> PhaseResult:
        total = len(records)
        done = min(self.checkpoint.done(phase, plan), total)
        result = PhaseResult(phase, total, skipped=done)
        started = time.monotonic()
        bar = self.progress(phase, total, done)
        try:
            while done < total:
                batch = list(records[done : done + self.batch_size])
                self.bucket.take(len(batch))
                if timestamped:
                    batch = stamper(batch, datetime.now(UTC))
                ack = send(batch)
                result.sent += len(batch)
                result.accepted += ack.accepted
                result.duplicates += ack.duplicates
                result.rejected += len(ack.rejected)
                for rejection in ack.rejected[: 5 - len(result.rejections)]:
                    index = int(rejection.get("index", 0))
                    result.rejections.append(
                        {**rejection, "messageId": batch[index].get("messageId")}
                    )
                done += len(batch)
                self.checkpoint.advance(phase, plan, done, total)
                bar.update(len(batch))
        finally:
            bar.close()
            result.seconds = round(time.monotonic() - started, 2)
        return result
