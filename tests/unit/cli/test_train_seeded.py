"""Waiting for the seeded ratings to reach the interaction store (before training from events)."""

from __future__ import annotations

from pathlib import Path

from lumen_cli.seed.replay import Checkpoint
from lumen_cli.seed.train_seeded import seeded_ratings, wait_stored
from tests.support.fake_clock import FakeClock


def test_expected_ratings_come_from_the_checkpoint(tmp_path: Path) -> None:
    checkpoint = Checkpoint(tmp_path / "checkpoint.json")
    assert seeded_ratings(checkpoint) == 0
    checkpoint.advance("catalogue", "ml-100k items", 1682, 1682)
    checkpoint.advance("ratings", "plan", 250, 19747)  # interrupted after one batch
    assert seeded_ratings(Checkpoint.load(checkpoint.path)) == 250


def test_waits_until_every_rating_is_stored() -> None:
    clock = FakeClock()
    counts = iter([0, 120, 250, 999])
    stored = wait_stored(250, lambda: next(counts), timeout=60, clock=clock, sleep=clock.sleep)
    assert stored == 250 and clock() == 2.0


def test_gives_up_after_the_timeout_with_the_last_count() -> None:
    clock = FakeClock()
    stored = wait_stored(250, lambda: 10, timeout=5, interval=1.0, clock=clock, sleep=clock.sleep)
    assert stored == 10 and clock() == 5.0
