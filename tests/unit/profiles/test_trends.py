"""Tumbling windows, retention and the erasure reversal of trend contributions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.profiles.parsing import PURCHASE, VIEW, Interaction
from services.profiles.trends import Retention, TrendDeltas, reversal
from shared.trends import trend_id

NOW = datetime(2024, 3, 1, 12, 30, 15, tzinfo=UTC)
MINUTE = int(datetime(2024, 3, 1, 12, 30, tzinfo=UTC).timestamp())
HOUR = int(datetime(2024, 3, 1, 12, 0, tzinfo=UTC).timestamp())


def test_views_and_purchases_per_item_and_category_per_window() -> None:
    deltas = TrendDeltas(Retention())
    deltas.add("u1", NOW, Interaction("i1", VIEW, None), ("Drama",), NOW)
    deltas.add("u2", NOW, Interaction("i1", PURCHASE, None, 5.0), ("Drama",), NOW)
    deltas.add("u2", NOW - timedelta(minutes=1), Interaction("i2", VIEW, None), (), NOW)
    totals = deltas.window_totals(NOW)
    assert totals[("1m", "item", MINUTE, "i1")] == [1, 1]
    assert totals[("1h", "item", HOUR, "i1")] == [1, 1]
    assert totals[("1h", "category", HOUR, "Drama")] == [1, 1]
    assert totals[("1m", "item", MINUTE - 60, "i2")] == [1, 0]
    assert totals[("1h", "item", HOUR, "i2")] == [1, 0]


def test_events_older_than_the_retention_are_not_counted() -> None:
    deltas = TrendDeltas(Retention(minute_seconds=600, hour_seconds=7200))
    deltas.add("u1", NOW - timedelta(hours=4), Interaction("old", VIEW, None), (), NOW)
    deltas.add("u1", NOW - timedelta(minutes=30), Interaction("mid", VIEW, None), (), NOW)
    totals = deltas.window_totals(NOW)
    assert not any(key == "old" for (_, _, _, key) in totals)
    # 30 minutes ago: its minute window is past 10 minutes of retention, its hour is not.
    assert [w for (w, _, _, key) in totals if key == "mid"] == ["1h"]


def test_contributions_reverse_to_the_same_trend_documents() -> None:
    deltas = TrendDeltas(Retention())
    deltas.add("u1", NOW, Interaction("a.b$c", VIEW, None), ("Sci-Fi",), NOW)
    deltas.add("u1", NOW, Interaction("a.b$c", VIEW, None), ("Sci-Fi",), NOW)
    (((user, hour), cells),) = deltas.contributions().items()
    assert (user, hour) == ("u1", HOUR)
    stored = {name: {"v": v, "p": p} for name, (v, p) in cells.items()}
    undo = reversal(stored, NOW, Retention())
    assert undo[trend_id("1m", "item", MINUTE, "a.b$c")] == [2, 0]
    assert undo[trend_id("1h", "category", HOUR, "Sci-Fi")] == [2, 0]
    assert len(undo) == 4


def test_one_users_interactions_count_in_trending_up_to_the_hourly_budget() -> None:
    deltas = TrendDeltas(Retention(), per_hour=3)
    deltas.stored[("u1", HOUR)] = 1  # counted by an earlier batch
    view = Interaction("hot", VIEW, None)
    counted = [deltas.add("u1", NOW, view, (), NOW) for _ in range(4)]
    assert counted == [True, True, False, False]
    assert deltas.add("u2", NOW, view, (), NOW)  # another user has a budget of their own
    assert deltas.add("u1", NOW + timedelta(hours=1), view, (), NOW + timedelta(hours=1))
    assert deltas.window_totals(NOW)[("1h", "item", HOUR, "hot")] == [3, 0]
    assert deltas.events[("u1", HOUR)] == 2
    deltas.move("u1", "u2")  # a merge carries the counts with the cells
    assert deltas.events[("u2", HOUR)] == 3 and ("u1", HOUR) not in deltas.events
