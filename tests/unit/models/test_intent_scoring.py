"""Out-of-scope threshold choice and intent metrics (pure numpy)."""

from __future__ import annotations

import numpy as np

from models.intent.scoring import choose_threshold, intent_metrics

NAMES = ["card_arrival", "top_up", "exchange_rate", "pin_blocked", "oos"]


def _probs(top: list[tuple[int, float]]) -> np.ndarray:
    """One row per (winning class, its probability); the rest is spread over the other
    in-scope classes, so only the threshold can reject."""
    rows = np.zeros((len(top), len(NAMES)))
    for i, (label, p) in enumerate(top):
        rows[i, :-1] = (1 - p) / (len(NAMES) - 2)
        rows[i, label] = p
    return rows


def test_metrics_count_a_rejected_in_scope_query_as_an_error() -> None:
    probs = _probs([(0, 0.9), (1, 0.4), (1, 0.8), (0, 0.3)])
    labels = np.array([0, 1, 1, 4])
    m = intent_metrics(probs, labels, NAMES, threshold=0.5)
    assert m["in_scope_accuracy"] == 2 / 3  # the 0.4 top_up is rejected
    assert m["accuracy_no_threshold"] == 1.0
    assert m["oos_recall"] == 1.0
    assert m["oos_precision"] == 0.5  # one of the two rejections was in scope


def test_threshold_stops_where_the_in_scope_allowance_runs_out() -> None:
    # 200 in-scope queries, all right; two of them are unsure (0.35 and 0.55). 10 OOS
    # queries at 0.30 / 0.50 / 0.70 top probability.
    in_scope = [(0, 0.95)] * 198 + [(0, 0.35), (1, 0.55)]
    oos = [(0, 0.30)] * 4 + [(1, 0.50)] * 3 + [(0, 0.70)] * 3
    probs = _probs(in_scope + oos)
    labels = np.array([0] * 199 + [1] + [4] * 10)

    # Half a point of 200 is one query: the 0.35 one may go, so up to 0.55 the rejected
    # OOS are the seven at 0.30 and 0.50; the lowest threshold of that plateau is taken.
    assert choose_threshold(probs, labels, NAMES, max_accuracy_drop=0.005) == 0.51
    # A whole point lets both unsure queries go, and past 0.70 every OOS query goes too.
    assert choose_threshold(probs, labels, NAMES, max_accuracy_drop=0.01) == 0.71
    # No allowance: only the OOS queries below 0.35 can be rejected.
    assert choose_threshold(probs, labels, NAMES, max_accuracy_drop=0.0) == 0.31
