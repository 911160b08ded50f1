"""``lumen train`` and ``lumen eval``: the model builders (``python -m models``)."""

from __future__ import annotations

import argparse
from typing import Any


def add_parsers(sub: Any) -> None:
    train = sub.add_parser(
        "train",
        help="build models into the registry (python -m models train ...)",
        description="Arguments after `train` go to `python -m models train`, e.g. "
        "`lumen train all --small` or `lumen train recommender --force`. "
        "`lumen train recommender --from-events [--force] [--margin M] [--since-days D] "
        "[--json-result PATH]` trains the recommender on the product's own interactions "
        "(MongoDB from LUMEN_MONGO_*) and publishes it only when it is not worse than the "
        "served version (docs/recommender-training.md); exit 3 when MongoDB is unreachable.",
    )
    train.add_argument(
        "rest",
        nargs=argparse.REMAINDER,
        help="target [--small] [--force] | recommender --from-events [--force] [--margin M]",
    )
    train.set_defaults(func=lambda args: _models(["train", *args.rest]))
    evaluate = sub.add_parser(
        "eval",
        help="re-measure the newest model versions (python -m models eval ...)",
        description="Arguments after `eval` go to `python -m models eval`, e.g. `lumen eval all`.",
    )
    evaluate.add_argument("rest", nargs=argparse.REMAINDER, help="name|group|all")
    evaluate.set_defaults(func=lambda args: _models(["eval", *args.rest]))


def _models(argv: list[str]) -> int:
    from models.cli import main  # imported lazily: it pulls in the training stack

    return int(main(argv) or 0)
