"""Consumer lag from polled offsets: messages, estimated seconds, and a Burrow-style status.

Pure logic, fed one poll at a time by ``kafka_poller``. Per partition it keeps a sliding window
of the last N polls. The window gives, without any fixed threshold:

* the estimated time lag, as the known Kafka lag exporters do: the window is a table of
  (time, end offset); the time at which the end offset passed the group's committed offset is
  interpolated from it, and the lag is the time elapsed since then;
* the status of a group, following Burrow's evaluation rules (worst partition wins):
  OK when the lag was zero at any point of the window; STOPPED when there is lag and the group
  has no active member (nobody will commit again); STALLED when the committed offset did not
  move across the window while the lag stayed or grew; WARNING when the consumer commits but
  the lag grew at every step of the window (it falls behind); otherwise OK.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from itertools import pairwise
from typing import TypeVar

TopicPartition = tuple[str, int]
T = TypeVar("T")
# Minimum number of polls before a partition can be judged STALLED or WARNING.
MIN_SAMPLES_FOR_TREND = 3


class LagStatus(IntEnum):
    OK = 0
    WARNING = 1
    STALLED = 2
    STOPPED = 3


@dataclass(frozen=True)
class Sample:
    at: float
    end_offset: int
    committed: int

    @property
    def lag(self) -> int:
        return max(0, self.end_offset - self.committed)


def produce_rate(table: Sequence[tuple[float, int]]) -> float:
    """Messages per second appended to a partition over the (time, end offset) table."""
    if len(table) < 2 or table[-1][0] <= table[0][0]:
        return 0.0
    return max(0.0, (table[-1][1] - table[0][1]) / (table[-1][0] - table[0][0]))


def estimate_time_lag(table: Sequence[tuple[float, int]], committed: int, now: float) -> float:
    """Seconds since the end offset passed ``committed`` (0 when the consumer is caught up).

    Interpolates inside the table; before its first entry, extrapolates with the table's rate
    (with no rate at all, the lag is at least the table's age).
    """
    if not table or committed >= table[-1][1]:
        return 0.0
    first_at, first_offset = table[0]
    if committed < first_offset:
        rate = produce_rate(table)
        produced_at = first_at - (first_offset - committed) / rate if rate > 0 else first_at
        return max(0.0, now - produced_at)
    for (at_a, off_a), (at_b, off_b) in pairwise(table):
        if off_a <= committed < off_b:
            produced_at = at_a + (committed - off_a) * (at_b - at_a) / (off_b - off_a)
            return max(0.0, now - produced_at)
    return 0.0  # unreachable: committed < last offset always falls in some interval


def partition_status(window: Sequence[Sample], has_members: bool) -> LagStatus:
    """Burrow's rules applied to one partition's window of polls (oldest first)."""
    if not window or any(s.lag == 0 for s in window):
        return LagStatus.OK
    if not has_members:
        return LagStatus.STOPPED
    if len(window) < MIN_SAMPLES_FOR_TREND:
        return LagStatus.OK
    lags = [s.lag for s in window]
    if window[0].committed == window[-1].committed and lags[-1] >= lags[0]:
        return LagStatus.STALLED
    if all(b > a for a, b in pairwise(lags)):
        return LagStatus.WARNING
    return LagStatus.OK


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int
    lag_messages: int
    lag_seconds: float


@dataclass(frozen=True)
class LagSnapshot:
    """What one poll exports."""

    end_offsets: dict[TopicPartition, int] = field(default_factory=dict)
    produce_rates: dict[TopicPartition, float] = field(default_factory=dict)
    partitions: list[PartitionLag] = field(default_factory=list)
    group_status: dict[str, LagStatus] = field(default_factory=dict)
    group_members: dict[str, int] = field(default_factory=dict)


class LagTracker:
    """Keeps the sliding windows between polls and turns each poll into a ``LagSnapshot``."""

    def __init__(self, window: int) -> None:
        self.window = window
        self._tables: dict[TopicPartition, deque[tuple[float, int]]] = {}
        self._samples: dict[tuple[str, str, int], deque[Sample]] = {}

    def observe(
        self,
        now: float,
        end_offsets: Mapping[TopicPartition, int],
        committed: Mapping[str, Mapping[TopicPartition, int]],
        members: Mapping[str, int],
    ) -> LagSnapshot:
        self._tables = {
            tp: self._append(self._tables.get(tp), (now, offset))
            for tp, offset in end_offsets.items()
        }
        samples: dict[tuple[str, str, int], deque[Sample]] = {}
        rows: list[PartitionLag] = []
        statuses: dict[str, LagStatus] = {}
        for group in sorted(set(committed) | set(members)):
            status = LagStatus.OK
            for tp, offset in sorted(committed.get(group, {}).items()):
                if tp not in end_offsets or offset < 0:
                    continue  # not a watched topic, or no commit yet
                key = (group, *tp)
                window = self._append(self._samples.get(key), Sample(now, end_offsets[tp], offset))
                samples[key] = window
                lag = window[-1].lag
                seconds = estimate_time_lag(self._tables[tp], offset, now) if lag else 0.0
                rows.append(PartitionLag(group, tp[0], tp[1], offset, lag, seconds))
                status = max(status, partition_status(window, members.get(group, 0) > 0))
            statuses[group] = status
        self._samples = samples  # groups and partitions that disappeared are forgotten
        return LagSnapshot(
            end_offsets=dict(end_offsets),
            produce_rates={tp: produce_rate(t) for tp, t in self._tables.items()},
            partitions=rows,
            group_status=statuses,
            group_members=dict(members),
        )

    def _append(self, history: Iterable[T] | None, item: T) -> deque[T]:
        window: deque[T] = deque(history or (), maxlen=self.window)
        window.append(item)
        return window
