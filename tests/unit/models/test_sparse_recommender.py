"""The sparse (top-m neighbours) recommender: its neighbour lists, its numpy scorer, and its
ONNX graph's parity with that scorer (items, scores, reasons)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import scipy.sparse as sp

from models.recommender import model_choice
from models.recommender.model_choice import DenseRecommender, fit
from models.recommender.neighbours import (
    NeighbourParams,
    SparseNeighbours,
    cooccurrence_neighbours,
    top_per_row,
    transition_neighbours,
)
from models.recommender.sequential import SequentialParams

N_ITEMS = 120


def _histories(seed: int = 0, users: int = 300) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, N_ITEMS, int(rng.integers(2, 30))) for _ in range(users)]


def _model(m: int = 12, max_len: int = 20) -> SparseNeighbours:
    return SparseNeighbours(
        _histories(), N_ITEMS, SequentialParams(max_len=max_len), NeighbourParams(neighbours=m)
    )


def _session(model: SparseNeighbours, prior: np.ndarray) -> ort.InferenceSession:
    return ort.InferenceSession(
        model.to_onnx(prior).SerializeToString(), providers=["CPUExecutionProvider"]
    )


def _recent(rng: np.random.Generator, batch: int, length: int) -> np.ndarray:
    recent = np.where(
        rng.random((batch, length)) < 0.3, -1, rng.integers(0, N_ITEMS, (batch, length))
    )
    recent[0] = -1  # no history at all: the prior ranks
    recent[1, :-1] = -1  # a single click
    recent[1, -1] = 7
    recent[2:, -1] = rng.integers(0, N_ITEMS, batch - 2)  # every other user has a history
    return recent


def _dense_tables(model: SparseNeighbours) -> tuple[np.ndarray, np.ndarray]:
    """The neighbour lists written out as two N x N tables."""
    n = model.n_items
    m = model.neighbour_ids.shape[1]
    full = sp.csr_matrix(
        (
            model.neighbour_weights.ravel(),
            (np.repeat(np.arange(2 * n), m), model.neighbour_ids.ravel()),
        ),
        shape=(2 * n, n),
    ).toarray()
    return full[:n], full[n:]


def test_top_per_row_keeps_the_largest_entries_strongest_first() -> None:
    matrix = sp.csr_matrix(np.array([[0.0, 3.0, 1.0, 2.0], [0.0, 0.0, 5.0, 0.0]], np.float32))
    ids, weights = top_per_row(matrix, 2)
    assert ids.tolist() == [[1, 3], [2, 0]]
    assert weights.tolist() == [[3.0, 2.0], [5.0, 0.0]]  # the short row is padded with 0


def test_cooccurrence_neighbours_are_the_top_cosine_similarities() -> None:
    histories = _histories(1)
    users = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    items = np.concatenate(histories)
    ids, weights = cooccurrence_neighbours(users, items, len(histories), N_ITEMS, 10)
    x = np.zeros((len(histories), N_ITEMS))
    x[users, items] = 1.0
    norms = np.sqrt(x.sum(axis=0))
    cosine = (x.T @ x) / np.maximum(np.outer(norms, norms), 1e-12)
    np.fill_diagonal(cosine, 0.0)
    expected = -np.sort(-cosine, axis=1)[:, :10]
    np.testing.assert_allclose(weights, expected, rtol=1e-5)
    rows = np.arange(N_ITEMS)[:, None]
    np.testing.assert_allclose(cosine[rows, ids], weights, rtol=1e-5)
    assert not np.any(ids == rows)


def test_transitions_decay_with_distance_and_skip_repeats() -> None:
    users = np.array([0, 0, 0, 0, 1, 1])
    items = np.array([0, 1, 1, 2, 2, 3])
    ids, weights = transition_neighbours(users, items, 4, 3, decay=0.5, window=3, alpha=0.0)
    table = np.zeros((4, 4))
    table[np.arange(4)[:, None], ids] = weights
    # 0 -> 1 at distances 1 and 2, 0 -> 2 at 3; 1 -> 2 at 1 and 2; user 1: 2 -> 3.
    assert table[0, 1] == pytest.approx(1.0 + 0.5)
    assert table[0, 2] == pytest.approx(0.25)
    assert table[1, 2] == pytest.approx(1.0 + 0.5)
    assert table[2, 3] == pytest.approx(1.0)
    assert table[1, 1] == 0.0  # a repeat is no transition
    assert table[3].sum() == 0.0  # nothing follows across users


def test_transition_popularity_normalisation() -> None:
    users = np.zeros(4, dtype=np.int64)
    items = np.array([0, 1, 0, 1])  # item counts 2 and 2
    ids, weights = transition_neighbours(users, items, 2, 1, decay=1.0, window=1, alpha=0.5)
    # 0 -> 1 twice, 1 -> 0 once, each divided by sqrt(2 * 2).
    assert ids[:, 0].tolist() == [1, 0]
    np.testing.assert_allclose(weights[:, 0], [2.0 / 2.0, 1.0 / 2.0])


def test_score_is_the_dense_formula_over_the_neighbour_lists() -> None:
    model = _model()
    co, trans = _dense_tables(model)
    rng = np.random.default_rng(2)
    for length in (20, 6):
        recent = _recent(rng, 8, length)
        w_co, w_tr = (w[20 - length :] for w in model.weights())
        valid = recent >= 0
        rows = np.where(valid, recent, 0)
        expected = (co[rows] * np.where(valid, w_co, 0.0)[..., None]).sum(axis=1) + (
            trans[rows] * np.where(valid, w_tr, 0.0)[..., None]
        ).sum(axis=1)
        np.testing.assert_allclose(model.score_recent(recent), expected, rtol=1e-5, atol=1e-7)


def test_next_item_follows_the_last_click() -> None:
    # Everyone watches 0 -> 1 -> 2 -> ... -> 9, so after 4 the next item is 5.
    histories = [np.arange(10) for _ in range(30)] + _histories(3, 50)
    model = SparseNeighbours(histories, N_ITEMS, SequentialParams(max_len=10))
    recent = model.recent([np.array([3, 4])])
    scores = model.score_recent(recent)[0]
    scores[[3, 4]] = -np.inf
    assert int(np.argmax(scores)) == 5


@pytest.mark.parametrize("length", [20, 7, 1])
def test_graph_matches_numpy_items_scores_and_reasons(length: int) -> None:
    model = _model()
    rng = np.random.default_rng(length)
    prior = (rng.random(N_ITEMS) * 1e-4).astype(np.float32)
    sess = _session(model, prior)
    recent = _recent(rng, 12, length)
    exclude = rng.random((12, N_ITEMS)) < 0.2
    for k in (10, 40):
        top_items, top_scores, top_reasons = sess.run(
            ["top_items", "top_scores", "top_reasons"],
            {"recent_items": recent, "exclude_mask": exclude, "k": np.array([k], np.int64)},
        )
        served = model.served_scores(recent, prior)
        np.testing.assert_allclose(served, model.score_recent(recent) + prior, rtol=1e-6)
        expected = np.where(exclude, np.float32(-3.0e38), served)
        assert top_items.shape == (12, k)
        np.testing.assert_array_equal(top_scores, -np.sort(-expected, axis=1)[:, :k])
        np.testing.assert_array_equal(np.take_along_axis(expected, top_items, 1), top_scores)
        np.testing.assert_array_equal(top_reasons, model.reasons(recent, top_items))
        valid_reasons = np.take_along_axis(recent, top_reasons, 1)
        assert np.all(valid_reasons[1:] >= 0)  # a reason is never a padding position
        assert not np.any(np.take_along_axis(exclude, top_items[:, : k // 2], 1))


def test_reason_is_the_position_adding_most() -> None:
    model = _model()
    recent = np.array([[5, 17, 42]], dtype=np.int64)
    scores = model.score_recent(recent)[0]
    top = np.argsort(-scores, kind="stable")[:5][None, :]
    co, trans = _dense_tables(model)
    w_co, w_tr = (w[-3:] for w in model.weights())
    for j, item in enumerate(top[0]):
        parts = w_co * co[recent[0], item] + w_tr * trans[recent[0], item]
        assert model.reasons(recent, top)[0, j] == 2 - int(np.argmax(parts[::-1]))


def test_add_edges_merges_and_widens_the_lists() -> None:
    model = _model(m=4)
    present = int(model.neighbour_ids[3, 0])
    before = float(model.neighbour_weights[3, 0])
    listed = set(model.neighbour_ids[[3, N_ITEMS + 3]].ravel().tolist())
    cold = next(i for i in range(N_ITEMS) if i not in listed and i != 3)
    model.add_edges(np.array([3, 3]), np.array([present, cold]), np.array([0.5, 0.25]))
    assert model.neighbour_ids.shape[1] == 5  # row 3 now has 5 neighbours
    row = dict(
        zip(model.neighbour_ids[3].tolist(), model.neighbour_weights[3].tolist(), strict=True)
    )
    assert row[present] == pytest.approx(before + 0.5)
    assert row[cold] == pytest.approx(0.25)
    # A user who just saw item 3 reaches the cold item through the edge, with that reason.
    w_co, _ = model.weights()
    recent = model.recent([np.array([3])])
    assert model.score_recent(recent)[0, cold] == pytest.approx(0.25 * w_co[-1])
    prior = np.zeros(N_ITEMS, dtype=np.float32)
    exclude = np.ones((1, N_ITEMS), dtype=bool)
    exclude[0, cold] = False
    items, scores, reasons = _session(model, prior).run(
        None, {"recent_items": recent, "exclude_mask": exclude, "k": np.array([1], np.int64)}
    )
    assert items[0, 0] == cold
    assert scores[0, 0] == pytest.approx(0.25 * w_co[-1])
    assert recent[0, reasons[0, 0]] == 3


def test_fit_picks_the_sparse_model_above_the_dense_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    histories = _histories()
    assert isinstance(fit(histories, N_ITEMS), DenseRecommender)
    monkeypatch.setattr(model_choice, "DENSE_MAX_ITEMS", N_ITEMS - 1)
    chosen = fit(histories, N_ITEMS, neighbour_params=NeighbourParams(neighbours=8))
    assert isinstance(chosen, SparseNeighbours)
    assert chosen.neighbour_ids.shape == (2 * N_ITEMS, 8)
