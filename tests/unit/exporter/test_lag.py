"""Time-lag interpolation and Burrow-style status rules of services.exporter.lag."""

from __future__ import annotations

import pytest

from services.exporter.lag import (
    LagStatus,
    LagTracker,
    Sample,
    estimate_time_lag,
    partition_status,
    produce_rate,
)

TABLE = [(100.0, 0), (110.0, 100), (120.0, 300)]


def test_produce_rate_is_offsets_over_time() -> None:
    assert produce_rate(TABLE) == pytest.approx(15.0)
    assert produce_rate(TABLE[:1]) == 0.0


def test_caught_up_consumer_has_no_time_lag() -> None:
    assert estimate_time_lag(TABLE, 300, now=125.0) == 0.0


def test_time_lag_is_interpolated_inside_the_table() -> None:
    # Offset 200 was reached half-way between t=110 (100) and t=120 (300).
    assert estimate_time_lag(TABLE, 200, now=125.0) == pytest.approx(10.0)
    assert estimate_time_lag(TABLE, 100, now=125.0) == pytest.approx(15.0)


def test_time_lag_before_the_table_is_extrapolated_with_its_rate() -> None:
    table = [(100.0, 1000), (110.0, 1100)]  # 10 msg/s
    assert estimate_time_lag(table, 900, now=110.0) == pytest.approx(20.0)


def test_time_lag_without_any_rate_is_at_least_the_table_age() -> None:
    table = [(100.0, 50), (110.0, 50)]
    assert estimate_time_lag(table, 10, now=130.0) == pytest.approx(30.0)


def window(*points: tuple[int, int]) -> list[Sample]:
    return [Sample(float(i), end, committed) for i, (end, committed) in enumerate(points)]


def test_any_zero_lag_in_the_window_is_ok() -> None:
    assert partition_status(window((10, 5), (20, 20), (30, 25)), True) is LagStatus.OK


def test_lag_without_members_is_stopped() -> None:
    assert partition_status(window((10, 5), (10, 5)), has_members=False) is LagStatus.STOPPED


def test_offsets_not_moving_with_lag_is_stalled() -> None:
    assert partition_status(window((10, 5), (12, 5), (15, 5)), True) is LagStatus.STALLED


def test_committing_but_lag_growing_at_every_step_is_warning() -> None:
    assert partition_status(window((10, 5), (20, 8), (40, 12)), True) is LagStatus.WARNING


def test_committing_with_lag_that_shrinks_once_is_ok() -> None:
    assert partition_status(window((10, 5), (20, 8), (22, 20), (40, 30)), True) is LagStatus.OK


def test_too_few_polls_is_not_judged() -> None:
    assert partition_status(window((10, 5), (12, 5)), True) is LagStatus.OK


def test_tracker_keeps_a_window_and_reports_the_worst_partition() -> None:
    tracker = LagTracker(window=3)
    tp_a, tp_b = ("events.raw", 0), ("events.raw", 1)
    snap = None
    for i in range(5):
        end = {tp_a: 100 + 10 * i, tp_b: 50}
        committed = {"g": {tp_a: 100 + 10 * i, tp_b: 40}}  # tp_b never moves
        snap = tracker.observe(float(i), end, committed, {"g": 1})
    assert snap is not None
    assert snap.group_status == {"g": LagStatus.STALLED}
    rows = {(r.topic, r.partition): r for r in snap.partitions}
    assert rows[tp_a].lag_messages == 0 and rows[tp_b].lag_messages == 10
    assert snap.produce_rates[tp_a] == pytest.approx(10.0)
    assert len(tracker._samples[("g", "events.raw", 1)]) == 3


def test_tracker_forgets_groups_that_disappear() -> None:
    tracker = LagTracker(window=3)
    tracker.observe(0.0, {("t", 0): 5}, {"g": {("t", 0): 1}}, {"g": 1})
    snap = tracker.observe(1.0, {("t", 0): 5}, {}, {})
    assert snap.partitions == [] and snap.group_status == {}
    assert tracker._samples == {}


def test_partitions_of_unwatched_topics_or_without_commit_are_skipped() -> None:
    tracker = LagTracker(window=3)
    snap = tracker.observe(0.0, {("t", 0): 5}, {"g": {("other", 0): 1, ("t", 0): -1}}, {"g": 1})
    assert snap.partitions == []
