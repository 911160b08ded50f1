"""The profile-store breaker: one slow read degrades one answer, a failing store stops being
asked for a while, and one good read closes it again."""

from __future__ import annotations

import asyncio
from typing import Any

from services.inference.breaker import CircuitBreaker
from services.inference.store import ProfileStore
from shared.packed_ids import pack_sequence
from tests.support.fake_clock import FakeClock


def test_it_opens_after_failures_in_a_row_and_retries_after_the_cool_down() -> None:
    clock = FakeClock(100.0)
    breaker = CircuitBreaker(threshold=3, cool_down=2.0, clock=clock)
    breaker.failed()
    breaker.failed()
    assert not breaker.is_open  # two failures: still asking
    breaker.succeeded()
    breaker.failed()
    breaker.failed()
    assert not breaker.is_open  # the success reset the count
    breaker.failed()
    assert breaker.is_open
    clock.now += 1.9
    assert breaker.is_open
    clock.now += 0.2
    assert not breaker.is_open  # cool-down over: reads go through again
    breaker.failed()
    assert breaker.is_open  # still failing: open again at once
    clock.now += 2.1
    breaker.succeeded()
    breaker.failed()
    assert not breaker.is_open  # closed by the success; one failure is not enough


class FlakyProfiles:
    """A profiles collection whose reads fail while ``failing`` is set and return a
    profile with undecodable item lists while ``garbled`` is set."""

    def __init__(self) -> None:
        self.failing = False
        self.garbled = False
        self.reads = 0

    async def find_one(self, query: dict[str, Any], fields: dict[str, int]) -> dict[str, Any]:
        self.reads += 1
        if self.failing:
            raise TimeoutError("profile read timed out")
        if self.garbled:
            return {"_id": query["_id"], "recentItems": b"\x09\x01"}  # no such format
        return {"_id": query["_id"], "recentItems": pack_sequence(["7"])}


class Client:
    def __init__(self, profiles: FlakyProfiles) -> None:
        self.profiles = profiles

    def __getitem__(self, name: str) -> dict[str, FlakyProfiles]:
        return {"profiles": self.profiles}


def test_the_store_degrades_single_answers_until_the_breaker_opens() -> None:
    profiles, clock = FlakyProfiles(), FakeClock(100.0)
    breaker = CircuitBreaker(threshold=3, cool_down=2.0, clock=clock)
    store = ProfileStore(Client(profiles), None, "lumen", 100, breaker)  # type: ignore[arg-type]

    async def read() -> tuple[bool, bool]:
        view, ok = await store.profile("u1", anonymous=False)
        return view is not None, ok

    assert asyncio.run(read()) == (True, True)
    profiles.failing = True
    assert asyncio.run(read()) == (False, False)  # this answer degrades...
    profiles.failing = False
    assert asyncio.run(read()) == (True, True)  # ...the next one is personalised again
    profiles.failing = True
    for _ in range(3):
        asyncio.run(read())
    reads = profiles.reads
    assert asyncio.run(read()) == (False, False)
    assert profiles.reads == reads  # open: no read, no timeout to wait for
    clock.now += 2.5
    profiles.failing = False
    assert asyncio.run(read()) == (True, True)


def test_an_undecodable_profile_degrades_its_answer_without_opening_the_breaker() -> None:
    from services.inference import metrics

    profiles, clock = FlakyProfiles(), FakeClock(100.0)
    breaker = CircuitBreaker(threshold=3, cool_down=2.0, clock=clock)
    store = ProfileStore(Client(profiles), None, "lumen", 100, breaker)  # type: ignore[arg-type]
    before = metrics.PROFILE_UNREADABLE._value.get()
    profiles.garbled = True
    for _ in range(4):
        assert asyncio.run(store.profile("u1", anonymous=False)) == (None, False)
    assert metrics.PROFILE_UNREADABLE._value.get() == before + 4
    assert not breaker.is_open  # the store answered: it is not down
    profiles.garbled = False
    view, ok = asyncio.run(store.profile("u1", anonymous=False))
    assert ok and view is not None and view.recent_items == ["7"]
