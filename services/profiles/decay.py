"""Per-category interest with exponential time decay.

A profile keeps ``affinity`` (category -> score) valid *as of* ``affinityAt``. An interaction
of weight ``w`` at time ``t`` first decays every score to ``t`` by ``2 ** (-(t - at) / h)``
(``h`` the half-life), then adds ``w`` to each of the item's categories. A late event
(``t`` before ``affinityAt``) adds its weight already decayed to ``affinityAt``. Readers decay
the stored scores to their own clock with ``decayed``.
"""

from __future__ import annotations

from datetime import datetime

from services.profiles.parsing import Interaction
from shared.vocabulary import PerStar, weights_by_kind

# Interaction kind -> weight, from the shared vocabulary (a rating's follows its stars).
WEIGHTS = weights_by_kind()
# Scores that decayed below this are dropped so the document stays small.
FLOOR = 0.001
MAX_CATEGORIES = 32


def weight(interaction: Interaction) -> float:
    rule = WEIGHTS[interaction.kind]
    return rule.of(interaction.rating) if isinstance(rule, PerStar) else rule


def factor(elapsed_seconds: float, half_life_seconds: float) -> float:
    """Decay factor over ``elapsed_seconds``: 0.5 after one half-life."""
    return float(2.0 ** (-elapsed_seconds / half_life_seconds))


def decayed(score: float, since: datetime, until: datetime, half_life_seconds: float) -> float:
    return score * factor(max(0.0, (until - since).total_seconds()), half_life_seconds)


def add(
    affinity: dict[str, float],
    at: datetime | None,
    moment: datetime,
    categories: tuple[str, ...],
    amount: float,
    half_life_seconds: float,
) -> tuple[dict[str, float], datetime]:
    """Return the new (affinity, affinityAt) after adding ``amount`` at ``moment``."""
    if at is None:
        at = moment
    if moment > at:
        scale = factor((moment - at).total_seconds(), half_life_seconds)
        affinity = {k: v * scale for k, v in affinity.items()}
        at = moment
        gain = amount
    else:
        affinity = dict(affinity)
        gain = amount * factor((at - moment).total_seconds(), half_life_seconds)
    for category in categories:
        affinity[category] = affinity.get(category, 0.0) + gain
    return trimmed(affinity), at


def trimmed(affinity: dict[str, float]) -> dict[str, float]:
    """Scores at or above the floor, the highest ``MAX_CATEGORIES`` first. Sorting on every
    event was most of the cost of ``add``; when nothing is dropped only the order changes,
    so the sort waits for ``ordered`` (the stored form)."""
    if len(affinity) <= MAX_CATEGORIES and (not affinity or min(affinity.values()) >= FLOOR):
        return affinity
    return ordered(affinity)


def ordered(affinity: dict[str, float]) -> dict[str, float]:
    kept = sorted(((v, k) for k, v in affinity.items() if v >= FLOOR), reverse=True)
    return {k: v for v, k in kept[:MAX_CATEGORIES]}


def merge(
    left: dict[str, float],
    left_at: datetime | None,
    right: dict[str, float],
    right_at: datetime | None,
    half_life_seconds: float,
) -> tuple[dict[str, float], datetime | None]:
    """Sum two affinity maps, both decayed to the later of their reference times."""
    if left_at is None:
        return dict(right), right_at
    if right_at is None:
        return dict(left), left_at
    at = max(left_at, right_at)
    total: dict[str, float] = {}
    for scores, since in ((left, left_at), (right, right_at)):
        scale = factor((at - since).total_seconds(), half_life_seconds)
        for k, v in scores.items():
            total[k] = total.get(k, 0.0) + v * scale
    return ordered(total), at
