"""``lumen seed``: replay MovieLens 100k and Banking77 through the public APIs.

MovieLens items and ratings go to ingest's HTTP batch endpoint with the write key (so they
take the path any product backend's events take), the ratings in their original order and
spacing, shifted so that the newest lands at replay time; Banking77 queries go to
``support.messages``, where the inference server classifies and routes them.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from lumen_cli.output import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, print_json
from lumen_cli.platform import paths
from lumen_cli.seed.datasets import Selection
from lumen_cli.settings import CliSettings

PHASES = ("catalogue", "ratings", "kb", "support")


def checkpoint_file() -> Path:
    """Kept beside the data it describes: `lumen down --purge` deletes both, so a purged
    platform is seeded again instead of being told that it already was."""
    return paths.data_dir("seed") / "checkpoint.json"


def add_parsers(sub: Any) -> None:
    seed = sub.add_parser(
        "seed",
        help="replay MovieLens 100k and Banking77 into the running platform (resumable)",
        description=(
            "Replays the MovieLens 100k catalogue and ratings as events through ingest's HTTP "
            "API (ratings in their original order and spacing, shifted so that the newest lands "
            "now), and Banking77 support queries onto support.messages. By default a sample "
            "(users 1..200, 500 messages) at 500 events/s, about a minute; --all for everything. "
            "Re-running resumes from var/data/seed/checkpoint.json; stable messageIds make ingest "
            "drop anything sent twice."
        ),
    )
    seed.add_argument("--all", action="store_true", help="every rating and every message")
    seed.add_argument("--users", type=int, default=200, help="ratings of users 1..N (default 200)")
    seed.add_argument(
        "--support",
        type=int,
        default=500,
        metavar="N",
        help="support messages to send (default 500)",
    )
    seed.add_argument(
        "--only", action="append", choices=PHASES, help="replay only this part (repeatable)"
    )
    seed.add_argument(
        "--rate", type=float, default=500.0, help="events per second, 0 for no limit (default 500)"
    )
    seed.add_argument(
        "--batch-size", type=int, default=250, help="events per request (default 250)"
    )
    seed.add_argument("--restart", action="store_true", help="ignore the checkpoint")
    progress = seed.add_mutually_exclusive_group()
    progress.add_argument(
        "--progress",
        action="store_true",
        default=None,
        help="always show progress bars (default: only on a terminal)",
    )
    progress.add_argument("--no-progress", dest="progress", action="store_false")
    seed.add_argument("--json", action="store_true", help="print the summary as JSON")
    seed.set_defaults(func=cmd_seed)


def _progress_factory(enabled: bool | None) -> Any:
    from tqdm import tqdm

    def make(phase: str, total: int, initial: int) -> Any:
        return tqdm(
            total=total,
            initial=initial,
            desc=f"{phase:<9}",
            unit="ev",
            disable=enabled is False or (enabled is None and not sys.stderr.isatty()),
            file=sys.stderr,
            dynamic_ncols=True,
            smoothing=0.1,
        )

    return make


def cmd_seed(args: argparse.Namespace) -> int:
    from lumen_cli.seed import datasets
    from lumen_cli.seed.replay import (
        Checkpoint,
        IngestBatchSender,
        Replayer,
        SeedError,
        SupportProducer,
        TokenBucket,
        original_spacing,
    )

    if args.batch_size < 1 or args.batch_size > 1000:
        print("lumen seed: --batch-size must be 1..1000", file=sys.stderr)
        return 2
    selection = Selection(None, None) if args.all else Selection(args.users, args.support)
    phases = args.only or list(PHASES)
    settings = CliSettings()
    checkpoint_path = checkpoint_file()
    if args.restart:
        checkpoint_path.unlink(missing_ok=True)
    replayer = Replayer(
        Checkpoint.load(checkpoint_path),
        TokenBucket(args.rate, burst=max(args.rate, args.batch_size)),
        args.batch_size,
        _progress_factory(args.progress),
    )
    plans = selection.describe()
    results = []
    sender: IngestBatchSender | None = None
    producer: SupportProducer | None = None
    try:
        if "catalogue" in phases or "ratings" in phases:
            from models.sources import movielens_100k

            folder = movielens_100k()
            sender = IngestBatchSender(settings.ingest_url, settings.write_key)
            if "catalogue" in phases:
                events = datasets.catalogue_events(folder)
                results.append(
                    replayer.run(
                        "catalogue",
                        f"{plans['catalogue']} ({len(events)})",
                        events,
                        sender.send,
                        timestamped=True,
                    )
                )
            if "ratings" in phases:
                events = datasets.rating_events(folder, selection.users)
                last = max((datasets.rated_at(e) for e in events), default=0.0)
                results.append(
                    replayer.run(
                        "ratings",
                        f"{plans['ratings']} ({len(events)})",
                        events,
                        sender.send,
                        timestamped=True,
                        stamper=original_spacing(last, datasets.rated_at),
                    )
                )
        if "kb" in phases:  # the support assistant's demo knowledge base
            from lumen_cli.seed.knowledge_base import seed_phase

            results.append(seed_phase())
        if "support" in phases:
            from models.paths import datasets_dir

            messages = datasets.support_messages(
                datasets_dir() / "banking77" / "train.csv", selection.support
            )
            producer = SupportProducer()
            results.append(
                replayer.run(
                    "support",
                    f"{plans['support']} ({len(messages)})",
                    messages,
                    producer.send,
                    timestamped=False,
                )
            )
    except SeedError as exc:
        print(
            f"lumen seed: {exc}\nProgress is saved; run `lumen seed` again to resume.",
            file=sys.stderr,
        )
        return EXIT_UNREACHABLE if exc.unreachable else EXIT_FAILED
    except KeyboardInterrupt:
        print("\nlumen seed: interrupted; run `lumen seed` again to resume.", file=sys.stderr)
        return 130
    finally:
        if sender is not None:
            sender.close()
        if producer is not None:
            producer.close()
    _summary(args, results, settings)
    return EXIT_OK


def _summary(args: argparse.Namespace, results: list[Any], settings: CliSettings) -> None:
    if args.json:
        print_json(
            {"ingest": settings.ingest_url, "phases": [dataclasses.asdict(r) for r in results]}
        )
        return
    print(f"Seeded through {settings.ingest_url} (write key source of {settings.write_key[:4]}…):")
    print(
        f"  {'part':<10}{'total':>8}{'earlier':>9}{'sent':>8}{'accepted':>10}{'dupes':>7}"
        f"{'rejected':>10}{'seconds':>9}{'ev/s':>8}"
    )
    for r in results:
        rate = r.sent / r.seconds if r.seconds else 0.0
        print(
            f"  {r.phase:<10}{r.total:>8}{r.skipped:>9}{r.sent:>8}{r.accepted:>10}"
            f"{r.duplicates:>7}{r.rejected:>10}{r.seconds:>9.1f}{rate:>8.0f}"
        )
        for rejection in r.rejections:
            print(f"    rejected {rejection.get('messageId')}: {rejection.get('message')}")
    if all(r.sent == 0 for r in results):
        print("Everything was already seeded (use --restart to send it again, --all for more).")
    print(try_next(settings))


def try_next(settings: CliSettings) -> str:
    """What a newcomer can do right after seeding (profiles catch up within seconds)."""
    return f"""
Try next:
  .venv/bin/lumen recommend 1                       # MovieLens user 1
  .venv/bin/lumen classify "I still have not received my new card"
  .venv/bin/lumen search "space adventure with robots"
  .venv/bin/lumen trending
  .venv/bin/lumen profile 1
  .venv/bin/lumen tail support.intents              # classified support messages (Ctrl-C stops)
  curl -u {settings.write_key}: {settings.ingest_url}/v1/track -H 'content-type: application/json' \\
    -d '{{"userId": "alice", "event": "Item Viewed", "properties": {{"itemId": "50"}}}}'
  grpcurl -plaintext -d '{{"user_id": "1", "k": 5}}' {settings.inference_target} \\
    lumen.v1.RecommendationService/Recommend"""
