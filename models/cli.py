"""``python -m models``: train, evaluate and publish Lumen's default models.

``train <encoder|intent|recommender|search|all> [--small] [--force]`` builds models into
the registry (``$LUMEN_MODEL_REPOSITORY``, default ``var/models``); ``eval <name|all>``
re-measures the newest versions with onnxruntime; ``build-defaults [--small]`` is
``train all`` and skips models whose newest version was built from the same inputs.
Every run writes a metrics JSON under ``var/runs``. Seeds are fixed (0).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from models.evaluation import write_run

SEED = 0
GROUPS = {
    "encoder": ["text-encoder", "text-encoder-int8"],
    "intent": ["intent-classifier", "intent-classifier-clinc150"],
    "recommender": ["recommender"],
    "search": ["item-search"],
}
ORDER = ["encoder", "intent", "recommender", "search"]  # search needs the encoder


def _trainers() -> dict[str, Callable[[bool, bool], dict[str, Any]]]:
    # Imported lazily: these pull in onnx, scikit-learn, JAX.
    from models.encoder.register import register_encoders
    from models.intent.register import register_intent
    from models.recommender.register import register_recommender
    from models.search.register import register_search

    def intent(small: bool, force: bool) -> dict[str, Any]:
        return {d: register_intent(d, small, force) for d in ("banking77", "clinc150")}

    return {
        "encoder": register_encoders,
        "intent": intent,
        "recommender": register_recommender,
        "search": register_search,
    }


def train(target: str, small: bool = False, force: bool = False) -> dict[str, Any]:
    trainers = _trainers()
    results: dict[str, Any] = {}
    for group in ORDER if target == "all" else [target]:
        start = time.perf_counter()
        print(f"== {group}: building{' (small)' if small else ''}", flush=True)
        out = trainers[group](small, force)
        out = {"seconds": round(time.perf_counter() - start, 1), **out}
        results[group] = out
        path = write_run("train", group, out, seed=SEED)
        parts = [v for v in out.values() if isinstance(v, dict) and "skipped" in v]
        skipped = out["skipped"] if "skipped" in out else all(p["skipped"] for p in parts)
        state = "unchanged, kept" if skipped else "built"
        print(f"== {group}: {state} in {out['seconds']} s; metrics {path}", flush=True)
    return results


def evaluate(name: str) -> dict[str, Any]:
    from models.live_eval import EVALUATORS, latency_line
    from shared.model_registry import get_version

    names = [n for g in ORDER for n in GROUPS[g]] if name == "all" else GROUPS.get(name, [name])
    results = {}
    for model in names:
        if model not in EVALUATORS:
            raise SystemExit(f"unknown model {model!r}; choose from {sorted(EVALUATORS)}")
        text, live = EVALUATORS[model](model)
        mv = get_version(model)
        print(f"\n### {model} v{mv.version}\n{text}\n{latency_line(mv)}", flush=True)
        results[model] = {"version": mv.version, **live}
        write_run("eval", model, results[model], seed=SEED)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m models",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_train = sub.add_parser("train", help="build models into the registry")
    p_train.add_argument("target", choices=[*ORDER, "all"])
    p_train.add_argument("--small", action="store_true", help="quick CI-sized build")
    p_train.add_argument("--force", action="store_true", help="rebuild even if unchanged")
    p_eval = sub.add_parser("eval", help="re-measure the newest versions and print tables")
    p_eval.add_argument("name", help="group (encoder, intent, ...), model name, or all")
    p_build = sub.add_parser("build-defaults", help="train all; skip unchanged models")
    p_build.add_argument("--small", action="store_true")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.command == "train":
        train(args.target, args.small, args.force)
    elif args.command == "build-defaults":
        train("all", args.small)
    else:
        evaluate(args.name)
    print(f"done in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, default=str)
