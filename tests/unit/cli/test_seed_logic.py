"""Seed building blocks: data set conversion, rate control, checkpoint, timestamps."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lumen_cli.seed import datasets
from lumen_cli.seed.replay import (
    Ack,
    Checkpoint,
    Replayer,
    SeedError,
    TokenBucket,
    original_spacing,
    stamp,
)
from shared.timestamps import parse_iso
from tests.support.fake_clock import FakeClock

ITEMS = (
    "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    "1\tToy Story\t1995\tAnimation Children's Comedy\n"
    "2\tGoldenEye\t1995\tAction Adventure Thriller\n"
)
INTER = (
    "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    "2\t1\t4\t300\n"
    "1\t2\t3\t200\n"
    "1\t1\t5\t100\n"
    "3\t2\t1\t50\n"
)


@pytest.fixture
def ml(tmp_path: Path) -> Path:
    (tmp_path / "ml-100k.item").write_text(ITEMS)
    (tmp_path / "ml-100k.inter").write_text(INTER)
    return tmp_path


def test_catalogue_follows_the_profile_updaters_item_upserted_shape(ml: Path) -> None:
    from services.profiles.parsing import parse_event

    events = datasets.catalogue_events(ml)
    assert [e["messageId"] for e in events] == ["ml100k-item-1", "ml100k-item-2"]
    parsed = parse_event({**events[0], "timestamp": "2024-05-01T10:00:00Z"})
    assert parsed.catalogue is not None
    assert parsed.catalogue.item_id == "1"
    assert parsed.catalogue.title == "Toy Story (1995)"
    assert parsed.catalogue.categories == ("Animation", "Children's", "Comedy")


def test_ratings_are_chronological_stable_and_parse_as_ratings(ml: Path) -> None:
    from services.profiles.parsing import RATING, parse_event

    events = datasets.rating_events(ml, users=2)
    assert [(e["userId"], e["properties"]["itemId"]) for e in events] == [
        ("1", "1"),
        ("1", "2"),
        ("2", "1"),
    ]
    assert events[0]["messageId"] == "ml100k-rating-1-1"
    assert datasets.rating_events(ml, users=2) == events  # same ids every run
    parsed = parse_event({**events[0], "timestamp": "2024-05-01T10:00:00Z"})
    assert parsed.interaction is not None
    assert (parsed.interaction.kind, parsed.interaction.rating) == (RATING, 5.0)
    assert parsed.interaction.categories == ("Animation", "Children's", "Comedy")
    assert len(datasets.rating_events(ml, users=None)) == 4


def test_support_messages_spread_over_the_file_and_match_the_router(tmp_path: Path) -> None:
    from services.inference.support import parse_message

    csv_path = tmp_path / "train.csv"
    rows = [f"text {n},intent_{n // 10}" for n in range(100)]
    csv_path.write_text("text,category\n" + "\n".join(rows) + "\n")
    messages = datasets.support_messages(csv_path, limit=10)
    assert len(messages) == 10
    assert {m["dataset"]["intent"] for m in messages} == {f"intent_{i}" for i in range(10)}
    message, error = parse_message(json.dumps(messages[0]).encode(), max_chars=2000)
    assert error is None and message.conversation_id == "banking77-0"
    assert len(datasets.support_messages(csv_path, limit=None)) == 100


def test_token_bucket_holds_the_average_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=100, burst=100, clock=clock, sleep=clock.sleep)
    for _ in range(20):
        bucket.take(50)  # 1000 events
    # 100 of them ride the initial burst; the other 900 need 9 s at 100/s.
    assert clock.now == pytest.approx(9.0, rel=0.01)


def test_checkpoint_resumes_only_the_same_plan(tmp_path: Path) -> None:
    path = tmp_path / "seed" / "checkpoint.json"
    checkpoint = Checkpoint.load(path)
    checkpoint.advance("ratings", "users 1..3 (40)", 20, 40)
    again = Checkpoint.load(path)
    assert again.done("ratings", "users 1..3 (40)") == 20
    assert again.done("ratings", "users 1..9 (90)") == 0
    assert again.done("catalogue", "x") == 0


class Bar:
    def __init__(self) -> None:
        self.count = 0

    def update(self, n: int) -> None:
        self.count += n

    def close(self) -> None:
        pass


def test_replayer_resumes_after_a_failure_without_resending(tmp_path: Path) -> None:
    records = [{"messageId": f"m{i}"} for i in range(10)]
    received: list[str] = []
    calls = {"n": 0}

    def flaky(batch: Sequence[dict[str, Any]]) -> Ack:
        calls["n"] += 1
        if calls["n"] == 3:
            raise SeedError("ingest went away", unreachable=True)
        received.extend(e["messageId"] for e in batch)
        return Ack(len(batch), 0, [])

    path = tmp_path / "checkpoint.json"

    def replayer() -> Replayer:
        return Replayer(Checkpoint.load(path), TokenBucket(0, 1), 3, lambda *a: Bar())

    with pytest.raises(SeedError):
        replayer().run("ratings", "plan", records, flaky, timestamped=True)
    assert received == [f"m{i}" for i in range(6)]
    result = replayer().run("ratings", "plan", records, flaky, timestamped=True)
    assert received == [f"m{i}" for i in range(10)]  # each exactly once
    assert (result.skipped, result.sent, result.accepted) == (6, 4, 4)
    done = replayer().run("ratings", "plan", records, flaky, timestamped=True)
    assert done.sent == 0


def test_stamps_are_increasing_and_end_now() -> None:
    now = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
    stamped = stamp([{"a": 1}, {"a": 2}, {"a": 3}], now)
    assert [e["timestamp"] for e in stamped] == [
        "2024-05-01T09:59:59.998Z",
        "2024-05-01T09:59:59.999Z",
        "2024-05-01T10:00:00.000Z",
    ]


def test_ratings_keep_their_original_gaps_and_the_newest_lands_when_sent(ml: Path) -> None:
    events = datasets.rating_events(ml, None)  # original times 50, 100, 200, 300
    shifted = original_spacing(max(datasets.rated_at(e) for e in events), datasets.rated_at)
    now = datetime(2026, 12, 3, 15, 0, 0, tzinfo=UTC)
    stamped = shifted(events[:2], now - timedelta(seconds=1)) + shifted(events[2:], now)
    times = [parse_iso(e["timestamp"]) for e in stamped]
    assert times == [
        now - timedelta(seconds=251),
        now - timedelta(seconds=201),
        now - timedelta(seconds=100),
        now,
    ]
    # A batch sent later shifts later: order holds across batches, none lies in the future.
    later = shifted(events[-1:], now + timedelta(seconds=5))
    assert parse_iso(later[0]["timestamp"]) == now + timedelta(seconds=5)
