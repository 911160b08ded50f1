"""What a batch is made of (Kafka records) and what applying it produced."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from services.profiles.parsing import PROCESSING_ERROR, ParsedEvent, PoisonEvent


@dataclass(frozen=True)
class Record:
    """One Kafka record as the store needs it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    failure: str | None = None  # set when applying it failed: DLQ it with failure_reason
    failure_reason: str = PROCESSING_ERROR


@dataclass
class BatchResult:
    applied: list[ParsedEvent] = field(default_factory=list)
    skipped: int = 0  # already applied earlier (a replay)
    poison: list[tuple[Record, PoisonEvent]] = field(default_factory=list)
    # profiles.updated: (key, compact summary), or (key, None) for a tombstone
    messages: list[tuple[str, dict[str, Any] | None]] = field(default_factory=list)
    erased: int = 0
    suppressed: int = 0  # events of erased ids, dropped
    limited: Counter[str] = field(default_factory=Counter)  # what the profile caps refused
    refused: Counter[str] = field(default_factory=Counter)  # links the identity rules refused

    def __add__(self, other: BatchResult) -> BatchResult:
        return BatchResult(
            applied=self.applied + other.applied,
            skipped=self.skipped + other.skipped,
            poison=self.poison + other.poison,
            messages=self.messages + other.messages,
            erased=self.erased + other.erased,
            suppressed=self.suppressed + other.suppressed,
            limited=self.limited + other.limited,
            refused=self.refused + other.refused,
        )
