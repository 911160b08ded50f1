"""Turn ``intent-classifier`` probabilities into a decision with out-of-scope."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OUT_OF_SCOPE = "oos"


@dataclass(frozen=True)
class IntentDecision:
    intent: str  # a label from labels.json, or "oos"
    confidence: float  # the top probability
    top_label: str  # best in-scope label even when rejected


def decide_intent(
    probabilities: np.ndarray, labels: list[str], threshold: float
) -> list[IntentDecision]:
    """Reject as ``oos`` when the top probability is below the calibrated ``threshold``
    (``config.json`` -> ``extra.oos_threshold``) or when the top class is ``oos``."""
    probs = np.asarray(probabilities, dtype=np.float32)
    best = probs.argmax(axis=1)
    out = []
    for row, idx in zip(probs, best, strict=True):
        label = labels[int(idx)]
        conf = float(row[idx])
        rejected = conf < threshold or label == OUT_OF_SCOPE
        out.append(IntentDecision(OUT_OF_SCOPE if rejected else label, conf, label))
    return out
