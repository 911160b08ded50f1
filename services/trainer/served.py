"""The served version as the registry records it: its number, quality and what it was
trained on. The newest complete version is the one inference serves (it hot-swaps to it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.trainer.outcome import QUALITY_METRICS, parse_window_end, quality
from shared.model_registry import RegistryError, get_version, latest_version


@dataclass(frozen=True)
class Served:
    version: int | None
    quality: dict[str, float] = field(default_factory=dict)
    created_at: datetime | None = None
    window_end: datetime | None = None  # the newest interaction it was trained on, if recorded


def recorded_quality(metrics: Mapping[str, Any]) -> dict[str, float]:
    """hr@10 and ndcg@10 from a config.json ``metrics`` block: at its top level, the test
    figures of a version trained from events (``test.challenger``), or the offline build's
    served-model row (``test.<name> (served).full``)."""
    candidates: list[Any] = [metrics, metrics.get("challenger")]
    test = metrics.get("test")
    if isinstance(test, Mapping):
        candidates.append(test.get("challenger"))
        for name, rows in test.items():
            if "(served)" in str(name) and isinstance(rows, Mapping):
                candidates.append(rows.get("full"))
    candidates.append(metrics.get("valid_served_model"))
    for candidate in candidates:
        found = quality(candidate)
        if len(found) == len(QUALITY_METRICS):
            return found
    return {}


def read_served(model_name: str) -> Served:
    version = latest_version(model_name)
    if version is None:
        return Served(None)
    try:
        config = get_version(model_name, version).config
    except RegistryError:
        return Served(version)
    return Served(
        version,
        recorded_quality(config.metrics),
        config.created_at,
        parse_window_end(config.metrics.get("window") or config.extra.get("window")),
    )
