"""Packed item-id lists: exact round trips, the compact numeric forms, older array values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.packed_ids import NUMERIC_SEQUENCE, NUMERIC_SET, TEXT, pack_sequence, pack_set, unpack

numeric_ids = st.integers(min_value=0, max_value=10**18 - 1).map(str)
any_ids = st.one_of(numeric_ids, st.text(max_size=40))


@given(st.lists(any_ids, max_size=60))
def test_a_sequence_comes_back_in_order_with_repeats(ids: list[str]) -> None:
    assert unpack(pack_sequence(ids)) == ids


@given(st.lists(any_ids, max_size=60))
def test_a_set_comes_back_as_the_same_set_without_repeats(ids: list[str]) -> None:
    back = unpack(pack_set(ids))
    assert sorted(back) == sorted(set(ids))
    assert len(back) == len(set(ids))


@given(st.lists(numeric_ids, max_size=60))
def test_a_numeric_set_is_ascending_and_the_same_for_any_insertion_order(ids: list[str]) -> None:
    packed = pack_set(ids)
    assert packed == pack_set(reversed(ids))
    assert unpack(packed) == [str(n) for n in sorted({int(i) for i in ids})]


def test_numeric_ids_take_one_or_two_bytes() -> None:
    movielens_like = [str(n) for n in range(1, 1683, 16)]  # 106 ids, like a MovieLens user
    packed = pack_set(movielens_like)
    assert packed[0] == NUMERIC_SET
    assert len(packed) == 1 + len(movielens_like)  # every difference is 16: one byte each
    recent = pack_sequence(["1682", "7", "300"])
    assert recent[0] == NUMERIC_SEQUENCE and len(recent) == 1 + 2 + 1 + 2


@pytest.mark.parametrize(
    "odd", ["007", "-1", "1.0", "\uff11\uff12", "", "10000000000000000000", "sku-1"]
)
def test_ids_that_are_not_canonical_numbers_keep_their_exact_text(odd: str) -> None:
    ids = ["12", odd, "3"]
    assert pack_sequence(ids)[0] == TEXT
    assert unpack(pack_sequence(ids)) == ids
    assert sorted(unpack(pack_set(ids))) == sorted(set(ids))


def test_older_array_values_and_missing_values_are_read_too() -> None:
    assert unpack(["4", 5]) == ["4", "5"]
    assert unpack(None) == [] and unpack(b"") == []


@pytest.mark.parametrize("broken", [b"\x09\x01", b"\x01\x81", b"\x03\x05ab", b"\x03\x80"])
def test_a_damaged_value_is_an_error_not_a_wrong_list(broken: bytes) -> None:
    with pytest.raises(ValueError):
        unpack(broken)
