"""A counted, paced event load against ingest's HTTP API, and the checks on where it landed.

Every event carries a unique ``messageId``; the load remembers which ids ingest acknowledged
with 2xx. A refused batch (503, 429, a connection error) is retried later with the same ids,
as a Segment client does, until it is acknowledged or the run is over.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from tests.support.profiles_worker import read_topic
from tests.support.stack import Stack


@dataclass
class Batch:
    events: list[dict[str, Any]]
    attempts: int = 0


@dataclass
class EventLoad:
    """``rate`` events/s in requests of ``batch`` events, spread over ``users`` users."""

    base_url: str
    write_key: str
    rate: float = 250.0
    batch: int = 10
    users: int = 50
    prefix: str = field(default_factory=lambda: f"load-{uuid.uuid4().hex[:6]}")
    statuses: Counter[str] = field(default_factory=Counter)
    acked: dict[str, str] = field(default_factory=dict)  # messageId -> userId
    sent: int = 0  # distinct events generated
    requests: int = 0
    retries: int = 0
    timeline: list[tuple[float, str]] = field(default_factory=list)  # (monotonic, outcome)
    refused_then_retried: set[str] = field(default_factory=set)  # ids of batches sent again

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._pending: list[Batch] = []
        self._thread: threading.Thread | None = None
        self._client = httpx.Client(auth=(self.write_key, ""), timeout=15)

    # -- generating --------------------------------------------------------------------------
    def _new_batch(self) -> Batch:
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        events = []
        for _ in range(self.batch):
            n = self.sent
            self.sent += 1
            events.append(
                {
                    "type": "track",
                    "userId": f"{self.prefix}-u{n % self.users}",
                    "event": "Item Viewed",
                    "messageId": f"{self.prefix}-m{n}",
                    "timestamp": now,
                    "properties": {
                        "itemId": f"{self.prefix}-i{n % 37}",
                        "categories": [f"c{n % 5}"],
                    },
                }
            )
        return Batch(events)

    def _send(self, batch: Batch) -> bool:
        batch.attempts += 1
        self.requests += 1
        if batch.attempts > 1:
            self.retries += 1
            self.refused_then_retried.update(e["messageId"] for e in batch.events)
        try:
            response = self._client.post(f"{self.base_url}/v1/batch", json={"batch": batch.events})
            outcome = str(response.status_code)
        except httpx.HTTPError as exc:
            response, outcome = None, type(exc).__name__
        self.statuses[outcome] += 1
        self.timeline.append((time.monotonic(), outcome))
        if response is not None and response.status_code == 200:
            body = response.json()
            assert not body.get("rejected"), body  # the load only sends valid events
            for event in batch.events:
                self.acked[event["messageId"]] = event["userId"]
            return True
        return False

    def _run(self) -> None:
        interval = self.batch / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            batch = self._new_batch()
            if not self._send(batch):
                self._pending.append(batch)
            if self._pending and self._send(self._pending[0]):
                self._pending.pop(0)
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    # -- control -----------------------------------------------------------------------------
    def start(self) -> EventLoad:
        self._thread = threading.Thread(target=self._run_safely, name="event-load", daemon=True)
        self._thread.start()
        return self

    def _run_safely(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # surfaced by stop()
            self._error: BaseException | None = exc
            raise

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        error = getattr(self, "_error", None)
        if error is not None:
            raise AssertionError(f"the load generator failed: {error!r}") from error

    def drain(self, timeout: float = 60.0) -> None:
        """Retry what is still refused until ingest acknowledges it (or ``timeout``)."""
        deadline = time.monotonic() + timeout
        while self._pending and time.monotonic() < deadline:
            if self._send(self._pending[0]):
                self._pending.pop(0)
            else:
                time.sleep(0.5)
        self._client.close()

    @property
    def unacknowledged(self) -> int:
        return sum(len(b.events) for b in self._pending)

    def outcomes_between(self, start: float, end: float) -> Counter[str]:
        return Counter(o for t, o in self.timeline if start <= t <= end)


def landed(stack: Stack, topic: str, prefix: str) -> tuple[Counter[str], dict[str, str]]:
    """For the events of one load: messageId -> how many records of ``topic`` carry it, and
    messageId -> userId."""
    counts: Counter[str] = Counter()
    users: dict[str, str] = {}
    for _, value in read_topic(stack, topic, timeout_ms=4000):
        if value is None or prefix.encode() not in value:
            continue
        event = orjson.loads(value)
        if str(event.get("messageId", "")).startswith(prefix):
            counts[event["messageId"]] += 1
            users[event["messageId"]] = event["userId"]
    return counts, users


@dataclass(frozen=True)
class Delivery:
    """The exact final check of a load: what was acknowledged against what landed."""

    acknowledged: int
    landed_distinct: int
    lost: int  # acknowledged, not in the topic
    duplicated: int  # records beyond the first of any messageId
    landed_unacknowledged: int  # in the topic although the client never heard 2xx
    duplicated_after_a_refusal: int  # duplicates whose first copy was answered 503, then retried

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def delivery(load: EventLoad, counts: Counter[str]) -> Delivery:
    return Delivery(
        acknowledged=len(load.acked),
        landed_distinct=len(counts),
        lost=sum(1 for m in load.acked if counts[m] == 0),
        duplicated=sum(c - 1 for c in counts.values() if c > 1),
        landed_unacknowledged=sum(1 for m in counts if m not in load.acked),
        duplicated_after_a_refusal=sum(
            c - 1 for m, c in counts.items() if c > 1 and m in load.refused_then_retried
        ),
    )
