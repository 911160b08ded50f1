"""Intent classification (transport-neutral): texts in, intents with out-of-scope out."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from models.runtime import decide_intent
from models.runtime.intent import OUT_OF_SCOPE as MODEL_OOS_LABEL
from services.inference.errors import InvalidArgument, Unavailable
from services.inference.repository import LoadedModel, ModelRepository
from services.inference.runtimes import IntentClassification
from services.inference.settings import InferenceSettings

OUT_OF_SCOPE = "out_of_scope"
DEFAULT_TOP_K = 3
MAX_TOP_K = 20


@dataclass(frozen=True)
class IntentResult:
    intent: str  # best in-scope intent, or "out_of_scope"
    confidence: float
    out_of_scope: bool
    alternatives: list[tuple[str, float]]


def check_text(text: str, max_chars: int, what: str = "text") -> None:
    if not text.strip():
        raise InvalidArgument(f"{what} is empty")
    if len(text) > max_chars:
        raise InvalidArgument(f"{what} is longer than {max_chars} characters ({len(text)})")


class IntentClassifier:
    def __init__(self, repository: ModelRepository, settings: InferenceSettings) -> None:
        self.repository = repository
        self.settings = settings

    def model(self) -> tuple[LoadedModel, IntentClassification]:
        return self.repository.serving(self.settings.intent_model, IntentClassification)

    def check(self, texts: list[str], top_k: int) -> int:
        if not texts:
            raise InvalidArgument("no texts to classify")
        if len(texts) > self.settings.max_batch_texts:
            raise InvalidArgument(
                f"at most {self.settings.max_batch_texts} texts per call ({len(texts)} sent)"
            )
        for index, text in enumerate(texts):
            check_text(
                text, self.settings.max_text_chars, "text" if len(texts) == 1 else f"texts[{index}]"
            )
        top_k = top_k or DEFAULT_TOP_K
        if not 1 <= top_k <= MAX_TOP_K:
            raise InvalidArgument(f"top_k must be between 1 and {MAX_TOP_K} ({top_k} sent)")
        return top_k

    async def classify(
        self, texts: list[str], top_k: int = 0, deadline: float | None = None
    ) -> tuple[list[IntentResult], LoadedModel]:
        top_k = self.check(texts, top_k)
        model, runtime = self.model()
        labels = model.extras.labels
        if model.extras.tokenizer is None or labels is None:
            raise Unavailable(f"{model.name} version {model.version} has no tokenizer or labels")
        assert model.batcher is not None
        size = max(1, model.batcher.max_rows)
        chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
        if len(chunks) == 1:  # the common case: no task per chunk
            outputs = [await model.infer(runtime.encode(model.extras, chunks[0]), deadline)]
        else:
            outputs = await asyncio.gather(
                *(model.infer(runtime.encode(model.extras, chunk), deadline) for chunk in chunks)
            )
        probs = np.concatenate([runtime.decode(model.roles, out) for out in outputs], axis=0)
        threshold = float(model.config.extra.get("oos_threshold", 0.0))
        decisions = decide_intent(probs, labels, threshold)
        in_scope = np.array([i for i, label in enumerate(labels) if label != MODEL_OOS_LABEL])
        # Best first; a stable sort keeps label order among equal probabilities.
        best = in_scope[np.argsort(-probs[:, in_scope], axis=1, kind="stable")[:, :top_k]]
        results = []
        for row, order, decision in zip(probs, best.tolist(), decisions, strict=True):
            rejected = decision.intent == MODEL_OOS_LABEL
            results.append(
                IntentResult(
                    intent=OUT_OF_SCOPE if rejected else decision.intent,
                    confidence=decision.confidence,
                    out_of_scope=rejected,
                    alternatives=[(labels[i], float(row[i])) for i in order],
                )
            )
        return results, model
