"""Publish ``intent-classifier`` (Banking77) and ``intent-classifier-clinc150``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import onnx

from models.cards import render_card
from models.encoder.register import ENCODER_SOURCES, preprocessing, text_io
from models.encoder.spec import SPECS
from models.evaluation import measure_latency, session, table
from models.intent.data import OOS
from models.intent.distill import CODE_VERSION as DISTILL_CODE_VERSION
from models.intent.distill import Teacher, train_distilled
from models.intent.finetune import DistillParams
from models.intent.graph import build_intent_graph
from models.intent.scoring import MAX_ACCURACY_DROP
from models.intent.train import IntentRun, distillation_for, params_for, train_intent
from models.paths import datasets_dir
from models.publish import current_if_unchanged, fingerprint, publish, serving
from models.runtime.text import TextTokenizer
from models.sources import ENCODER_FILES, ENCODER_WEIGHTS_SHA256, sha256_file
from shared.model_registry import DataSource, ModelConfig, TensorSpec

# 2: the encoder is a parameter (MiniLM or MPNet); 3: Banking77 is MiniLM distilled from MPNet
CODE_VERSION = 3
MODEL_NAMES = {"banking77": "intent-classifier", "clinc150": "intent-classifier-clinc150"}
TARGETS = {
    "banking77": {"in_scope_accuracy": 0.94},
    "clinc150": {"in_scope_accuracy": 0.96, "oos_recall": 0.70},
}
BANKING77 = DataSource(
    name="Banking77 (Casanueva et al., 2020)",
    source="data/datasets/banking77/train.csv",
    license="CC BY 4.0",
    split="90% train / 10% validation, stratified, seed 0",
)
CLINC150 = DataSource(
    name="CLINC150 (Larson et al., 2019)",
    source="data/datasets/clinc150",
    license="CC BY 3.0",
    split="train 90% fit / 10% tune; oos_train halves fit/tune; val + oos_val reported",
)
LATENCY_TEXT = "I still haven't received my new card, when will it arrive?"
THROUGHPUT_BATCH = 32


def _data_hash(dataset: str) -> str:
    files = sorted((datasets_dir() / dataset).glob("*"))
    if dataset == "banking77":  # its OOS examples come from CLINC150
        files += sorted((datasets_dir() / "clinc150").glob("*"))
    return fingerprint({p.name: sha256_file(p) for p in files})


def _rows(run: IntentRun, dataset: str) -> list[dict[str, Any]]:
    rows = []
    label = SPECS[run.params.encoder].label
    served = "distilled" if "teacher" in run.metrics else "fine-tuned"
    models = [
        (f"frozen {label} + logistic regression (baseline)", "baseline_frozen_logreg"),
        (f"{served} {label} top layers + head (served)", "model"),
    ]
    if "teacher" in run.metrics:
        teacher_label = SPECS[run.metrics["distillation"]["teacher"]["encoder"]].label
        models.insert(1, (f"fine-tuned {teacher_label} (teacher, not served)", "teacher"))
    for name, key in models:
        m = run.metrics[key]
        rows.append(
            {
                "model": name,
                "in-scope accuracy": m["in_scope_accuracy"],
                "accuracy, no OOS threshold": m["accuracy_no_threshold"],
                "OOS recall": m.get("oos_recall"),
                "OOS precision": m.get("oos_precision"),
                "threshold": m["threshold"],
            }
        )
    target = TARGETS[dataset]
    rows.append(
        {
            "model": "target",
            "in-scope accuracy": target["in_scope_accuracy"],
            "OOS recall": target.get("oos_recall"),
        }
    )
    return rows


COLUMNS = [
    "model",
    "in-scope accuracy",
    "accuracy, no OOS threshold",
    "OOS recall",
    "OOS precision",
    "threshold",
]


def hits(run: IntentRun, dataset: str) -> dict[str, bool]:
    m = run.metrics["model"]
    return {k: bool(m.get(k, 0.0) >= v) for k, v in TARGETS[dataset].items()}


def _texts_per_second(latency: dict[str, float]) -> float:
    return round(1000.0 * THROUGHPUT_BATCH / latency[f"batch{THROUGHPUT_BATCH}_p50_ms"], 1)


def _distillation_section(
    run: IntentRun, distill: DistillParams, teacher: Teacher, throughput: dict[str, float]
) -> str:
    """Teacher and student side by side: accuracy on the reported split and texts/s."""
    rows = []
    for role, params, key, speed in (
        ("teacher (not served)", teacher.params, "teacher", throughput["teacher"]),
        ("student (served)", run.params, "model", throughput["served"]),
    ):
        m = run.metrics[key]
        rows.append(
            {
                "model": role,
                "encoder": SPECS[params.encoder].label,
                "fine-tuned layers": params.top_layers,
                "in-scope accuracy": m["in_scope_accuracy"],
                "accuracy, no OOS threshold": m["accuracy_no_threshold"],
                "OOS recall": m.get("oos_recall"),
                f"texts/s (batch {THROUGHPUT_BATCH})": f"{speed:.0f}",
            }
        )
    return (
        f"The student learns from `{distill.alpha:g} * CE(labels) + {1 - distill.alpha:g} * "
        f"T^2 * KL(teacher_T || student_T)` with T = {distill.temperature:g} "
        "(`models/intent/distill.py`); the teacher's logits on the training split are "
        "computed once and cached. Texts/s: one onnxruntime session, 2 threads, the median "
        f"of 30 runs of a batch of {THROUGHPUT_BATCH}, both measured in this build.\n\n"
        + table(rows, list(rows[0]))
    )


def register_intent(dataset: str, small: bool = False, force: bool = False) -> dict[str, Any]:
    name = MODEL_NAMES[dataset]
    params = params_for(dataset)
    distill = distillation_for(dataset, small)
    spec = SPECS[params.encoder]
    fp = fingerprint(
        {
            "code": CODE_VERSION,
            "weights": ENCODER_WEIGHTS_SHA256[params.encoder],
            "data": _data_hash(dataset),
            "small": small,
            "finetune": asdict(params),
            "max_accuracy_drop": MAX_ACCURACY_DROP,
            **(
                {
                    "distill": asdict(distill),
                    "distill_code": DISTILL_CODE_VERSION,
                    "teacher_weights": ENCODER_WEIGHTS_SHA256[distill.teacher.encoder],
                }
                if distill
                else {}
            ),
        }
    )
    kept = current_if_unchanged(name, fp)
    if kept is not None and not force:
        return {"skipped": True, **kept.metrics}
    encoder_dir = ENCODER_FILES[params.encoder]()
    teacher: Teacher | None = None
    if distill is None:
        run = train_intent(dataset, encoder_dir, small=small, params=params)
    else:
        run, teacher = train_distilled(dataset, params, distill, small)
        run.metrics["teacher"] = teacher.metrics["model"]
        run.metrics["distillation"] = asdict(distill)
    graph = build_intent_graph(run.weights, run.head_weight, run.head_bias)
    tok = TextTokenizer(encoder_dir / "tokenizer.json")
    sess = session(graph.SerializeToString())
    latency = measure_latency(sess, lambda b: tok.encode([LATENCY_TEXT] * b))
    throughput = {"served": _texts_per_second(latency)}
    if teacher is not None:  # the teacher's cost, measured beside the student's
        teacher_tok = TextTokenizer(teacher.folder / "tokenizer.json")
        teacher_latency = measure_latency(
            session(teacher.model_path),
            lambda b: teacher_tok.encode([LATENCY_TEXT] * b),
            batches=(THROUGHPUT_BATCH,),
        )
        throughput["teacher"] = _texts_per_second(teacher_latency)
    # The exported graph must reproduce the training-time (JAX) scorer.
    sample = run.data.report.texts[:64]
    onnx_probs = sess.run(["probabilities"], tok.encode(sample))[0]
    assert run.report_probs is not None
    max_diff = float(abs(onnx_probs - run.report_probs[:64]).max())
    metrics: dict[str, Any] = {
        **run.metrics,
        "targets": TARGETS[dataset],
        "hit": hits(run, dataset),
        "onnx_vs_training_max_abs_diff": max_diff,
        "finetune": asdict(run.params),
        "texts_per_second_batch32": throughput,
    }
    labels = run.data.label_names
    inputs, _ = text_io(TensorSpec(name="x", dtype="float32", shape=[1]), params.encoder)
    outputs = [
        TensorSpec(
            name="probabilities",
            dtype="float32",
            shape=["batch", len(labels)],
            description=f"softmax over labels.json (last = '{OOS}')",
        ),
        TensorSpec(
            name="embedding",
            dtype="float32",
            shape=["batch", spec.hidden],
            description="fine-tuned sentence embedding (unit norm)",
        ),
    ]
    data = [BANKING77, CLINC150] if dataset == "banking77" else [CLINC150]
    config = ModelConfig(
        name=name,
        version=1,
        task="intent-classification",
        sha256="",
        description=f"{dataset} intents + out-of-scope: {spec.label} with fine-tuned top "
        f"{run.params.top_layers} layer(s) and a linear head, one ONNX graph."
        + (
            f" Distilled from a fine-tuned {SPECS[distill.teacher.encoder].label} teacher."
            if distill
            else ""
        ),
        inputs=inputs,
        outputs=outputs,
        labels=labels,
        preprocessing=preprocessing(params.encoder),
        postprocessing={
            "runtime": "models.runtime.intent.decide_intent(probabilities, labels, threshold)",
            "rule": f"'{OOS}' when the top class is '{OOS}' or its probability < oos_threshold",
        },
        training_data=[
            ENCODER_SOURCES[params.encoder].model_copy(
                update={"split": "pretrained; top layers fine-tuned here"}
            ),
            *data,
        ],
        metrics=metrics,
        latency_ms=latency,
        inputs_fingerprint=fp,
        extra={"oos_threshold": run.threshold, "oos_label": OOS, "small_build": small},
        output_roles={"probabilities": "probabilities", "embedding": "embedding"},
        **serving(),
    )

    def write(folder: Path) -> None:
        onnx.save(graph, str(folder / "model.onnx"))
        (folder / "labels.json").write_text(json.dumps(labels, indent=1) + "\n")
        (folder / "tokenizer.json").write_bytes((encoder_dir / "tokenizer.json").read_bytes())

    report_note = (
        "Reported on the 10% validation split carved from Banking77 `train.csv` "
        "(also used to pick the threshold) plus CLINC150 "
        "`oos_val` as out-of-scope queries; the official test split is never read."
        if dataset == "banking77"
        else "Threshold picked on a 10% split carved from CLINC150 `train` plus half of "
        "`oos_train`; reported on the untouched official `val` + `oos_val` "
        "(the official test split is never read)."
    )
    sections = [
        ("Results", report_note + "\n\n" + table(_rows(run, dataset), COLUMNS)),
        (
            "Out-of-scope",
            f"Decision: `oos` if the `oos` class wins or the top probability is "
            f"below **{run.threshold:.2f}** (`extra.oos_threshold`), chosen on the tune split "
            f"to maximise in-scope accuracy + OOS recall while losing at most "
            f"{100 * MAX_ACCURACY_DROP:g} point(s) of in-scope accuracy there.",
        ),
        ("Parity", f"ONNX vs training-time scorer on 64 texts: max |Δp| = {max_diff:.2e}."),
    ]
    if distill is not None and teacher is not None:
        sections.insert(
            1, ("Distillation", _distillation_section(run, distill, teacher, throughput))
        )
    path = publish(config, write, lambda c: render_card(c, c.description, sections))
    return {"skipped": False, "path": str(path), **metrics, "latency_ms": latency}
