"""Per-example training losses, written once for numpy and jax.numpy (``xp``)."""

from __future__ import annotations

from typing import Any


def log_softmax(xp: Any, logits: Any) -> Any:
    top = logits.max(axis=-1, keepdims=True)
    shifted = logits - top
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


def cross_entropy(xp: Any, logits: Any, labels: Any, label_smoothing: float = 0.0) -> Any:
    """Cross-entropy [B] against one-hot labels smoothed towards uniform."""
    n_classes = logits.shape[-1]
    one_hot = (labels[:, None] == xp.arange(n_classes)[None, :]).astype(logits.dtype)
    target = one_hot * (1.0 - label_smoothing) + label_smoothing / n_classes
    return -(target * log_softmax(xp, logits)).sum(axis=-1)


def distillation_loss(
    xp: Any,
    student_logits: Any,
    teacher_logits: Any,
    labels: Any,
    alpha: float,
    temperature: float,
    label_smoothing: float = 0.0,
) -> Any:
    """Hinton et al. (2015) knowledge distillation, per example [B]:
    ``alpha * CE(labels, student) + (1 - alpha) * T**2 * KL(teacher_T || student_T)``,
    where ``_T`` is the softmax of logits divided by ``T``. The ``T**2`` keeps the soft
    term's gradients at the scale of the hard one whatever the temperature."""
    hard = cross_entropy(xp, student_logits, labels, label_smoothing)
    log_q = log_softmax(xp, student_logits / temperature)
    log_p = log_softmax(xp, teacher_logits / temperature)
    kl = (xp.exp(log_p) * (log_p - log_q)).sum(axis=-1)
    return alpha * hard + (1.0 - alpha) * temperature**2 * kl
