"""A product's own support intents: labelled texts from a file, their routing map, and the
one function that fits an intent model on them.

File formats (UTF-8): CSV with a header, or JSON Lines (``.jsonl``/``.ndjson``), one object a
line. Columns/keys: ``text`` and ``label`` (required), ``queue`` (optional: the support queue
of the label's messages). A label ``oos`` or an empty one marks an out-of-scope example; its
queue, if any, becomes the ``out_of_scope`` route. A bad row stops the read with its line
number (``DataError``).

``fit_intent_model`` is the training method: the few-shot trainer (``models.intent.few_shot``)
when it is installed, else a frozen MiniLM encoder + logistic regression, exported as the same
ONNX graph as the published intent models (``models.intent.graph``).
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import json
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnx

from models.intent.data import OOS

# Routing keys with a meaning of their own (services/inference/support.py): no intent may
# take them.
RESERVED_LABELS = ("out_of_scope", "default")
MIN_EXAMPLES = 3  # per intent: at least one held out for the gate, two to learn from
MIN_INTENTS = 2
JSONL_SUFFIXES = (".jsonl", ".ndjson")
DEFAULT_ENCODER = "minilm"


class DataError(ValueError):
    """Labelled data that cannot be used, with where and why."""


@dataclass
class LabelledRows:
    """Texts with their labels (``oos`` for out-of-scope), the routing map the source
    declares and what it was read from (``trained_from`` in the model's config)."""

    texts: list[str]
    labels: list[str]
    routing: dict[str, str] = field(default_factory=dict)
    trained_from: dict[str, Any] = field(default_factory=dict)
    dropped_duplicates: int = 0

    def counts(self) -> dict[str, int]:
        """Rows per label, most frequent first."""
        return dict(Counter(self.labels).most_common())

    @property
    def intents(self) -> list[str]:
        return sorted({label for label in self.labels if label != OOS})


def normalise_label(raw: str | None) -> str:
    label = (raw or "").strip()
    return OOS if label.lower() in ("", OOS) else label


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rows_csv(path: Path) -> list[tuple[int, dict[str, Any]]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in ("text", "label") if c not in columns]
        if missing:
            raise DataError(
                f"{path}:1: the header needs the columns text and label "
                f"(optional: queue); missing {', '.join(missing)} in {columns}"
            )
        reader.fieldnames = columns
        rows = []
        start = reader.line_num + 1
        for row in reader:
            if None in row:  # more fields than the header has
                raise DataError(f"{path}:{start}: more fields than the header's {len(columns)}")
            if row.get("label") is None:
                raise DataError(f"{path}:{start}: no label field (fewer fields than the header)")
            rows.append((start, row))
            start = reader.line_num + 1
    return rows


def _rows_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: not JSON ({exc.msg})") from None
            if not isinstance(value, dict):
                raise DataError(f"{path}:{number}: expected a JSON object with text and label")
            if "label" not in value:
                raise DataError(f'{path}:{number}: no label (use "oos" for out-of-scope)')
            rows.append((number, value))
    return rows


def read_labelled_file(path: str | Path) -> LabelledRows:
    """Read a CSV or JSONL file of labelled texts; ``DataError`` names the bad line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    raw = _rows_jsonl(path) if path.suffix.lower() in JSONL_SUFFIXES else _rows_csv(path)
    rows = from_rows(raw, str(path))
    rows.trained_from = {"source": "file", "path": str(path), "sha256": sha256_of(path)}
    return rows


def from_rows(raw: list[tuple[int, dict[str, Any]]], where: str) -> LabelledRows:
    """Check and collect ``(line, {"text", "label", "queue"?})`` rows."""
    texts: list[str] = []
    labels: list[str] = []
    routing: dict[str, str] = {}
    routed_at: dict[str, int] = {}
    seen: dict[str, tuple[str, int]] = {}
    duplicates = 0
    for number, row in raw:
        text, label, queue = row.get("text"), row.get("label"), row.get("queue")
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{where}:{number}: empty or missing text")
        if label is not None and not isinstance(label, str):
            raise DataError(f"{where}:{number}: the label must be a string ({label!r})")
        if queue is not None and not isinstance(queue, str):
            raise DataError(f"{where}:{number}: the queue must be a string ({queue!r})")
        intent = normalise_label(label)
        if intent in RESERVED_LABELS:
            raise DataError(f"{where}:{number}: the label {intent!r} is reserved for routing")
        text = " ".join(text.split())
        if text in seen:
            first_label, first_line = seen[text]
            if first_label != intent:
                raise DataError(
                    f"{where}:{number}: the same text is labelled {first_label!r} "
                    f"on line {first_line} and {intent!r} here"
                )
            duplicates += 1
            continue
        seen[text] = (intent, number)
        key = "out_of_scope" if intent == OOS else intent
        if queue and queue.strip():
            if key in routing and routing[key] != queue.strip():
                raise DataError(
                    f"{where}:{number}: {intent!r} goes to queue {queue.strip()!r} here and "
                    f"{routing[key]!r} on line {routed_at[key]}"
                )
            routing[key], routed_at[key] = queue.strip(), number
        texts.append(text)
        labels.append(intent)
    rows = LabelledRows(texts, labels, routing, dropped_duplicates=duplicates)
    check_enough(rows, where)
    return rows


def check_enough(rows: LabelledRows, where: str) -> None:
    counts = Counter(rows.labels)
    if len(rows.intents) < MIN_INTENTS:
        raise DataError(
            f"{where}: at least {MIN_INTENTS} intents are needed ({len(rows.intents)} found)"
        )
    few = {label: n for label, n in sorted(counts.items()) if n < MIN_EXAMPLES}
    if few:
        raise DataError(
            f"{where}: every label needs at least {MIN_EXAMPLES} examples; too few: "
            + ", ".join(f"{label} ({n})" for label, n in few.items())
        )


def read_label_store(db: Any, since_days: float | None = None) -> LabelledRows:
    """The agents' labels collected from ``support.labels`` (shared/support_labels.py), with
    their messages' texts; ``since_days`` keeps the last D days of labels."""
    from datetime import UTC, datetime, timedelta

    from shared.support_labels import read_labels

    since = None if since_days is None else datetime.now(UTC) - timedelta(days=since_days)
    stored = read_labels(db, since)
    where = f"MongoDB {db.name}.support_labels"
    if not stored.texts:
        raise DataError(
            f"{where}: no labelled message with its text"
            + (
                f" ({stored.without_text} label(s) still wait for their message's text)"
                if stored.without_text
                else ""
            )
        )
    # Messages of the same text labelled differently: the latest label wins; labels with too
    # few examples are left out (named in trained_from) rather than stopping the training.
    latest = {" ".join(t.split()): y for t, y in zip(stored.texts, stored.labels, strict=True)}
    counts = Counter(latest.values())
    dropped = sorted(label for label, n in counts.items() if n < MIN_EXAMPLES)
    kept = [(t, y) for t, y in latest.items() if y not in dropped]
    rows = from_rows([(i + 1, {"text": t, "label": y}) for i, (t, y) in enumerate(kept)], where)
    window = (
        [stored.first.isoformat(), stored.last.isoformat()]
        if stored.first is not None and stored.last is not None
        else None
    )
    rows.trained_from = {
        "source": "labels",
        "database": db.name,
        "collection": "support_labels",
        "window": window,
        "since_days": since_days,
        "labels_without_text": stored.without_text,
        "left_out_labels": {label: counts[label] for label in dropped},
    }
    return rows


def read_routes(path: str | Path) -> dict[str, str]:
    """A routing map file: a JSON object intent -> queue (``out_of_scope`` and ``default``
    are the special keys)."""
    path = Path(path)
    try:
        value = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in value.items()
    ):
        raise DataError(f"{path}: expected a JSON object of intent -> queue name (strings)")
    return {k: v.strip() for k, v in value.items()}


