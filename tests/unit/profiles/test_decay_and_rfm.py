"""Decay math against hand computations; RFM scores and segments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.profiles import decay, rfm
from services.profiles.parsing import PURCHASE, RATING, VIEW, Interaction

DAY = 86400.0
T0 = datetime(2024, 1, 1, tzinfo=UTC)


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
