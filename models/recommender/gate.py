"""Champion/challenger gate: may a newly trained recommender replace the served one?

Both are measured on the same held-out items (each evaluated user's last interaction). The
challenger is published when its NDCG@10 is at least the champion's minus a margin
(``LUMEN_TRAINER_GATE_MARGIN``, default 0.0: it must be at least as good). Without a served
version, or with one that knows none of the product's items (a demo model on another
catalogue), there is nothing to lose and the challenger is published. ``force`` publishes a
refused challenger anyway, and the outcome says so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

MARGIN_ENV = "LUMEN_TRAINER_GATE_MARGIN"
DEFAULT_MARGIN = 0.0
METRIC = "ndcg@10"

Decision = Literal["published", "refused", "skipped", "forced"]
DECISIONS: tuple[Decision, ...] = ("published", "refused", "skipped", "forced")


def margin_from(variable: str, default: float) -> float:
    """A gate's margin from the environment ``variable`` (a metric difference, 0..1)."""
    raw = os.environ.get(variable, "")
    if not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{variable} must be a number ({raw!r} given)") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{variable} must be between 0 and 1 ({value} given)")
    return value


def margin_from_env() -> float:
    return margin_from(MARGIN_ENV, DEFAULT_MARGIN)


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    reason: str


def decide(
    challenger: Mapping[str, float],
    champion: Mapping[str, float] | None,
    *,
    margin: float = DEFAULT_MARGIN,
    force: bool = False,
    champion_known_items: int | None = None,
) -> Verdict:
    """``champion`` None: no version is served. ``champion_known_items``: how many of the
    product's items the served version knows (0: it cannot be compared)."""
    if margin < 0:
        raise ValueError(f"the margin must not be negative ({margin} given)")
    new = challenger[METRIC]
    if champion is None:
        return Verdict("published", "no recommender version is served yet")
    if champion_known_items == 0:
        return Verdict("published", "the served version knows none of the product's items")
    old = champion[METRIC]
    bar = old - margin
    compared = f"challenger {METRIC} {new:.4f} vs served {old:.4f} (margin {margin:g})"
    if new >= bar:
        return Verdict("published", f"{compared}: not worse than the served version")
    if force:
        return Verdict("forced", f"{compared}: worse than the served version, published by force")
    return Verdict("refused", f"{compared}: worse than the served version")
