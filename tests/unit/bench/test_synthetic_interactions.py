"""The synthetic interaction generator: sizes, power-law popularity, session locality, time
order and seeding."""

from __future__ import annotations

import numpy as np
import pytest

from bench.synthetic_interactions import SyntheticData, SyntheticSpec, generate, histories

SPEC = SyntheticSpec(n_items=2_000, n_users=5_000, n_interactions=60_000, seed=3)


@pytest.fixture(scope="module")
def data() -> SyntheticData:
    return generate(SPEC)


def test_sizes_and_ranges(data: SyntheticData) -> None:
    assert len(data.items) == len(data.users) == len(data.timestamps) == SPEC.n_interactions
    assert data.items.min() >= 0 and data.items.max() < SPEC.n_items
    assert len(np.unique(data.users)) == SPEC.n_users  # every user has a session
    per_user = histories(data, SPEC.n_users)
    assert sum(len(h) for h in per_user) == SPEC.n_interactions
    assert len(data.item_category) == SPEC.n_items == len(data.item_popularity)


def test_popularity_follows_the_power_law(data: SyntheticData) -> None:
    counts = np.sort(np.bincount(data.items, minlength=SPEC.n_items))[::-1]
    ranks = np.arange(1, SPEC.n_items + 1)
    slope = np.polyfit(np.log(ranks[5:300]), np.log(counts[5:300]), 1)[0]
    assert slope == pytest.approx(-SPEC.zipf_exponent, abs=0.15)
    assert counts[:20].sum() > 0.2 * SPEC.n_interactions  # a short head, a long tail


def test_sessions_stay_in_a_category_and_time_runs_forward(data: SyntheticData) -> None:
    same_session = (data.sessions[1:] == data.sessions[:-1]) & (data.users[1:] == data.users[:-1])
    category = data.item_category[data.items]
    within = (category[1:] == category[:-1])[same_session].mean()
    share = np.bincount(category) / len(category)
    chance = float((share**2).sum())  # two independent draws in the same category
    assert within > 0.5  # locality 0.8 on both sides
    assert within > 3 * chance
    same_user = data.users[1:] == data.users[:-1]
    assert np.all(np.diff(data.timestamps)[same_user] >= 0)
    lengths = np.bincount(data.sessions)
    assert lengths.mean() == pytest.approx(SPEC.session_length, rel=0.15)


def test_the_seed_fixes_the_data() -> None:
    small = SyntheticSpec(n_items=300, n_users=200, n_interactions=3_000, seed=9)
    first, again = generate(small), generate(small)
    np.testing.assert_array_equal(first.items, again.items)
    np.testing.assert_array_equal(first.timestamps, again.timestamps)
    other = generate(SyntheticSpec(n_items=300, n_users=200, n_interactions=3_000, seed=10))
    assert not np.array_equal(first.items, other.items)
