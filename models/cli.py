"""``python -m models``: train, evaluate and publish Lumen's default models.

``train <encoder|intent|recommender|search|all> [--small] [--force]`` builds models into
the registry (``$LUMEN_MODEL_REPOSITORY``, default ``var/models``); ``eval <name|all>``
re-measures the newest versions with onnxruntime; ``build-defaults [--small]`` is
``train all`` and skips models whose newest version was built from the same inputs.
Every run writes a metrics JSON under ``var/runs``. Seeds are fixed (0).

``train recommender --from-events [--force] [--margin M] [--since-days D] [--json-result P]``
trains the recommender on the product's own interactions (MongoDB, ``LUMEN_MONGO_*``) and
publishes it only if it is not worse than the served version (docs/recommender-training.md).
Exit 0 whatever the gate decides (published, refused, skipped, forced), 1 when training
fails, 3 when MongoDB is unreachable; ``--json-result`` gets the outcome in every case.

``train intent --data FILE [--model NAME] [--routes FILE] [--force] [--margin M]
[--json-result P]`` trains a product's own intents on a CSV/JSONL file of labelled texts and
``train intent --from-labels [--since-days D] ...`` on the agents' labels collected from
``support.labels``; both publish only if not worse than the served version on held-out rows
(docs/support-assistant.md, "Your own intents"). Exit codes as above, plus 2 for unusable
data (the reason names the line).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from models.evaluation import write_run

SEED = 0
EXIT_FAILED = 1
EXIT_BAD_DATA = 2
EXIT_UNREACHABLE = 3
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


def train_from_events(
    force: bool, margin: float | None, since_days: float | None, json_result: Path | None
) -> int:
    """``train recommender --from-events``: one gated training run; see the module docstring."""
    from pymongo.errors import ConnectionFailure

    from models.recommender.from_events import TrainingOutcome, train_from_store, write_outcome
    from shared.mongo import database, mongo_client
    from shared.settings import MongoSettings

    settings = MongoSettings()
    start = time.perf_counter()
    client = mongo_client(settings)
    code = 0
    try:
        outcome = train_from_store(
            database(client, settings), force=force, margin=margin, since_days=since_days
        )
    except ConnectionFailure as exc:
        outcome = TrainingOutcome("failed", f"MongoDB unreachable: {exc}")
        code = EXIT_UNREACHABLE
    except Exception as exc:  # reported in the outcome: the trainer service reads the reason
        outcome = TrainingOutcome("failed", f"{type(exc).__name__}: {exc}")
        code = EXIT_FAILED
    finally:
        client.close()
    outcome.database = outcome.database or settings.database
    outcome.seconds = outcome.seconds or round(time.perf_counter() - start, 2)
    if json_result is not None:
        write_outcome(outcome, json_result)
    path = write_run("train", "recommender-from-events", outcome.to_json(), seed=SEED)
    print(outcome.summary(), file=sys.stderr if code else sys.stdout, flush=True)
    print(f"outcome {json_result or path}", file=sys.stderr)
    return code


def train_own_intents(
    data: Path | None,
    model: str,
    routes: Path | None,
    force: bool,
    margin: float | None,
    since_days: float | None,
    json_result: Path | None,
) -> int:
    """``train intent --data FILE`` / ``--from-labels``: one gated run; see the module
    docstring."""
    from models.intent.own_data import DataError, read_labelled_file, read_routes
    from models.intent.own_register import (
        IntentOutcome,
        served_routing,
        train_and_publish,
        write_outcome,
    )

    start = time.perf_counter()
    code = 0
    try:
        route_map = read_routes(routes) if routes is not None else None
        if data is not None:
            rows = read_labelled_file(data)
        else:
            rows = _rows_from_labels(since_days)
            if route_map is None:  # labels carry no queues: keep the served version's map
                route_map = served_routing(model, rows.intents)
        outcome = train_and_publish(
            rows, model_name=model, force=force, margin=margin, routes=route_map
        )
    except DataError as exc:
        outcome, code = IntentOutcome("failed", str(exc), model=model), EXIT_BAD_DATA
    except _Unreachable as exc:
        outcome, code = IntentOutcome("failed", str(exc), model=model), EXIT_UNREACHABLE
    except Exception as exc:  # reported in the outcome, like the recommender's
        outcome = IntentOutcome("failed", f"{type(exc).__name__}: {exc}", model=model)
        code = EXIT_FAILED
    outcome.seconds = outcome.seconds or round(time.perf_counter() - start, 2)
    if json_result is not None:
        write_outcome(outcome, json_result)
    path = write_run("train", f"{model}-own", outcome.to_json(), seed=SEED)
    print(outcome.summary(), file=sys.stderr if code else sys.stdout, flush=True)
    print(f"outcome {json_result or path}", file=sys.stderr)
    return code


class _Unreachable(RuntimeError):
    pass


def _rows_from_labels(since_days: float | None) -> Any:
    from pymongo.errors import ConnectionFailure

    from models.intent.own_data import read_label_store
    from shared.mongo import database, mongo_client
    from shared.settings import MongoSettings

    settings = MongoSettings()
    client = mongo_client(settings)
    try:
        return read_label_store(database(client, settings), since_days)
    except ConnectionFailure as exc:
        raise _Unreachable(f"MongoDB unreachable: {exc}") from exc
    finally:
        client.close()


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
    p_train.add_argument(
        "--force",
        action="store_true",
        help="rebuild even if unchanged; with --from-events, publish even if the gate refuses",
    )
    p_train.add_argument(
        "--from-events",
        action="store_true",
        help="recommender only: train on the product's own interactions (LUMEN_MONGO_*) and "
        "publish when not worse than the served version",
    )
    p_train.add_argument(
        "--data",
        type=Path,
        metavar="FILE",
        help="intent only: train the product's own intents on a CSV or JSONL file (text, label, "
        "optional queue; label oos or empty = out-of-scope) and publish when not worse than "
        "the served version",
    )
    p_train.add_argument(
        "--from-labels",
        action="store_true",
        help="intent only: train on the agents' labels collected from support.labels "
        "(MongoDB support_labels, LUMEN_MONGO_*), gated like --data",
    )
    p_train.add_argument(
        "--model",
        default="intent-classifier",
        help="with --data/--from-labels: the registry name to publish under "
        "(default intent-classifier)",
    )
    p_train.add_argument(
        "--routes",
        type=Path,
        metavar="FILE",
        help="with --data/--from-labels: a JSON object intent -> support queue (overrides the "
        "file's queue column; --from-labels keeps the served version's map without it)",
    )
    p_train.add_argument(
        "--margin",
        type=float,
        help="with --from-events: how much lower the new NDCG@10 may be than the served "
        "version's (default $LUMEN_TRAINER_GATE_MARGIN or 0); with --data/--from-labels: the "
        "held-out accuracy (default $LUMEN_INTENT_GATE_MARGIN or 0)",
    )
    p_train.add_argument(
        "--since-days",
        type=float,
        help="with --from-events/--from-labels: only the last D days of interactions/labels",
    )
    p_train.add_argument(
        "--json-result",
        type=Path,
        help="with --from-events/--data/--from-labels: write the outcome as JSON here",
    )
    p_eval = sub.add_parser("eval", help="re-measure the newest versions and print tables")
    p_eval.add_argument("name", help="group (encoder, intent, ...), model name, or all")
    p_build = sub.add_parser("build-defaults", help="train all; skip unchanged models")
    p_build.add_argument("--small", action="store_true")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.command == "train":
        gate_options = (args.margin, args.since_days, args.json_result)
        if args.from_events:
            if args.target != "recommender" or args.small:
                parser.error("--from-events trains the recommender only, at full size")
            if args.margin is not None and not 0.0 <= args.margin <= 1.0:
                parser.error("--margin must be between 0 and 1")
            if args.since_days is not None and args.since_days <= 0:
                parser.error("--since-days must be positive")
            return train_from_events(args.force, args.margin, args.since_days, args.json_result)
        if args.data is not None or args.from_labels:
            if args.target != "intent" or args.small or (args.data and args.from_labels):
                parser.error("--data or --from-labels (one of them) trains intent, at full size")
            if args.margin is not None and not 0.0 <= args.margin <= 1.0:
                parser.error("--margin must be between 0 and 1")
            if args.since_days is not None and (args.data or args.since_days <= 0):
                parser.error("--since-days must be positive and goes with --from-labels")
            return train_own_intents(
                args.data,
                args.model,
                args.routes,
                args.force,
                args.margin,
                args.since_days,
                args.json_result,
            )
        if args.routes is not None or args.model != "intent-classifier":
            parser.error("--model and --routes need --data or --from-labels")
        if any(option is not None for option in gate_options):
            parser.error(
                "--margin, --since-days and --json-result need --from-events, --data or "
                "--from-labels"
            )
        train(args.target, args.small, args.force)
    elif args.command == "build-defaults":
        train("all", args.small)
    else:
        evaluate(args.name)
    print(f"done in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, default=str)
