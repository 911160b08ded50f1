"""The messageId store and the token bucket, on a fake clock."""

from __future__ import annotations

import pytest

from services.ingest.dedupe import DedupeStore
from services.ingest.ratelimit import Limit, RateLimiter, parse_overrides
from tests.support.fake_clock import FakeClock


def test_remembered_ids_are_duplicates_until_the_window_ends() -> None:
    clock = FakeClock(1000.0)
    store = DedupeStore(window_seconds=60, max_entries=100, clock=clock)
    assert not store.seen("web", "m1")
    store.remember("web", ["m1"])
    assert store.seen("web", "m1")
    assert not store.seen("app", "m1"), "the window is per source"
    clock.now += 61
    assert not store.seen("web", "m1")
    store.remember("web", ["m2"])
    assert len(store) == 1, "expired entries are evicted"


def test_store_is_bounded_and_forgets_the_oldest_first() -> None:
    store = DedupeStore(window_seconds=60, max_entries=3, clock=FakeClock(1000.0))
    store.remember("s", ["a", "b", "c", "d"])
    assert len(store) == 3
    assert not store.seen("s", "a")
    assert store.seen("s", "d")


def test_zero_window_disables_dedupe() -> None:
    store = DedupeStore(window_seconds=0, max_entries=3)
    store.remember("s", ["a"])
    assert not store.enabled and not store.seen("s", "a")


def test_token_bucket_refuses_then_refills() -> None:
    clock = FakeClock(1000.0)
    limiter = RateLimiter(Limit(rate=10, burst=20), clock=clock)
    assert limiter.check("s", 15) == 0
    assert limiter.check("s", 10) == 1  # 5 left, 5 missing at 10/s -> 0.5 s, rounded up
    assert limiter.check("other", 20) == 0, "buckets are per source"
    clock.now += 0.5
    assert limiter.check("s", 10) == 0


def test_request_larger_than_the_bucket_pays_for_every_event() -> None:
    """It passes with a full bucket, then the bucket is in debt for all its events: one
    100-event request costs as much as 100 single events (not one burst)."""
    clock = FakeClock(1000.0)
    limiter = RateLimiter(Limit(rate=1, burst=5), clock=clock)
    assert limiter.check("s", 100) == 0
    assert limiter.check("s", 1) == 96  # 95 tokens of debt, then one for this event
    clock.now += 99
    assert limiter.check("s", 1) == 0


def test_overrides_and_unlimited() -> None:
    limiter = RateLimiter(Limit(rate=0, burst=1), parse_overrides("tiny=1/1, big=100/200"))
    assert limiter.check("anyone", 10_000) == 0
    assert limiter.check("tiny", 1) == 0
    assert limiter.check("tiny", 1) >= 1
    with pytest.raises(ValueError, match="sourceId"):
        parse_overrides("broken")
