"""Champion/challenger gate for a product's own intent model.

Both models are scored on the SAME held-out labelled rows, each through its ONNX graph with
its own tokenizer, labels and out-of-scope threshold (``decide_intent``, as the inference
server decides). The metric is accuracy over every held-out row: an in-scope row counts when
its intent is given, an out-of-scope row when it is rejected. The challenger is published
when its accuracy is at least the served version's minus a margin
(``LUMEN_INTENT_GATE_MARGIN``, default 0.0). Without a served version, or with one of another
taxonomy (it knows some of the held-out intents not at all), there is nothing comparable to
lose and the challenger is published; ``force`` publishes a refused one, and the card says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from models.intent.data import OOS
from models.recommender.gate import DECISIONS, Decision, Verdict, margin_from
from models.runtime.intent import decide_intent
from models.runtime.text import MAX_TOKENS, TextTokenizer
from shared.model_registry import ModelVersion

MARGIN_ENV = "LUMEN_INTENT_GATE_MARGIN"
DEFAULT_MARGIN = 0.0
METRIC = "accuracy"

__all__ = ["DECISIONS", "Decision", "Verdict", "decide", "margin_from_env", "score"]


def margin_from_env() -> float:
    return margin_from(MARGIN_ENV, DEFAULT_MARGIN)


@dataclass(frozen=True)
class Scorer:
    """One intent graph as the inference server runs it."""

    session: ort.InferenceSession
    tokenizer: TextTokenizer
    labels: list[str]
    threshold: float
    output: str = "probabilities"
    logits: bool = False  # the output holds logits (softmax applied here)

    @classmethod
    def of_version(cls, found: ModelVersion) -> Scorer:
        from models.evaluation import session

        config = found.config
        declared = config.preprocessing.get("max_tokens")
        tokenizer = TextTokenizer(
            found.file("tokenizer.json"), declared if isinstance(declared, int) else MAX_TOKENS
        )
        labels = list(config.labels or [])
        if not labels and "labels.json" in config.files:
            import json

            labels = [str(x) for x in json.loads(found.file("labels.json").read_text())]
        threshold = float(config.extra.get("oos_threshold", 0.0))
        roles = config.output_roles
        output, logits = roles.get("probabilities", "probabilities"), False
        if "probabilities" not in roles and "logits" in roles:
            output, logits = roles["logits"], True
        return cls(session(found.model_path), tokenizer, labels, threshold, output, logits)

    def predict(self, texts: Sequence[str], batch: int = 64) -> list[str]:
        """The decided intent per text (``oos`` when rejected)."""
        out: list[str] = []
        for start in range(0, len(texts), batch):
            feed = self.tokenizer.encode(list(texts[start : start + batch]))
            (probs,) = self.session.run([self.output], feed)
            if self.logits:
                z = np.exp(probs - probs.max(axis=1, keepdims=True))
                probs = z / z.sum(axis=1, keepdims=True)
            out += [d.intent for d in decide_intent(probs, self.labels, self.threshold)]
        return out


def score(predicted: Sequence[str], truth: Sequence[str]) -> dict[str, float]:
    """``accuracy`` over every row, ``in_scope_accuracy`` and (with out-of-scope rows)
    ``oos_recall``; an out-of-scope row is right when rejected."""
    pred, true = np.asarray(predicted), np.asarray(truth)
    right = pred == true
    ins = true != OOS
    out = {
        METRIC: float(right.mean()) if len(true) else 0.0,
        "in_scope_accuracy": float(right[ins].mean()) if ins.any() else 0.0,
        "rows": float(len(true)),
    }
    if (~ins).any():
        out["oos_recall"] = float(right[~ins].mean())
    return out


def unknown_intents(served_labels: Sequence[str], truth: Sequence[str]) -> list[str]:
    """Held-out intents the served version cannot give (another taxonomy when non-empty)."""
    known = set(served_labels)
    return sorted({t for t in truth if t != OOS and t not in known})


def decide(
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    *,
    margin: float = DEFAULT_MARGIN,
    force: bool = False,
    unknown: Sequence[str] = (),
    served: str = "",
) -> Verdict:
    """``champion`` None: no version is served. ``unknown``: held-out intents the served
    version does not know (not comparable)."""
    if margin < 0:
        raise ValueError(f"the margin must not be negative ({margin} given)")
    if champion is None:
        return Verdict("published", "no intent model is served under this name yet")
    if unknown:
        shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        return Verdict(
            "published",
            f"not comparable: the served version{served} is of another taxonomy "
            f"({len(unknown)} held-out intent(s) it does not know: {shown})",
        )
    new, old = challenger[METRIC], champion[METRIC]
    compared = f"challenger {METRIC} {new:.4f} vs served{served} {old:.4f} (margin {margin:g})"
    if new >= old - margin:
        return Verdict("published", f"{compared}: not worse than the served version")
    if force:
        return Verdict("forced", f"{compared}: worse than the served version, published by force")
    return Verdict("refused", f"{compared}: worse than the served version")
