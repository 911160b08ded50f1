"""Intent models from a handful of examples per intent.

Two methods, one exported graph. The default keeps the sentence encoder frozen and fits a
logistic regression on its embeddings. ``FewShotParams(finetune=True)`` also fine-tunes the
top encoder layers and a linear head with the classification loss, reusing the intent
fine-tuning (``models.intent.finetune``: lower-layer token states computed once with
onnxruntime, head started at the scaled class centroids). On Banking77 (77 intents,
bench/intent_few_shot.py) fine-tuning matched the frozen encoder at 10 examples per intent
and lost 1.5 points at 5, for 10-20 times the training time, hence the default. SetFit's
pair training (Tunstall et al., 2022: cosine loss on same / different intent pairs) was
tried first and is too slow on 2 cores: it runs every text through the encoder ~40 times
per round of pairs (one round on 770 texts took 400 s on the shared machine).

Either way the model is exported as the published intent graph (``models.intent.graph``):
same inputs, same ``probabilities`` and ``embedding`` outputs, served unchanged.
JAX and scikit-learn come with the ``train`` extra; they are imported lazily.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from models.encoder.graph import build_encoder, load_weights
from models.encoder.spec import SPECS, spec_of
from models.evaluation import session
from models.intent.finetune import FinetuneParams, TokenStates, embed, finetune
from models.intent.graph import build_intent_graph
from models.intent.scoring import softmax
from models.runtime.text import TextTokenizer
from models.sources import ENCODER_FILES


@dataclass(frozen=True)
class FewShotParams:
    """The training budget, chosen on a tuning part of Banking77 that the reported
    figures never see (bench/intent_few_shot.py, docs/benchmarks.md)."""

    # Fine-tuning the top layer with the classification loss matched the frozen encoder at
    # 10 examples per intent and lost 1.5 points at 5, for 10-20 times the training time, so
    # by default the encoder stays frozen and only the logistic-regression head is fitted.
    finetune: bool = False
    head_c: float = 10.0  # inverse L2 strength of the logistic-regression head (frozen mode)
    top_layers: int = 1  # encoder layers fine-tuned (the rest stay frozen and cached)
    epochs: int = 8
    batch_size: int = 16
    lr_encoder: float = 1e-4
    lr_head: float = 1e-3

    def finetune_params(self, encoder: str, seed: int) -> FinetuneParams:
        return FinetuneParams(
            encoder=encoder,
            top_layers=self.top_layers,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr_encoder=self.lr_encoder,
            lr_head=self.lr_head,
            seed=seed,
        )


def _check_texts(texts: list[str], what: str) -> None:
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"{what} {i} is {type(text).__name__}, not a string")
        if not text.strip():
            raise ValueError(f"{what} {i} is empty: every text needs words to learn from")


def _check_examples(texts: list[str], labels: list[str]) -> list[str]:
    """Validate the training set; return its intents, sorted (the output order)."""
    if len(texts) != len(labels):
        raise ValueError(f"texts and labels differ in length ({len(texts)} vs {len(labels)})")
    if not texts:
        raise ValueError("no training examples: give a few texts for each intent")
    _check_texts(texts, "training text")
    for i, label in enumerate(labels):
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"label {i} is empty: every text needs the name of its intent")
    names = sorted(set(labels))
    if len(names) < 2:
        raise ValueError(
            f"few-shot training needs at least two intents, got only {names[0]!r}: "
            "a classifier cannot learn to tell one intent from nothing"
        )
    return names


@dataclass
class _Encoder:
    weights: dict[str, np.ndarray]
    tokenizer: TextTokenizer
    lower: dict[int, Any] = field(default_factory=dict)  # first trainable layer -> session
    # Lower-layer states stay the same across fits: refitting on the same texts (more
    # labels arriving, other seeds) skips their onnxruntime pass. Bounded (~30 KB a text).
    memo: dict[tuple[int, str], np.ndarray] = field(default_factory=dict)
    memo_limit: int = 12_000

    def states(self, texts: list[str], first: int, batch_size: int = 64) -> TokenStates:
        """Token states after the frozen ``first`` layers (onnxruntime)."""
        todo = sorted({t for t in texts if (first, t) not in self.memo}, key=len)
        if len(self.memo) + len(todo) > self.memo_limit:
            self.memo.clear()
            todo = sorted(set(texts), key=len)
        if todo and first not in self.lower:
            graph = build_encoder(self.weights, hidden_after=first)
            self.lower[first] = session(graph.SerializeToString())
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            enc = self.tokenizer.encode(chunk)
            (hidden,) = self.lower[first].run(["hidden"], enc)
            for j, text in enumerate(chunk):
                n = int(enc["attention_mask"][j].sum())
                self.memo[first, text] = hidden[j, :n].astype(np.float32)
        return TokenStates([self.memo[first, t] for t in texts])


@functools.lru_cache(maxsize=2)
def _encoder(key: str) -> _Encoder:
    """The pinned encoder's weights and tokenizer from the cache (one load per process)."""
    if key not in SPECS:
        raise ValueError(f"unknown encoder {key!r}: choose one of {sorted(SPECS)}")
    folder = ENCODER_FILES[key]()
    return _Encoder(
        load_weights(folder / "model.safetensors"), TextTokenizer(folder / "tokenizer.json")
    )


