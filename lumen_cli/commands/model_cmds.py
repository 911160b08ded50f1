"""``lumen train`` and ``lumen eval``: the model builders (``python -m models``)."""

from __future__ import annotations

import argparse
from typing import Any


def add_parsers(sub: Any) -> None:
    train = sub.add_parser(
        "train",
        help="build models into the registry (python -m models train ...)",
        description="Arguments after `train` go to `python -m models train`, e.g. "
        "`lumen train all --small` or `lumen train intent --force`. "
        "`lumen train recommender [--force] [--margin M] [--since-days D] [--json-result PATH]` "
        "trains the recommender on the product's own interactions (MongoDB from LUMEN_MONGO_*; "
        "`--from-events` may be given, it is the default here) and publishes it only when it is "
        "not worse than the served version (docs/recommender-training.md); exit 3 when MongoDB "
        "is unreachable. `lumen train recommender --reference [--small] [--force]` rebuilds the "
        "offline MovieLens reference model instead. "
        "`lumen train intent --data FILE [--model NAME] [--routes FILE] [--force] [--margin M]` "
        "trains the product's own support intents on a CSV or JSONL file (text, label, optional "
        "queue; label `oos` or empty = out-of-scope) and `lumen train intent --from-labels "
        "[--since-days D]` on the agents' labels collected from support.labels; both publish "
        "only when not worse than the served version on held-out rows, with the routing map "
        "(docs/support-assistant.md); exit 2 for unusable data.",
    )
    train.add_argument(
        "rest",
        nargs=argparse.REMAINDER,
        help="target [--small] [--force] | recommender [--force] [--margin M] | "
        "recommender --reference | intent --data FILE | intent --from-labels",
    )
    train.set_defaults(func=lambda args: _models(["train", *recommender_source(args.rest)]))
    evaluate = sub.add_parser(
        "eval",
        help="re-measure the newest model versions (python -m models eval ...)",
        description="Arguments after `eval` go to `python -m models eval`, e.g. `lumen eval all`.",
    )
    evaluate.add_argument("rest", nargs=argparse.REMAINDER, help="name|group|all")
    evaluate.set_defaults(func=lambda args: _models(["eval", *args.rest]))


def recommender_source(rest: list[str]) -> list[str]:
    """``lumen train recommender`` learns from the product's events; ``--reference`` asks for
    the offline MovieLens build (``python -m models train recommender`` without a flag)."""
    if not rest or rest[0] != "recommender":
        return rest
    if "--reference" in rest:
        return [arg for arg in rest if arg != "--reference"]
    return rest if "--from-events" in rest else [rest[0], "--from-events", *rest[1:]]


def _models(argv: list[str]) -> int:
    from models.cli import main  # imported lazily: it pulls in the training stack

    return int(main(argv) or 0)
