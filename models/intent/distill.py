"""Knowledge distillation of an intent model: a large fine-tuned teacher's softened
outputs train a small student (Hinton et al., 2015).

Banking77 reaches 0.94 with MPNet's top layers fine-tuned, but MPNet costs 5-7 times
MiniLM per text; MiniLM alone plateaus at 0.931-0.937 (models/README.md). The teacher
(MPNet, the same budget as before) is fine-tuned once and its logits on the training
split are cached under ``var/cache/intent-teacher/``; the student (MiniLM's top layers +
head, ``models.intent.finetune``) then learns from
``alpha * CE(labels) + (1 - alpha) * T**2 * KL(teacher_T || student_T)``
(``models.intent.losses.distillation_loss``). The student is what is served.

    python -m models.intent.distill teacher [--small]      # fit + cache the teacher
    python -m models.intent.distill select --alpha A --temperature T [--epochs E]

``select`` picks the settings without touching the reported split: it holds out a
stratified tenth of the training split ("selection" texts), trains the student on the
rest and prints the selection accuracy after every epoch.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from models.encoder.spec import SPECS
from models.evaluation import write_run
from models.intent.data import OOS, IntentData, _join, _pick, _stratified_holdout
from models.intent.finetune import Distillation, DistillParams, FinetuneParams
from models.intent.graph import build_intent_graph
from models.intent.train import DEFAULT_PARAMS, DISTILLATION, IntentRun, load_data, train_intent
from models.paths import cache_dir
from models.publish import fingerprint
from models.sources import ENCODER_FILES, ENCODER_WEIGHTS_SHA256, sha256_file

CODE_VERSION = 1
SELECTION_FRACTION = 0.1
SELECTION_SEED = 1  # not the seed of the validation split, so the two draws differ


@dataclass
class Teacher:
    """A fitted teacher as cached: logits on the training split, its own metrics and
    the folder holding its ONNX graph (for benchmarks beside the student)."""

    logits: np.ndarray  # [N_train, C]
    metrics: dict[str, Any]
    threshold: float
    params: FinetuneParams
    folder: Path

    @property
    def model_path(self) -> Path:
        return self.folder / "model.onnx"


def _data_hash(dataset: str) -> str:
    from models.paths import datasets_dir

    files = sorted((datasets_dir() / dataset).glob("*")) + sorted(
        (datasets_dir() / "clinc150").glob("*")
    )
    return fingerprint({f"{p.parent.name}/{p.name}": sha256_file(p) for p in files})


def teacher_folder(dataset: str, params: FinetuneParams, small: bool) -> Path:
    key = fingerprint(
        {
            "code": CODE_VERSION,
            "dataset": dataset,
            "data": _data_hash(dataset),
            "weights": ENCODER_WEIGHTS_SHA256[params.encoder],
            "finetune": asdict(params),
            "small": small,
        }
    )
    return cache_dir() / "intent-teacher" / f"{dataset}-{params.encoder}-{key[:16]}"


def fit_teacher(dataset: str, params: FinetuneParams, small: bool = False) -> Teacher:
    """The teacher for ``dataset``, fitted once per inputs and then read from the cache."""
    folder = teacher_folder(dataset, params, small)
    if (folder / "teacher.json").exists():
        meta = json.loads((folder / "teacher.json").read_text())
        return Teacher(
            np.load(folder / "train_logits.npy"),
            meta["metrics"],
            meta["threshold"],
            FinetuneParams(**meta["params"]),
            folder,
        )
    encoder_dir = ENCODER_FILES[params.encoder]()
    run = train_intent(dataset, encoder_dir, small, params, train_logits=True)
    assert run.train_logits is not None
    tmp = folder.with_name(folder.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    np.save(tmp / "train_logits.npy", run.train_logits)
    graph = build_intent_graph(run.weights, run.head_weight, run.head_bias)
    onnx.save(graph, str(tmp / "model.onnx"))
    (tmp / "tokenizer.json").write_bytes((encoder_dir / "tokenizer.json").read_bytes())
    (tmp / "labels.json").write_text(json.dumps(run.data.label_names) + "\n")
    meta = {"metrics": run.metrics, "threshold": run.threshold, "params": asdict(run.params)}
    (tmp / "teacher.json").write_text(json.dumps(meta, indent=1, default=float) + "\n")
    tmp.rename(folder)  # complete or absent
    return fit_teacher(dataset, params, small)


def train_distilled(
    dataset: str,
    student: FinetuneParams,
    distill: DistillParams,
    small: bool = False,
    data: IntentData | None = None,
    train_rows: np.ndarray | None = None,
    track_epochs: bool = False,
) -> tuple[IntentRun, Teacher]:
    """Fit (or read) the teacher, then the student on its soft targets. ``data`` with
    ``train_rows`` (indexes into the full training split) trains on a subset."""
    teacher = fit_teacher(dataset, distill.teacher, small)
    logits = teacher.logits if train_rows is None else teacher.logits[train_rows]
    encoder_dir = ENCODER_FILES[student.encoder]()
    run = train_intent(
        dataset,
        encoder_dir,
        small,
        student,
        data=data,
        distillation=Distillation(logits, distill.alpha, distill.temperature),
        track_epochs=track_epochs,
    )
    return run, teacher


def selection_data(data: IntentData) -> tuple[IntentData, np.ndarray]:
    """Training split minus a stratified tenth of its in-scope texts, which become the
    tune and report splits (with the tune split's OOS texts); the validation split the
    model card reports is not used. Returns the data and the kept training rows."""
    labels = np.asarray(data.train.labels)
    in_scope = labels != OOS
    held = np.zeros(len(labels), dtype=bool)
    held[np.flatnonzero(in_scope)] = _stratified_holdout(
        list(labels[in_scope]), SELECTION_FRACTION, SELECTION_SEED
    )
    tune_oos = _pick(data.tune, np.asarray(data.tune.labels) == OOS)
    selection = _join(_pick(data.train, held), tune_oos)
    return replace(
        data, train=_pick(data.train, ~held), tune=selection, report=selection
    ), np.flatnonzero(~held)


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m models.intent.distill")
    sub = parser.add_subparsers(dest="command", required=True)
    p_teacher = sub.add_parser("teacher", help="fit and cache the Banking77 teacher")
    p_teacher.add_argument("--small", action="store_true")
    p_select = sub.add_parser("select", help="one student run scored on the selection texts")
    p_select.add_argument("--alpha", type=float, required=True)
    p_select.add_argument("--temperature", type=float, required=True)
    p_select.add_argument("--epochs", type=int, default=DEFAULT_PARAMS["banking77"].epochs)
    p_select.add_argument("--small", action="store_true")
    args = parser.parse_args(argv)
    distill = DISTILLATION["banking77"]
    if args.command == "teacher":
        teacher = fit_teacher("banking77", distill.teacher, args.small)
        print(json.dumps({"folder": str(teacher.folder), **teacher.metrics["model"]}, indent=1))
        return
    distill = replace(distill, alpha=args.alpha, temperature=args.temperature)
    student = replace(DEFAULT_PARAMS["banking77"], epochs=args.epochs)
    data, rows = selection_data(load_data("banking77", args.small))
    run, _ = train_distilled(
        "banking77", student, distill, args.small, data=data, train_rows=rows, track_epochs=True
    )
    result = {
        "split": "selection: a stratified tenth of the training split (validation untouched)",
        "student": SPECS[student.encoder].label,
        "alpha": distill.alpha,
        "temperature": distill.temperature,
        "epochs": run.metrics["epochs"],
        "selection": run.metrics["model"],
        "sizes": run.metrics["sizes"],
    }
    path = write_run("distill-select", "intent-classifier", result, seed=student.seed)
    print(json.dumps(result, indent=1, default=float))
    print(path)


if __name__ == "__main__":
    _main()
