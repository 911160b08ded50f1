"""What one training run decided, read from the JSON the training command writes.

The command (``python -m models train recommender --from-events --json-result PATH``) exits 0
after a decision and writes it: published, refused (the new version did not beat the served
one), skipped (nothing new to learn from) or forced (published by --force). Anything else (a
non-zero exit, a "failed" decision, a missing or unreadable file, an unknown decision, a timeout) is a failed run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.timestamps import parse_iso

DECISIONS = ("published", "refused", "skipped", "forced")
FAILED = "failed"
OUTCOMES = (*DECISIONS, FAILED)
# A new version serves after these (the others leave the served version as it was).
PUBLISHING = ("published", "forced")
QUALITY_METRICS = ("hr@10", "ndcg@10")


@dataclass(frozen=True)
class Outcome:
    decision: str  # one of OUTCOMES
    reason: str
    version: int | None = None
    served_version: int | None = None
    challenger: dict[str, float] = field(default_factory=dict)
    champion: dict[str, float] = field(default_factory=dict)
    window_end: datetime | None = None  # the newest interaction the run read
    counts: dict[str, Any] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.decision != FAILED

    def served_quality(self) -> dict[str, float]:
        """Quality of the version serving after this run, when the run measured it."""
        return self.challenger if self.decision in PUBLISHING else self.champion


def failed(reason: str) -> Outcome:
    return Outcome(FAILED, reason)


def quality(raw: Any) -> dict[str, float]:
    """The finite hr@10 and ndcg@10 of a metrics mapping (others and junk left out)."""
    if not isinstance(raw, Mapping):
        return {}
    found = {}
    for name in QUALITY_METRICS:
        value = raw.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            found[name] = float(value)
    return found


def _version(raw: Any) -> int | None:
    return raw if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0 else None


def parse_window_end(raw: Any) -> datetime | None:
    """The window's last time: an ISO-8601 date-time or epoch seconds."""
    if not isinstance(raw, list | tuple) or len(raw) != 2:
        return None
    last = raw[1]
    try:
        if isinstance(last, str):
            return parse_iso(last)
        if isinstance(last, int | float) and not isinstance(last, bool):
            return datetime.fromtimestamp(last, UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def parse_outcome(data: Any) -> Outcome:
    if not isinstance(data, Mapping):
        return failed("the result is not a JSON object")
    decision = data.get("decision")
    if decision not in DECISIONS:
        return failed(f"unknown decision {decision!r}")
    counts = data.get("counts")
    # The figures at the top level, or grouped under "metrics".
    grouped = data.get("metrics")
    figures = grouped if isinstance(grouped, Mapping) else {}
    return Outcome(
        decision=str(decision),
        reason=str(data.get("reason") or ""),
        version=_version(data.get("version")),
        served_version=_version(data.get("served_version")),
        challenger=quality(data.get("challenger") or figures.get("challenger")),
        champion=quality(data.get("champion") or figures.get("champion")),
        window_end=parse_window_end(data.get("window")),
        counts=dict(counts) if isinstance(counts, Mapping) else {},
    )


def read_outcome(exit_code: int, result_path: Path) -> Outcome:
    """The run's outcome from its exit code and result file (a failing command may still
    write one, with its reason)."""
    if exit_code != 0:
        try:
            reason = json.loads(result_path.read_text()).get("reason")
        except (OSError, ValueError, AttributeError):
            reason = None
        return failed(f"exit code {exit_code}" + (f": {reason}" if reason else ""))
    try:
        data = json.loads(result_path.read_text())
    except FileNotFoundError:
        return failed("the command wrote no result")
    except (OSError, ValueError) as exc:
        return failed(f"unreadable result: {exc}")
    return parse_outcome(data)
