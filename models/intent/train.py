"""Train, evaluate (against a frozen-encoder baseline) and export an intent classifier."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from models.encoder.graph import build_encoder, load_weights
from models.encoder.spec import SPECS, spec_of
from models.evaluation import session
from models.intent.data import IntentData, banking77, clinc150, subsample
from models.intent.finetune import (
    Distillation,
    DistillParams,
    FinetuneParams,
    TokenStates,
    embed,
    finetune,
)
from models.intent.scoring import choose_threshold, intent_metrics, softmax
from models.runtime.text import TextTokenizer

DATASETS = {"banking77": banking77, "clinc150": clinc150}
# Per-dataset budget on 2 CPU cores. Banking77 plateaued at 0.931-0.937 with MiniLM
# alone whatever the depth, epochs or batch size; MPNet's top 3 of 12 layers reach 0.943
# but cost 5-7 times MiniLM per text (models/README.md). LUMEN_INTENT_DISTILL=1 builds
# MiniLM distilled from that MPNet (DISTILLATION) instead; it stays opt-in until its
# held-out accuracy is measured at full size (models/README.md, Distillation).
# CLINC150 meets its targets with MiniLM (0.969 with the top 3; 0.9607-0.9620 with the
# top 2), so it keeps the small encoder and plain fine-tuning.
DEFAULT_PARAMS = {
    "banking77": FinetuneParams(encoder="mpnet", top_layers=3, epochs=4, batch_size=16),
    "clinc150": FinetuneParams(top_layers=3, epochs=4),
}
TEACHER_PARAMS = FinetuneParams(encoder="mpnet", top_layers=3, epochs=4, batch_size=16)
DISTILLATION = {
    "banking77": DistillParams(teacher=TEACHER_PARAMS, alpha=0.5, temperature=2.0),
}


DISTILL_ENV = "LUMEN_INTENT_DISTILL"


def distilling() -> bool:
    return os.environ.get(DISTILL_ENV, "").strip().lower() in {"1", "true", "yes"}


def params_for(dataset: str) -> FinetuneParams:
    """The dataset's budget; ``LUMEN_INTENT_ENCODER`` (``minilm`` or ``mpnet``) swaps the
    encoder for every intent model, e.g. MiniLM to serve Banking77 several times faster;
    ``LUMEN_INTENT_DISTILL=1`` trains the student (MiniLM) of a distilled dataset."""
    params = DEFAULT_PARAMS[dataset]
    if distilling() and dataset in DISTILLATION:
        params = replace(params, encoder="minilm")
    encoder = os.environ.get("LUMEN_INTENT_ENCODER", "").strip().lower()
    if not encoder:
        return params
    if encoder not in SPECS:
        raise ValueError(f"LUMEN_INTENT_ENCODER={encoder!r}: choose one of {sorted(SPECS)}")
    return replace(params, encoder=encoder)


def distillation_for(dataset: str, small: bool = False) -> DistillParams | None:
    """The dataset's teacher, or None when it is fine-tuned alone (as every intent model is
    when ``LUMEN_INTENT_ENCODER`` names the encoder). CI-sized builds take MiniLM as the
    teacher too: they check the path, not the accuracy, and stay quick."""
    distill = DISTILLATION.get(dataset)
    if distill is None or not distilling() or os.environ.get("LUMEN_INTENT_ENCODER", "").strip():
        return None
    return (
        replace(distill, teacher=replace(distill.teacher, encoder="minilm")) if small else distill
    )


@dataclass
class IntentRun:
    data: IntentData
    weights: dict[str, np.ndarray]  # full encoder weights with the fine-tuned top layers
    head_weight: np.ndarray
    head_bias: np.ndarray
    threshold: float
    params: FinetuneParams
    metrics: dict[str, Any] = field(default_factory=dict)
    report_probs: np.ndarray | None = None  # training-time scorer output, for parity checks
    train_logits: np.ndarray | None = None  # [N_train, C] when asked for (a teacher's targets)


def _states(
    sess: Any, tok: TextTokenizer, texts: list[str], width: int, desc: str
) -> tuple[TokenStates, np.ndarray]:
    """Token states after the frozen layers, plus the frozen sentence embedding."""
    order = np.argsort([len(t) for t in texts], kind="stable")
    states: list[np.ndarray] = [np.zeros(0)] * len(texts)
    frozen = np.zeros((len(texts), width), dtype=np.float32)
    for start in tqdm(range(0, len(texts), 64), desc=desc, unit="batch", leave=False):
        idx = order[start : start + 64]
        enc = tok.encode([texts[i] for i in idx])
        emb, hidden = sess.run(["embedding", "hidden"], enc)
        for j, i in enumerate(idx):
            states[i] = hidden[j, : int(enc["attention_mask"][j].sum())]
        frozen[idx] = emb
    return TokenStates(states), frozen


def _labels(data: IntentData, labels: list[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(data.label_names)}
    return np.array([index[y] for y in labels], dtype=np.int64)


def _baseline(
    frozen: dict[str, np.ndarray], y: dict[str, np.ndarray], names: list[str]
) -> dict[str, Any]:
    """Frozen encoder + logistic regression, threshold tuned the same way."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=300))
    clf.fit(frozen["train"], y["train"])

    def probs(split: str) -> np.ndarray:
        p = np.zeros((len(frozen[split]), len(names)), dtype=np.float64)
        p[:, clf.classes_] = clf.predict_proba(frozen[split])
        return p

    threshold = choose_threshold(probs("tune"), y["tune"], names)
    return intent_metrics(probs("report"), y["report"], names, threshold)


