"""The distillation loss on tiny arrays, in numpy and in JAX (the training path)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.intent.losses import cross_entropy, distillation_loss

STUDENT = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]], dtype=np.float64)
TEACHER = np.array([[3.0, 1.0, -2.0], [-1.0, 2.5, 2.0]], dtype=np.float64)
LABELS = np.array([0, 1])


def _softmax(row: list[float]) -> list[float]:
    exps = [math.exp(v) for v in row]
    return [e / sum(exps) for e in exps]


def _by_hand(alpha: float, temperature: float, smoothing: float) -> list[float]:
    """The formula, written out with the standard library one example at a time."""
    out = []
    for s, t, y in zip(STUDENT.tolist(), TEACHER.tolist(), LABELS.tolist(), strict=True):
        n = len(s)
        q = _softmax(s)
        target = [(1 - smoothing) * (c == y) + smoothing / n for c in range(n)]
        hard = -sum(target[c] * math.log(q[c]) for c in range(n))
        p_t = _softmax([v / temperature for v in t])
        q_t = _softmax([v / temperature for v in s])
        kl = sum(p_t[c] * math.log(p_t[c] / q_t[c]) for c in range(n))
        out.append(alpha * hard + (1 - alpha) * temperature**2 * kl)
    return out


@pytest.mark.parametrize(
    ("alpha", "temperature", "smoothing"), [(0.5, 2.0, 0.0), (0.3, 4.0, 0.1), (0.0, 1.0, 0.0)]
)
def test_numpy_loss_matches_the_formula(alpha: float, temperature: float, smoothing: float) -> None:
    got = distillation_loss(np, STUDENT, TEACHER, LABELS, alpha, temperature, smoothing)
    np.testing.assert_allclose(got, _by_hand(alpha, temperature, smoothing), rtol=1e-12)


def test_alpha_one_is_cross_entropy() -> None:
    got = distillation_loss(np, STUDENT, TEACHER, LABELS, 1.0, 3.0)
    plain = [-math.log(_softmax(s)[y]) for s, y in zip(STUDENT.tolist(), LABELS, strict=True)]
    np.testing.assert_allclose(got, plain, rtol=1e-12)
    np.testing.assert_allclose(got, cross_entropy(np, STUDENT, LABELS), rtol=1e-12)


def test_soft_term_vanishes_when_the_student_copies_the_teacher() -> None:
    alone = distillation_loss(np, TEACHER, TEACHER, LABELS, 0.0, 2.0)
    np.testing.assert_allclose(alone, 0.0, atol=1e-12)
    # and it is positive for any other student
    assert (distillation_loss(np, STUDENT, TEACHER, LABELS, 0.0, 2.0) > 1e-3).all()


def test_label_smoothing_moves_mass_to_the_other_classes() -> None:
    smoothed = cross_entropy(np, STUDENT, LABELS, 0.1)
    logq = STUDENT - np.log(np.exp(STUDENT).sum(1, keepdims=True))
    expected = -(0.9 * logq[[0, 1], LABELS] + 0.1 / 3 * logq.sum(1))
    np.testing.assert_allclose(smoothed, expected, rtol=1e-12)


def test_jax_loss_and_gradient_match_numpy() -> None:
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    s32, t32 = STUDENT.astype(np.float32), TEACHER.astype(np.float32)
    got = distillation_loss(jnp, jnp.asarray(s32), jnp.asarray(t32), jnp.asarray(LABELS), 0.4, 2.0)
    np.testing.assert_allclose(np.asarray(got), _by_hand(0.4, 2.0, 0.0), rtol=1e-5)

    # With alpha = 0 the gradient of the soft term is T * (softmax(s/T) - softmax(t/T)).
    def total(s: object) -> object:
        return distillation_loss(jnp, s, jnp.asarray(t32), jnp.asarray(LABELS), 0.0, 2.0).sum()

    grad = np.asarray(jax.grad(total)(jnp.asarray(s32)))
    soft = lambda x: np.exp(x / 2) / np.exp(x / 2).sum(1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(grad, 2.0 * (soft(STUDENT) - soft(TEACHER)), rtol=1e-4, atol=1e-6)


def test_selection_texts_come_from_the_training_split_only() -> None:
    from models.intent.data import OOS, banking77
    from models.intent.distill import selection_data

    data = banking77()
    chosen, rows = selection_data(data)
    selection = [t for t, y in zip(chosen.tune.texts, chosen.tune.labels, strict=True) if y != OOS]
    # about a tenth of every intent's training texts, none of them from the validation split
    assert set(selection) <= set(data.train.texts)
    assert not set(selection) & set(data.report.texts)
    assert len(selection) == pytest.approx(0.1 * sum(y != OOS for y in data.train.labels), rel=0.05)
    assert {y for y in chosen.tune.labels if y != OOS} == {y for y in data.train.labels if y != OOS}
    # the rows index the full training split, so the teacher's cached logits line up
    assert [data.train.texts[i] for i in rows] == chosen.train.texts
    assert not set(chosen.train.texts) & set(selection)
