"""Train a product's own intent model from labelled rows, gate it, publish it.

Flow (``train_and_publish``): hold out a stratified quarter of the rows (the gate and the
card only; never used for a choice) and a tuning part of the rest -> fit on what is left
(``own_data.fit_intent_model``) -> choose the out-of-scope threshold on the tuning part ->
export ONNX (parity-checked) ->
score the new graph and the served version's graph on the held-out rows -> gate
(``models.intent.gate``) -> publish under ``--model`` (default ``intent-classifier``) with
the routing map, the source (file + sha256, or the label store's window), counts per intent
and the gate's decision in ``config.extra``. The inference server hot-swaps the new version.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import onnx

from models.cards import render_card
from models.encoder.register import ENCODER_SOURCES, preprocessing, text_io
from models.encoder.spec import SPECS
from models.evaluation import measure_latency, session, table
from models.intent.data import OOS
from models.intent.gate import (
    METRIC,
    Decision,
    Scorer,
    decide,
    margin_from_env,
    score,
    unknown_intents,
)
from models.intent.own_data import (
    DataError,
    IntentModel,
    LabelledRows,
    encoder_of,
    fit_intent_model,
    stratified_holdout,
)
from models.intent.scoring import THRESHOLDS
from models.publish import current_if_unchanged, fingerprint, serving
from models.publish import publish as publish_version
from models.runtime.intent import decide_intent
from models.runtime.text import TextTokenizer
from models.sources import ENCODER_FILES
from shared.model_registry import DataSource, ModelConfig, RegistryError, TensorSpec, get_version

log = logging.getLogger(__name__)

DEFAULT_MODEL = "intent-classifier"
TASK = "intent-classification"
CODE_VERSION = 1
SEED = 0
HOLDOUT_FRACTION = 0.25
TUNE_FRACTION = 0.15  # of the rows not held out (at least one per label)
PARITY_TOLERANCE = 1e-4
LATENCY_TEXT = "I would like to return the shoes I bought last week"

OutcomeDecision = Literal[Decision, "failed"]


class FitFn(Protocol):
    def __call__(self, texts: list[str], labels: list[str], *, seed: int = 0) -> IntentModel: ...


@dataclass
class IntentOutcome:
    decision: OutcomeDecision
    reason: str
    model: str = DEFAULT_MODEL
    version: int | None = None  # published version
    served_version: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    routing: dict[str, str] = field(default_factory=dict)
    trained_from: dict[str, Any] = field(default_factory=dict)
    margin: float = 0.0
    seconds: float = 0.0
    path: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        new = (self.metrics.get("challenger") or {}).get(METRIC)
        old = (self.metrics.get("champion") or {}).get(METRIC)
        parts = [f"{self.model} from own labels: {self.decision}"]
        if self.version is not None:
            parts.append(f"version {self.version}")
        if new is not None:
            parts.append(f"held-out {METRIC} {new:.4f}")
        if old is not None:
            parts.append(f"served v{self.served_version} {old:.4f}")
        if self.counts:
            parts.append(f"{sum(self.counts.values())} rows, {len(self.counts)} labels")
        parts.append(f"{self.seconds:.1f} s")
        return "; ".join(parts) + f" ({self.reason})"


def write_outcome(outcome: IntentOutcome, path: str | Path) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(outcome.to_json(), indent=2, default=str) + "\n")
    tmp.rename(target)


# --- threshold ------------------------------------------------------------------------------


def choose_threshold(probs: np.ndarray, names: list[str], truth: list[str]) -> float:
    """The lowest threshold with the best accuracy (an out-of-scope row is right when
    rejected): a threshold rejects only as much as the data shows it should."""
    best_t, best_v = 0.0, -1.0
    for t in THRESHOLDS:
        predicted = [d.intent for d in decide_intent(probs, names, float(t))]
        value = score(predicted, truth)[METRIC]
        if value > best_v + 1e-9:
            best_t, best_v = float(t), value
    return best_t


# --- the flow -------------------------------------------------------------------------------


def load_champion(name: str, registry: Path | None) -> tuple[int, Scorer] | None:
    try:
        found = get_version(name, root=registry, verify=True)
    except RegistryError as exc:
        log.info("no served %s to compare with: %s", name, exc)
        return None
    if found.config.task != TASK:
        raise DataError(f"{name} is a {found.config.task!r} model, not an intent classifier")
    return found.version, Scorer.of_version(found)


def train_and_publish(
    rows: LabelledRows,
    *,
    model_name: str = DEFAULT_MODEL,
    registry: Path | None = None,
    force: bool = False,
    margin: float | None = None,
    routes: dict[str, str] | None = None,
    seed: int = SEED,
    publish: bool = True,
    fit: FitFn = fit_intent_model,
) -> IntentOutcome:
    """Fit, gate and (maybe) publish; see the module docstring. ``routes`` adds to (and
    overrides) the rows' own routing map; ``fit`` is the training method."""
    started = time.perf_counter()
    margin = margin_from_env() if margin is None else margin
    routing = {**rows.routing, **(routes or {})}
    outcome = IntentOutcome(
        "skipped",
        "",
        model=model_name,
        counts=rows.counts(),
        routing=routing,
        trained_from=rows.trained_from,
        margin=margin,
    )
    fp = fingerprint(
        {
            "code": CODE_VERSION,
            "rows": fingerprint({"texts": rows.texts, "labels": rows.labels}),
            "routing": routing,
            "seed": seed,
            "margin": margin,
            "method": f"{getattr(fit, '__module__', '')}.{getattr(fit, '__qualname__', fit)}",
        }
    )
    kept = current_if_unchanged(model_name, fp, registry)
    if kept is not None and not force:
        outcome.reason = f"version {kept.version} was trained on the same rows and routing"
        outcome.version = outcome.served_version = kept.version
        outcome.seconds = round(time.perf_counter() - started, 2)
        return outcome

    # Held out first (the gate and the card only), then a tuning part of the rest for the
    # out-of-scope threshold; the model is fitted once, on what is left.
    held = stratified_holdout(rows.labels, HOLDOUT_FRACTION, seed)
    rest = np.flatnonzero(~held)
    tune = np.zeros(len(rows.labels), dtype=bool)
    tune[rest[stratified_holdout([rows.labels[i] for i in rest], TUNE_FRACTION, seed + 1)]] = True
    fit_part = ~held & ~tune

    def pick(mask: np.ndarray) -> tuple[list[str], list[str]]:
        idx = np.flatnonzero(mask)
        return [rows.texts[i] for i in idx], [rows.labels[i] for i in idx]

    (fit_texts, fit_labels), (tune_texts, tune_labels) = pick(fit_part), pick(tune)
    test_texts, test_labels = pick(held)
    model = fit(fit_texts, fit_labels, seed=seed)
    names = list(model.labels)
    threshold = choose_threshold(model.predict_proba(tune_texts), names, tune_labels)
    graph = model.to_onnx()
    encoder = encoder_of(model)
    tokenizer_path = ENCODER_FILES[encoder]() / "tokenizer.json"
    challenger = Scorer(
        session(graph.SerializeToString()), TextTokenizer(tokenizer_path), names, threshold
    )
    parity = float(
        np.abs(
            challenger.session.run(["probabilities"], challenger.tokenizer.encode(test_texts))[0]
            - model.predict_proba(test_texts)
        ).max()
    )
    if parity > PARITY_TOLERANCE:
        raise RuntimeError(f"the exported graph does not match the trained model (|Δp| {parity})")
    challenger_metrics = score(challenger.predict(test_texts), test_labels)

    champion = load_champion(model_name, registry)
    champion_metrics: dict[str, float] | None = None
    unknown: list[str] = []
    if champion is not None:
        outcome.served_version, served = champion
        unknown = unknown_intents(served.labels, test_labels)
        if not unknown:
            champion_metrics = score(served.predict(test_texts), test_labels)
    outcome.metrics = {
        "challenger": challenger_metrics,
        "champion": champion_metrics,
        "threshold": threshold,
        "onnx_vs_training_max_abs_diff": parity,
        "sizes": {"fit": len(fit_texts), "tune": len(tune_texts), "held_out": len(test_texts)},
    }
    verdict = decide(
        challenger_metrics,
        None if champion is None else (champion_metrics or {}),
        margin=margin,
        force=force,
        unknown=unknown,
        served=f" v{outcome.served_version}" if outcome.served_version else "",
    )
    outcome.decision, outcome.reason = verdict.decision, verdict.reason
    if publish and verdict.decision in ("published", "forced"):
        path = _publish(
            outcome, model, graph, encoder, tokenizer_path, threshold, fp, unknown, registry
        )
        outcome.path, outcome.version = str(path), int(path.name)
    outcome.seconds = round(time.perf_counter() - started, 2)
    log.info("%s", outcome.summary())
    return outcome


