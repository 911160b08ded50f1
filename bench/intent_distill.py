"""Banking77 intent models side by side: the MPNet teacher, a plain fine-tuned MiniLM, the
MiniLM distilled from the teacher (the served default) and its int8 copy: accuracy on the
reported split and texts/s measured in this run.

    .venv/bin/python -m bench.intent_distill [--registry var/models] [--plain DIR]
        [--seconds 5] [--rounds 3]

Accuracy: the in-scope accuracy (with the model's OOS threshold) on the 10% validation
split carved from Banking77 ``train.csv`` (plus CLINC150 ``oos_val``), as each build
recorded it; the int8 copy (``onnxruntime.quantization.quantize_dynamic``) and its fp32
source are scored here with onnxruntime on the same split. The teacher is read from the
build cache (``var/cache/intent-teacher``), the distilled model from the registry, the plain
MiniLM from ``--plain`` (a version folder built with ``LUMEN_INTENT_ENCODER=minilm``, or a
MiniLM teacher folder of the cache; left out when not given). Texts/s: one onnxruntime session per model (2 intra-op threads),
batches of 32 texts with tokenising, the models interleaved round by round so that a
shared machine's drift touches all of them; the median round, and ratios to the teacher.

Writes docs/benchmarks/intent_distill.json and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import calls_per_thread_loop, machine
from models.evaluation import session
from models.intent.data import OOS
from models.intent.distill import teacher_folder
from models.intent.scoring import intent_metrics
from models.intent.train import DISTILLATION, load_data
from models.runtime.text import TextTokenizer
from shared.model_registry import get_version

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "benchmarks" / "intent_distill.json"
BATCH = 32
TEXTS = [
    "I still have not received my new card, when will it arrive?",
    "How do I get a refund for this purchase?",
    "What is my current balance?",
    "Can I transfer money to another account?",
    "my card payment was declined at the shop",
    "what's the weather like tomorrow",
    "I want to change my PIN",
    "Why was I charged a fee for a transfer?",
]


def quantize(model: Path, folder: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = folder / "model-int8.onnx"
    quantize_dynamic(str(model), str(out), weight_type=QuantType.QInt8)
    return out


def score(model: Path, tokenizer: TextTokenizer, threshold: float, small: bool) -> dict[str, float]:
    """The reported split's metrics from the ONNX graph itself."""
    data = load_data("banking77", small)
    texts, names = data.report.texts, data.label_names
    y = np.array([names.index(label) for label in data.report.labels])
    sess = session(model)
    order = np.argsort([len(t) for t in texts], kind="stable")
    probs = np.zeros((len(texts), len(names)), dtype=np.float64)
    for start in range(0, len(texts), 64):
        idx = order[start : start + 64]
        probs[idx] = sess.run(["probabilities"], tokenizer.encode([texts[i] for i in idx]))[0]
    return intent_metrics(probs, y, names, threshold)


def texts_per_second(sess: Any, tokenizer: TextTokenizer, seconds: float) -> float:
    texts = [TEXTS[i % len(TEXTS)] for i in range(BATCH)]
    runs, elapsed = calls_per_thread_loop(
        lambda: sess.run(None, tokenizer.encode(texts)), 1, seconds
    )
    return runs * BATCH / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--registry", type=Path, default=REPO / "var" / "models")
    parser.add_argument("--plain", type=Path, default=None, help="plain MiniLM version folder")
    parser.add_argument(
        "--teacher", type=Path, default=None, help="teacher folder (default: the build cache's)"
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="per model and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    student = get_version("intent-classifier", root=args.registry)
    if "teacher" not in student.config.metrics:
        raise SystemExit(f"{student.path} is not a distilled model (no teacher in its metrics)")
    small = bool(student.config.extra.get("small_build"))
    teacher_dir = args.teacher or teacher_folder(
        "banking77", DISTILLATION["banking77"].teacher, small=False
    )
    teacher_meta = json.loads((teacher_dir / "teacher.json").read_text())
    threshold = float(student.config.extra["oos_threshold"])
    tmp = Path(tempfile.mkdtemp(prefix="lumen-intent-int8-"))
    int8 = quantize(student.model_path, tmp)
    student_tok = TextTokenizer(student.path / "tokenizer.json")

    models: dict[str, dict[str, Any]] = {
        "teacher_mpnet": {
            "path": teacher_dir / "model.onnx",
            "tokenizer": TextTokenizer(teacher_dir / "tokenizer.json"),
            "accuracy": teacher_meta["metrics"]["model"],
        },
        "distilled_minilm": {
            "path": student.model_path,
            "tokenizer": student_tok,
            "accuracy": student.config.metrics["model"],
            "accuracy_onnx_here": score(student.model_path, student_tok, threshold, small),
        },
        "distilled_minilm_int8": {
            "path": int8,
            "tokenizer": student_tok,
            "accuracy_onnx_here": score(int8, student_tok, threshold, small),
        },
    }
    if args.plain is not None:
        # a registry version folder, or a teacher folder of the build cache
        config = args.plain / "config.json"
        meta = json.loads((config if config.exists() else args.plain / "teacher.json").read_text())
        models["plain_minilm"] = {
            "path": args.plain / "model.onnx",
            "tokenizer": TextTokenizer(args.plain / "tokenizer.json"),
            "accuracy": meta["metrics"]["model"],
        }
    sessions = {name: session(m["path"]) for name, m in models.items()}
    rounds: dict[str, list[float]] = {name: [] for name in models}
    for r in range(args.rounds):
        for name, m in models.items():
            rounds[name].append(texts_per_second(sessions[name], m["tokenizer"], args.seconds))
        print(f"round {r + 1}: " + ", ".join(f"{n} {v[-1]:.0f}" for n, v in rounds.items()))
    teacher_speed = statistics.median(rounds["teacher_mpnet"])
    result: dict[str, Any] = {
        "benchmark": "intent_distill",
        "machine": machine(),
        "split": "reported: Banking77 validation (10% of train.csv, seed 0) + CLINC150 "
        f"oos_val ({OOS})",
        # CI-sized models have the served graphs' cost but not their accuracy
        "small_build": small,
        "teacher_folder": str(teacher_dir),
        "distillation": student.config.metrics["distillation"],
        "student_version": student.version,
        "batch": BATCH,
        "seconds_per_round": args.seconds,
        "models": {},
    }
    for name, m in models.items():
        speed = statistics.median(rounds[name])
        result["models"][name] = {
            **{k: m[k] for k in ("accuracy", "accuracy_onnx_here") if k in m},
            "texts_per_second_rounds": rounds[name],
            "texts_per_second": speed,
            "speed_ratio_to_teacher": speed / teacher_speed,
        }
    OUT.write_text(json.dumps(result, indent=2, default=float) + "\n")
    for name, m in result["models"].items():
        acc = m.get("accuracy", m.get("accuracy_onnx_here", {}))
        print(
            f"{name}: in-scope accuracy {acc.get('in_scope_accuracy', float('nan')):.4f}, "
            f"{m['texts_per_second']:.0f} texts/s ({m['speed_ratio_to_teacher']:.2f}x teacher)"
        )
    print(f"saved {OUT}")


if __name__ == "__main__":
    main()
