"""``lumen tail <topic>``: pretty-print the records of a Kafka topic as they arrive.

Reads without a consumer group (it commits nothing and moves no one's offsets).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from lumen_cli.output import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
from shared.topics import ALL_TOPICS


def add_parsers(sub: Any) -> None:
    names = [t.name for t in ALL_TOPICS]
    tail = sub.add_parser(
        "tail",
        help="pretty-print a topic's records as they arrive",
        description=f"Topics: {', '.join(names)}.",
    )
    tail.add_argument("topic", help="topic name, e.g. events.raw or support.intents")
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest record")
    tail.add_argument(
        "--last",
        type=int,
        default=0,
        metavar="N",
        help="start N records before the end of each partition",
    )
    tail.add_argument("--max", type=int, default=0, metavar="N", help="stop after N records")
    tail.add_argument(
        "--idle-timeout",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="stop after this long without a record (default: follow forever)",
    )
    tail.add_argument("--json", action="store_true", help="one JSON object per line")
    tail.set_defaults(func=cmd_tail)


def decode(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def record_dict(record: Any) -> dict[str, Any]:
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": datetime.fromtimestamp(record.timestamp / 1000, UTC).isoformat(),
        "key": record.key.decode("utf-8", errors="replace") if record.key else None,
        "value": decode(record.value),
    }


def pretty(row: dict[str, Any]) -> str:
    head = f"── {row['topic']}[{row['partition']}]@{row['offset']}  key={row['key']}  {row['timestamp']}"
    value = row["value"]
    body = json.dumps(value, indent=2, ensure_ascii=False) if not isinstance(value, str) else value
    return head + "\n" + "\n".join("   " + line for line in body.splitlines())


def cmd_tail(args: argparse.Namespace) -> int:
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    from shared.kafka_config import kafka_python_config
    from shared.settings import KafkaSettings

    settings = KafkaSettings()
    try:
        consumer = KafkaConsumer(
            client_id="lumen-tail",
            enable_auto_commit=False,
            request_timeout_ms=10_000,
            **kafka_python_config(settings),
        )
    except (KafkaError, OSError) as exc:
        print(
            f"lumen tail: Kafka at {settings.bootstrap_servers} is not reachable ({exc}); "
            "is the platform up? `lumen status`",
            file=sys.stderr,
        )
        return EXIT_UNREACHABLE
    try:
        partitions = consumer.partitions_for_topic(args.topic)
        if not partitions:
            known = ", ".join(t.name for t in ALL_TOPICS)
            print(f"lumen tail: no topic {args.topic!r} (Lumen's topics: {known})", file=sys.stderr)
            return EXIT_USAGE
        assigned = [TopicPartition(args.topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        if args.from_beginning:
            consumer.seek_to_beginning()
        else:
            ends = consumer.end_offsets(assigned)
            starts = consumer.beginning_offsets(assigned)
            for tp in assigned:
                consumer.seek(tp, max(starts[tp], ends[tp] - max(args.last, 0)))
        return _follow(consumer, args)
    except KafkaError as exc:
        print(f"lumen tail: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        consumer.close()


def _follow(consumer: Any, args: argparse.Namespace) -> int:
    shown = 0
    last_record = time.monotonic()
    while True:
        polled = consumer.poll(timeout_ms=500)
        records = sorted(
            (r for batch in polled.values() for r in batch),
            key=lambda r: (r.timestamp, r.partition, r.offset),
        )
        for record in records:
            row = record_dict(record)
            print(json.dumps(row, ensure_ascii=False) if args.json else pretty(row), flush=True)
            shown += 1
            if args.max and shown >= args.max:
                return EXIT_OK
        if records:
            last_record = time.monotonic()
        elif args.idle_timeout and time.monotonic() - last_record >= args.idle_timeout:
            return EXIT_OK