def load_data(dataset: str, small: bool = False) -> IntentData:
    data = DATASETS[dataset]()
    return subsample(data, per_class=8) if small else data  # CI: a few examples per class


def train_intent(
    dataset: str,
    encoder_dir: Path,
    small: bool = False,
    params: FinetuneParams | None = None,
    *,
    data: IntentData | None = None,
    distillation: Distillation | None = None,
    train_logits: bool = False,
    track_epochs: bool = False,
) -> IntentRun:
    """Fine-tune the encoder in ``encoder_dir`` (``model.safetensors`` +
    ``tokenizer.json`` of ``params.encoder``) on ``dataset`` (or on ``data``, its splits
    rearranged). ``distillation`` adds a teacher's soft targets for ``data.train``;
    ``train_logits`` keeps the model's logits on the training split; ``track_epochs``
    records the tune split's accuracy after every epoch."""
    data = data or load_data(dataset, small)
    params = params or params_for(dataset)
    if small:  # CI: one layer, one epoch
        params = replace(params, top_layers=1, epochs=1)
    weights = load_weights(encoder_dir / "model.safetensors")
    tok = TextTokenizer(encoder_dir / "tokenizer.json")
    spec = spec_of(weights)
    if spec.key != params.encoder:
        raise ValueError(f"{encoder_dir} holds {spec.key}, the parameters ask for {params.encoder}")
    first = spec.layers - params.top_layers
    sess = session(build_encoder(weights, hidden_after=first).SerializeToString())
    splits = {"train": data.train, "tune": data.tune, "report": data.report}
    states, frozen, y = {}, {}, {}
    for name, split in splits.items():
        states[name], frozen[name] = _states(
            sess, tok, split.texts, spec.hidden, f"{dataset} {name} states"
        )
        y[name] = _labels(data, split.labels)

    epochs: list[dict[str, float]] = []

    def after_epoch(epoch: int, tuned: dict[str, np.ndarray]) -> None:
        emb = embed({**weights, **tuned}, states["tune"], params.top_layers)
        p = softmax(emb @ tuned["head.weight"].T + tuned["head.bias"])
        m = intent_metrics(p, y["tune"], data.label_names, 0.0)
        epochs.append(
            {"epoch": epoch + 1, "tune_accuracy_no_threshold": m["accuracy_no_threshold"]}
        )

    tuned = finetune(
        weights,
        states["train"],
        y["train"],
        len(data.label_names),
        params,
        on_epoch=after_epoch if track_epochs else None,
        distillation=distillation,
    )
    full = {**weights, **{k: v for k, v in tuned.items() if not k.startswith("head.")}}

    def logits(split: str) -> np.ndarray:
        emb = embed(full, states[split], params.top_layers)
        return np.asarray(emb @ tuned["head.weight"].T + tuned["head.bias"], dtype=np.float32)

    def probs(split: str) -> np.ndarray:
        return softmax(logits(split))

    tune_probs, report_probs = probs("tune"), probs("report")
    threshold = choose_threshold(tune_probs, y["tune"], data.label_names)
    run = IntentRun(
        data,
        full,
        tuned["head.weight"],
        tuned["head.bias"],
        threshold,
        params,
        report_probs=report_probs,
        train_logits=logits("train") if train_logits else None,
    )
    run.metrics = {
        "model": intent_metrics(report_probs, y["report"], data.label_names, threshold),
        "model_on_tune": intent_metrics(tune_probs, y["tune"], data.label_names, threshold),
        "baseline_frozen_logreg": _baseline(frozen, y, data.label_names),
        "sizes": {k: len(v.texts) for k, v in splits.items()},
        **({"epochs": epochs} if track_epochs else {}),
    }
    return run