# --- publishing -----------------------------------------------------------------------------


def source_text(trained_from: dict[str, Any]) -> str:
    if trained_from.get("source") == "labels":
        window = " to ".join(trained_from.get("window") or ["(empty)"])
        return (
            f"agents' labels on `support.labels` collected in MongoDB database "
            f"`{trained_from.get('database', '')}` (`support_labels`), labelled {window}"
        )
    return f"file `{trained_from.get('path', '')}` (sha256 `{trained_from.get('sha256', '')}`)"


def _publish(
    outcome: IntentOutcome,
    model: IntentModel,
    graph: onnx.ModelProto,
    encoder: str,
    tokenizer_path: Path,
    threshold: float,
    fp: str,
    unknown: list[str],
    registry: Path | None,
) -> Path:
    labels = list(model.labels)
    sess = session(graph.SerializeToString())
    tok = TextTokenizer(tokenizer_path)
    latency = measure_latency(
        sess, lambda b: tok.encode([LATENCY_TEXT] * b), batches=(1, 8), repeats=10
    )
    spec = SPECS[encoder]
    inputs, _ = text_io(TensorSpec(name="x", dtype="float32", shape=[1]), encoder)
    outputs = [
        TensorSpec(
            name="probabilities",
            dtype="float32",
            shape=["batch", len(labels)],
            description="softmax over labels.json"
            + (f" ('{OOS}': out-of-scope)" if OOS in labels else ""),
        ),
        TensorSpec(
            name="embedding",
            dtype="float32",
            shape=["batch", spec.hidden],
            description="sentence embedding (unit norm)",
        ),
    ]
    declared = {o.name for o in graph.graph.output}
    outputs = [o for o in outputs if o.name in declared]
    gate = {
        "decision": outcome.decision,
        "reason": outcome.reason,
        "margin": outcome.margin,
        "served_version": outcome.served_version,
        "forced": outcome.decision == "forced",
        "not_comparable": bool(unknown),
    }
    sizes = outcome.metrics["sizes"]
    split = (
        f"stratified, seed {SEED}: {sizes['fit']} rows fit the model, {sizes['tune']} choose "
        f"the out-of-scope threshold, {sizes['held_out']} are held out for the gate and this card"
    )
    source = DataSource(
        name="the product's own labelled support messages",
        source=source_text(outcome.trained_from),
        license="the product's own data (not redistributed)",
        split=split,
    )
    config = ModelConfig(
        name=outcome.model,
        version=1,
        task=TASK,
        sha256="",
        description=f"The product's own intents ({len([x for x in labels if x != OOS])} + "
        f"out-of-scope): {spec.label} sentence encoder + {type(model).__name__}, one ONNX "
        "graph, trained from " + source_text(outcome.trained_from) + ".",
        inputs=inputs,
        outputs=outputs,
        labels=labels,
        preprocessing=preprocessing(encoder),
        postprocessing={
            "runtime": "models.runtime.intent.decide_intent(probabilities, labels, threshold)",
            "rule": f"'{OOS}' when the top class is '{OOS}' or its probability < oos_threshold",
        },
        training_data=[
            ENCODER_SOURCES[encoder].model_copy(update={"split": "pretrained"}),
            source,
        ],
        metrics={"held_out": outcome.metrics, "gate": gate},
        latency_ms=latency,
        inputs_fingerprint=fp,
        extra={
            "oos_threshold": threshold,
            "oos_label": OOS,
            "routing": outcome.routing,
            "trained_from": outcome.trained_from,
            "counts": outcome.counts,
            "gate": gate,
            "method": type(model).__name__,
        },
        output_roles={o.name: o.name for o in outputs},
        **serving(),
    )

    def write(folder: Path) -> None:
        onnx.save(graph, str(folder / "model.onnx"))
        (folder / "labels.json").write_text(json.dumps(labels, indent=1) + "\n")
        (folder / "tokenizer.json").write_bytes(tokenizer_path.read_bytes())

    return publish_version(
        config, write, lambda c: render_card(c, c.description, _sections(outcome)), root=registry
    )


