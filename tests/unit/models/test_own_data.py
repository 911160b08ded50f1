"""The product's own data: item axis, histories and the time-ordered split (no MongoDB)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from models.recommender.own_data import build, split_histories, window_start
from shared import interactions
from shared.catalogue import CatalogueItem

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def doc(n: int, user: str, item: str) -> dict[str, object]:
    return interactions.StoredInteraction(
        f"m{n}:0", user, item, "view", T0 + timedelta(minutes=n), 1.0
    ).to_document()


def test_split_holds_out_the_last_two_and_keeps_short_users_for_training() -> None:
    histories = [np.array([0, 1, 2, 3]), np.array([4, 5]), np.array([6, 7, 8])]
    split = split_histories(histories, 9, ["a", "b", "c"])

    assert split.eval_users.tolist() == [0, 2]
    assert split.test.tolist() == [3, 8]
    assert split.tuning.tolist() == [2, 7]
    assert [h.tolist() for h in split.train] == [[0, 1], [4, 5], [6]]
    assert split.eval_candidates == 2
    # Tuning is predicted from train; the test item from train + tuning.
    assert [h.tolist() for h in split.histories("tuning")] == [[0, 1], [6]]
    assert [h.tolist() for h in split.histories("test")] == [[0, 1, 2], [6, 7]]
    assert [h.tolist() for h in split.fit_histories("test")] == [[0, 1, 2], [4, 5], [6, 7]]


def test_a_capped_split_holds_out_a_seeded_sample_and_the_rest_train_on_everything() -> None:
    histories = [np.arange(u, u + 5) for u in range(50)]
    split = split_histories(histories, 60, max_eval_users=10, seed=3)
    again = split_histories(histories, 60, max_eval_users=10, seed=3)
    other = split_histories(histories, 60, max_eval_users=10, seed=4)

    assert len(split.eval_users) == 10 and split.eval_candidates == 50
    assert split.eval_users.tolist() == again.eval_users.tolist()
    assert split.eval_users.tolist() != other.eval_users.tolist()
    held = set(split.eval_users.tolist())
    for u, h in enumerate(split.train):
        assert len(h) == (3 if u in held else 5)


def test_item_axis_is_live_catalogue_plus_interacted_items_minus_removed() -> None:
    items = [
        CatalogueItem("sku-b", title="B", categories=("x",), description="A fine b."),
        CatalogueItem("sku-a", title="A"),
        CatalogueItem("sku-gone", title="Gone", removed=True),
        CatalogueItem("sku-cold", title="Never seen"),
    ]
    rows = [
        doc(0, "u1", "sku-a"),
        doc(1, "u1", "sku-gone"),
        doc(2, "u2", "sku-b"),
        doc(3, "u1", "sku-only-in-events"),
        doc(4, "u2", "sku-a"),
    ]
    data = build(items, rows, "shop")

    assert data.item_ids == ["sku-a", "sku-b", "sku-cold", "sku-only-in-events"]
    assert data.titles == ["A", "B", "Never seen", ""]
    assert data.categories[1] == ["x"]
    assert data.descriptions == ["", "A fine b.", "", ""]
    assert data.item_texts()[:2] == ["A", "B Categories: x. A fine b."]
    assert data.cold == frozenset({"sku-cold"})
    assert data.users == ["u1", "u2"]
    named = [[data.item_ids[r] for r in h] for h in data.histories]
    assert named == [["sku-a", "sku-only-in-events"], ["sku-b", "sku-a"]]
    assert data.n_interactions == 4
    assert data.first == T0 and data.last == T0 + timedelta(minutes=4)
    assert data.database == "shop"


def test_an_empty_store_has_no_items_users_or_window() -> None:
    data = build([], [])
    assert (data.item_ids, data.users, data.first, data.last) == ([], [], None, None)
    split = split_histories(data.histories, data.n_items)
    assert len(split.eval_users) == 0


def test_a_window_keeps_the_last_days_and_must_be_positive() -> None:
    assert window_start(None) is None
    assert window_start(2.5, now=T0) == T0 - timedelta(days=2.5)
    for days in (0, -1):
        with pytest.raises(ValueError, match="positive"):
            window_start(days, now=T0)