def stratified_holdout(labels: list[str], fraction: float, seed: int) -> np.ndarray:
    """Boolean mask: ``fraction`` of every label (at least one, never all), seeded."""
    rng = np.random.default_rng(seed)
    labels_arr = np.asarray(labels)
    mask = np.zeros(len(labels), dtype=bool)
    for label in sorted(set(labels)):
        idx = np.flatnonzero(labels_arr == label)
        rng.shuffle(idx)
        take = min(len(idx) - 1, max(1, round(len(idx) * fraction)))
        mask[idx[:take]] = True
    return mask


# --- the training method --------------------------------------------------------------------


class IntentModel(Protocol):
    """What training returns: probabilities over ``labels`` (``oos`` among them when the
    data had out-of-scope rows) and the same model as an ONNX graph with the published
    intent graph's inputs and outputs."""

    labels: list[str]

    def predict_proba(self, texts: list[str]) -> np.ndarray: ...

    def to_onnx(self) -> onnx.ModelProto: ...


def fit_intent_model(texts: list[str], labels: list[str], *, seed: int = 0) -> IntentModel:
    """The one place that picks the training method."""
    try:
        few_shot = importlib.import_module("models.intent.few_shot")
    except ModuleNotFoundError as exc:
        if exc.name != "models.intent.few_shot":
            raise  # the module is there but cannot load: say so rather than fall back
        return fit_frozen_logreg(texts, labels, seed=seed)
    model: IntentModel = few_shot.fit_few_shot(texts, labels, seed=seed, encoder=DEFAULT_ENCODER)
    return model


