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
from models.intent.finetune import FinetuneParams, TokenStates, embed, finetune
from models.intent.scoring import choose_threshold, intent_metrics, softmax
from models.runtime.text import TextTokenizer

DATASETS = {"banking77": banking77, "clinc150": clinc150}
# Per-dataset budget on 2 CPU cores. Banking77 plateaued at 0.931-0.937 with MiniLM
# whatever the depth, epochs or batch size (0.936 with its top 3 for 4 epochs in batches
# of 16); the same budget on MPNet's top 3 of 12 layers reaches 0.943, at about 16
# minutes instead of 6 and several times the serving cost per text (models/README.md).
# CLINC150 meets its targets with MiniLM (0.969 with the top 3; 0.9607-0.9620 with the
# top 2), so it keeps the small encoder.
DEFAULT_PARAMS = {
    "banking77": FinetuneParams(encoder="mpnet", top_layers=3, epochs=4, batch_size=16),
    "clinc150": FinetuneParams(top_layers=3, epochs=4),
}


def params_for(dataset: str) -> FinetuneParams:
    """The dataset's budget; ``LUMEN_INTENT_ENCODER`` (``minilm`` or ``mpnet``) swaps the
    encoder for every intent model, e.g. MiniLM to serve Banking77 several times faster."""
    params = DEFAULT_PARAMS[dataset]
    encoder = os.environ.get("LUMEN_INTENT_ENCODER", "").strip().lower()
    if not encoder:
        return params
    if encoder not in SPECS:
        raise ValueError(f"LUMEN_INTENT_ENCODER={encoder!r}: choose one of {sorted(SPECS)}")
    return replace(params, encoder=encoder)


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


def train_intent(
    dataset: str, encoder_dir: Path, small: bool = False, params: FinetuneParams | None = None
) -> IntentRun:
    """Fine-tune the encoder in ``encoder_dir`` (``model.safetensors`` +
    ``tokenizer.json`` of ``params.encoder``) on ``dataset``."""
    data = DATASETS[dataset]()
    params = params or params_for(dataset)
    if small:  # CI: a few examples per class, one layer, one epoch
        data = subsample(data, per_class=8)
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

    tuned = finetune(weights, states["train"], y["train"], len(data.label_names), params)
    full = {**weights, **{k: v for k, v in tuned.items() if not k.startswith("head.")}}

    def probs(split: str) -> np.ndarray:
        emb = embed(full, states[split], params.top_layers)
        return softmax(emb @ tuned["head.weight"].T + tuned["head.bias"])

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
    )
    run.metrics = {
        "model": intent_metrics(report_probs, y["report"], data.label_names, threshold),
        "model_on_tune": intent_metrics(tune_probs, y["tune"], data.label_names, threshold),
        "baseline_frozen_logreg": _baseline(frozen, y, data.label_names),
        "sizes": {k: len(v.texts) for k, v in splits.items()},
    }
    return run