@dataclass
class FewShotModel:
    """A fitted few-shot intent model: encoder weights (top layers tuned) + linear head."""

    labels: list[str]
    weights: dict[str, np.ndarray]  # the full encoder, fine-tuned top layers included
    head_weight: np.ndarray  # [C, D]
    head_bias: np.ndarray  # [C]
    top_layers: int
    encoder: str
    train_seconds: float = 0.0

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-norm sentence embeddings [N, D] of the fine-tuned encoder."""
        _check_texts(texts, "text")
        spec = spec_of(self.weights)
        if not texts:
            return np.zeros((0, spec.hidden), dtype=np.float32)
        states = _encoder(self.encoder).states(texts, spec.layers - self.top_layers)
        return embed(self.weights, states, self.top_layers)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """[N, len(labels)] probabilities, columns in ``labels`` order."""
        emb = self.embed(texts)
        if not len(emb):
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        logits = emb.astype(np.float64) @ self.head_weight.T + self.head_bias
        return softmax(logits).astype(np.float32)

    def to_onnx(self) -> onnx.ModelProto:
        """The intent serving graph: ``input_ids``/``attention_mask`` -> ``probabilities``
        [B, len(labels)] and ``embedding`` [B, D]."""
        return build_intent_graph(self.weights, self.head_weight, self.head_bias)


def logistic_head(
    emb: np.ndarray, y: np.ndarray, n_classes: int, c: float
) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression as the graph's linear layer + softmax: [C, D], [C]."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=c, max_iter=1000).fit(emb, y)
    coef, intercept = clf.coef_.astype(np.float32), clf.intercept_.astype(np.float32)
    if n_classes == 2:  # sklearn fits one logit z for class 1; softmax([-z/2, z/2]) = sigmoid(z)
        coef = np.concatenate([-coef / 2, coef / 2])
        intercept = np.concatenate([-intercept / 2, intercept / 2])
    return coef, intercept


def fit_few_shot(
    texts: list[str],
    labels: list[str],
    *,
    seed: int = 0,
    encoder: str = "minilm",
    params: FewShotParams | None = None,
) -> FewShotModel:
    """Fit an intent model on a few labelled texts per intent (5-10 is enough).

    Raises ``ValueError`` for mismatched lengths, empty texts or labels, or fewer than
    two intents. ``encoder`` is a key of ``models.encoder.spec.SPECS``; its pinned
    weights are read from the cache (``models.sources``)."""
    names = _check_examples(list(texts), list(labels))
    params = params or FewShotParams()
    started = time.perf_counter()
    enc = _encoder(encoder)
    spec = spec_of(enc.weights)
    if not 1 <= params.top_layers <= spec.layers:
        raise ValueError(f"top_layers must be 1..{spec.layers}, got {params.top_layers}")
    first = spec.layers - params.top_layers
    index = {name: i for i, name in enumerate(names)}
    y = np.array([index[label] for label in labels], dtype=np.int64)
    states = enc.states(list(texts), first)
    if params.finetune:
        tuned = finetune(enc.weights, states, y, len(names), params.finetune_params(encoder, seed))
        full = {**enc.weights, **{k: v for k, v in tuned.items() if not k.startswith("head.")}}
        head_weight, head_bias = tuned["head.weight"], tuned["head.bias"]
    else:
        full = enc.weights
        emb = embed(full, states, params.top_layers)  # the frozen encoder's embeddings
        head_weight, head_bias = logistic_head(emb, y, len(names), params.head_c)
    return FewShotModel(
        labels=names,
        weights=full,
        head_weight=head_weight,
        head_bias=head_bias,
        top_layers=params.top_layers,
        encoder=encoder,
        train_seconds=time.perf_counter() - started,
    )
