"""Decay math against hand computations; RFM scores and segments."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from services.profiles import decay, rfm
from services.profiles.parsing import PURCHASE, RATING, VIEW, Interaction

DAY = 86400.0
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def sorted_on_every_event(
    affinity: dict[str, float],
    at: datetime | None,
    moment: datetime,
    categories: tuple[str, ...],
    amount: float,
) -> tuple[dict[str, float], datetime]:
    """The reference rule: floor and top-N applied, and the map sorted, after every event."""
    affinity, at = decay.add(affinity, at, moment, categories, amount, DAY)
    kept = sorted(((v, k) for k, v in affinity.items() if v >= decay.FLOOR), reverse=True)
    return {k: v for v, k in kept[: decay.MAX_CATEGORIES]}, at


def test_trimming_only_when_needed_keeps_the_same_scores_and_order() -> None:
    rng = random.Random(3)
    lazy: dict[str, float] = {}
    eager: dict[str, float] = {}
    lazy_at: datetime | None = None
    eager_at: datetime | None = None
    moment = T0
    largest, dropped = 0, 0
    for _ in range(400):
        # long gaps push old categories under the floor; 60 names overflow the top 32
        moment += timedelta(hours=rng.choice([0.1] * 20 + [1, 30, 24 * 12]))
        when = moment - timedelta(hours=rng.choice([0, 0, 5]))  # some late events
        cats = tuple(f"c{rng.randint(0, 59)}" for _ in range(rng.randint(1, 3)))
        amount = rng.uniform(0.5, 5)
        before = len(eager)
        lazy, lazy_at = decay.add(lazy, lazy_at, when, cats, amount, DAY)
        eager, eager_at = sorted_on_every_event(eager, eager_at, when, cats, amount)
        assert lazy == eager  # the same scores, bit for bit
        largest = max(largest, len(eager))
        dropped += len(eager) < before
    assert lazy_at == eager_at
    assert list(decay.ordered(lazy).items()) == list(eager.items())
    assert largest == decay.MAX_CATEGORIES and dropped > 0  # both limits were exercised


def test_affinity_decays_by_half_each_half_life() -> None:
    affinity, at = decay.add({}, None, T0, ("A",), 1.0, DAY)
    affinity, at = decay.add(affinity, at, T0 + timedelta(days=1), ("A", "B"), 5.0, DAY)
    # A: 1 * 0.5 + 5 ; B: 5
    assert affinity == pytest.approx({"A": 5.5, "B": 5.0})
    affinity, at = decay.add(affinity, at, T0 + timedelta(days=3), ("B",), 4.0, DAY)
    # two more half-lives: A 5.5 / 4 ; B 5 / 4 + 4
    assert affinity == pytest.approx({"A": 1.375, "B": 5.25})
    assert at == T0 + timedelta(days=3)
    # A late event (day 2) is added already decayed to the reference time (day 3).
    affinity, at = decay.add(affinity, at, T0 + timedelta(days=2), ("A",), 1.0, DAY)
    assert affinity == pytest.approx({"A": 1.875, "B": 5.25})
    assert at == T0 + timedelta(days=3)
    assert decay.decayed(8.0, T0, T0 + timedelta(hours=36), DAY) == pytest.approx(8 * 2**-1.5)


def test_merging_two_maps_decays_both_to_the_later_time() -> None:
    merged, at = decay.merge({"A": 4.0}, T0, {"A": 1.0, "B": 2.0}, T0 + timedelta(days=2), DAY)
    assert at == T0 + timedelta(days=2)
    assert merged == pytest.approx({"A": 2.0, "B": 2.0})


def test_weights_per_kind_of_interaction() -> None:
    assert decay.weight(Interaction("1", VIEW, None)) == 1.0
    assert decay.weight(Interaction("1", PURCHASE, None, 3.0)) == 5.0
    assert decay.weight(Interaction("1", RATING, None, rating=5.0)) == 4.0
    assert decay.weight(Interaction("1", RATING, None, rating=2.0)) == pytest.approx(1.6)


def test_negligible_scores_are_dropped() -> None:
    affinity, _ = decay.add({"old": 1.0}, T0, T0 + timedelta(days=20), ("new",), 1.0, DAY)
    assert affinity == {"new": 1.0}


def test_rfm_scores_and_segments() -> None:
    now = T0
    assert rfm.scores(0, 0.0, None, now) is None
    champion = rfm.scores(25, 1200.0, now - timedelta(days=2), now)
    assert champion == rfm.Rfm(5, 5, 5, "champions")
    newcomer = rfm.scores(1, 30.0, now - timedelta(days=1), now)
    assert newcomer == rfm.Rfm(5, 1, 1, "new")
    at_risk = rfm.scores(6, 250.0, now - timedelta(days=120), now)
    assert at_risk == rfm.Rfm(2, 3, 3, "at_risk")
    lapsed = rfm.scores(2, 60.0, now - timedelta(days=400), now)
    assert lapsed == rfm.Rfm(1, 2, 2, "hibernating")
    loyal = rfm.scores(12, 520.0, now - timedelta(days=60), now)
    assert loyal == rfm.Rfm(3, 4, 4, "loyal")