def encoder_of(model: IntentModel) -> str:
    """The encoder key whose tokenizer the model's graph reads."""
    return str(getattr(model, "encoder", DEFAULT_ENCODER))


@lru_cache(maxsize=2)
def _frozen_encoder(encoder: str) -> tuple[dict[str, np.ndarray], Any, Any]:
    """(weights, onnxruntime session of the plain encoder, tokenizer)."""
    from models.encoder.graph import build_encoder, load_weights
    from models.evaluation import session
    from models.runtime.text import TextTokenizer
    from models.sources import ENCODER_FILES

    folder = ENCODER_FILES[encoder]()
    weights = load_weights(folder / "model.safetensors")
    sess = session(build_encoder(weights).SerializeToString())
    return weights, sess, TextTokenizer(folder / "tokenizer.json")


def embed_texts(texts: list[str], encoder: str = DEFAULT_ENCODER, batch: int = 64) -> np.ndarray:
    _, sess, tok = _frozen_encoder(encoder)
    parts = [
        sess.run(["embedding"], tok.encode(texts[i : i + batch]))[0]
        for i in range(0, len(texts), batch)
    ]
    return np.concatenate(parts, axis=0).astype(np.float32)


LOGREG_C = 10.0  # unit-norm embeddings, a handful of examples per intent: weak regularisation


@dataclass
class FrozenLogReg:
    """Frozen sentence encoder + multinomial logistic regression on its embeddings: exactly
    the published graph's linear head + softmax, so the ONNX export is exact."""

    labels: list[str]
    head_weight: np.ndarray  # [C, D]
    head_bias: np.ndarray  # [C]
    encoder: str = DEFAULT_ENCODER

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        logits = embed_texts(texts, self.encoder) @ self.head_weight.T + self.head_bias
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        return np.asarray(z / z.sum(axis=1, keepdims=True), dtype=np.float32)

    def to_onnx(self) -> onnx.ModelProto:
        from models.intent.graph import build_intent_graph

        weights, _, _ = _frozen_encoder(self.encoder)
        return build_intent_graph(weights, self.head_weight, self.head_bias)


def label_order(labels: list[str]) -> list[str]:
    """In-scope intents sorted, ``oos`` last (the published graphs' order)."""
    names = sorted(set(labels) - {OOS})
    return [*names, OOS] if OOS in labels else names


def fit_frozen_logreg(
    texts: list[str], labels: list[str], *, seed: int = 0, encoder: str = DEFAULT_ENCODER
) -> FrozenLogReg:
    from sklearn.linear_model import LogisticRegression

    names = label_order(labels)
    if len(names) < 2:
        raise DataError(f"at least two labels are needed to train ({names})")
    x = embed_texts(texts, encoder)
    y = np.array([names.index(label) for label in labels])
    clf = LogisticRegression(C=LOGREG_C, max_iter=2000, random_state=seed)
    clf.fit(x, y)
    coef = np.asarray(clf.coef_, dtype=np.float32)
    bias = np.asarray(clf.intercept_, dtype=np.float32)
    if len(names) == 2:  # sklearn's binary form: one logit z; softmax([-z/2, z/2]) = sigmoid
        coef = np.concatenate([-coef / 2, coef / 2])
        bias = np.concatenate([-bias / 2, bias / 2])
    return FrozenLogReg(names, coef, bias, encoder)
