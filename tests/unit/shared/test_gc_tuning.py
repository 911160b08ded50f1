"""Serving processes freeze their start-up objects and collect the young generation less often."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from shared.gc_tuning import tune_for_serving


@pytest.fixture(autouse=True)
def restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_start_up_objects_are_frozen_and_the_young_threshold_raised() -> None:
    _, gen1, gen2 = gc.get_threshold()
    loaded_at_start: list[object] = []  # a container: tracked by the collector
    tune_for_serving(10_000)
    assert gc.get_threshold() == (10_000, gen1, gen2)
    assert gc.get_freeze_count() > 0
    assert not any(o is loaded_at_start for o in gc.get_objects())  # frozen out of collections


def test_zero_leaves_the_collector_as_it_was() -> None:
    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    tune_for_serving(0)
    assert gc.get_threshold() == before and gc.get_freeze_count() == frozen