def _sections(outcome: IntentOutcome) -> list[tuple[str, str]]:
    forced = (
        " The gate refused this version; it was published by force (`--force`)."
        if outcome.decision == "forced"
        else ""
    )
    rows = [
        {"model": name, **(m or {})}
        for name, m in (
            ("this version", outcome.metrics["challenger"]),
            (f"served version {outcome.served_version}", outcome.metrics["champion"]),
        )
        if m is not None
    ]
    columns = ["model", METRIC, "in_scope_accuracy", "oos_recall", "rows"]
    counts = table(
        [
            {
                "label": k,
                "rows": v,
                "queue": outcome.routing.get("out_of_scope" if k == OOS else k, ""),
            }
            for k, v in outcome.counts.items()
        ],
        ["label", "rows", "queue"],
    )
    routing = table(
        [{"key": k, "queue": v} for k, v in sorted(outcome.routing.items())], ["key", "queue"]
    )
    return [
        ("Decision", f"**{outcome.decision}**: {outcome.reason}.{forced}"),
        (
            "Trained on",
            source_text(outcome.trained_from)
            + f".\n\nRows per label (`{OOS}`: out-of-scope):\n\n{counts}",
        ),
        (
            "Routing",
            "Intent -> support queue (`extra.routing`); the inference server's "
            "`LUMEN_INFERENCE_ROUTING` overrides entries.\n\n"
            + (routing if outcome.routing else "(none: the server's routing applies)"),
        ),
        (
            "Results (held-out rows)",
            f"Both models on the same held-out rows, each through its ONNX graph with its own "
            f"threshold; `{METRIC}`: an in-scope row is right when its intent is given, an "
            f"out-of-scope row when it is rejected. Margin {outcome.margin:g}. Out-of-scope "
            f"threshold of this version: {outcome.metrics['threshold']:.2f}.\n\n"
            + table(rows, columns),
        ),
        (
            "Parity",
            f"ONNX vs training-time probabilities on the held-out rows: max |Δp| = "
            f"{outcome.metrics['onnx_vs_training_max_abs_diff']:.2e}.",
        ),
    ]


def served_routing(name: str, intents: list[str], registry: Path | None = None) -> dict[str, str]:
    """The served version's routing map for ``intents`` and the special keys (kept when new
    labels bring no queues)."""
    try:
        extra = get_version(name, root=registry).config.extra
    except RegistryError:
        return {}
    routing = extra.get("routing")
    if not isinstance(routing, dict):
        return {}
    keep = {*intents, "out_of_scope", "default"}
    return {str(k): str(v) for k, v in routing.items() if k in keep}
