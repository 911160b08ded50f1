"""The fuzz suites' own generators send what they mean to send, and CI draws the same examples
on every run (no services needed here)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given, settings

from tests.fuzz.strategies import INT64_MAX, INT64_MIN, JSON_VALUES, WRONG_TYPED_VALUES


def _numbers(value: Any) -> Iterator[int | float]:
    if isinstance(value, dict):
        for inner in value.values():
            yield from _numbers(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _numbers(inner)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield value


@settings(settings.get_profile("lumen-fuzz"), max_examples=500)
@given(value=JSON_VALUES | WRONG_TYPED_VALUES)
def test_generated_values_survive_a_json_round_trip_within_64_bits(value: Any) -> None:
    # orjson raises on integers past 64 bits and writes infinity as null: either would make a
    # suite test its own encoder instead of the service.
    assert orjson.loads(orjson.dumps(value)) == value
    for number in _numbers(value):
        assert not isinstance(number, int) or INT64_MIN <= number <= INT64_MAX


@pytest.mark.skipif("LUMEN_FUZZ_PROFILE" in os.environ, reason="a profile was chosen by hand")
def test_ci_draws_the_same_examples_on_every_run() -> None:
    assert settings.get_profile("lumen-fuzz").derandomize is True
    assert settings.get_profile("lumen-fuzz-wide").derandomize is False
