"""Generators of what the fuzz suites mean to send: JSON that every encoder on the way can write
and every reader can hold, so that a failure is the service's, never the test's own encoder's.

Integers stay within signed 64 bits (orjson refuses to write beyond its 64-bit range, and BSON,
where accepted events end up, holds nothing wider); floats are finite (JSON has no NaN or
infinity: orjson would silently write ``null``)."""

from __future__ import annotations

from hypothesis import strategies as st

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

JSON_INTEGERS = st.integers(min_value=INT64_MIN, max_value=INT64_MAX)
JSON_FLOATS = st.floats(allow_nan=False, allow_infinity=False)
JSON_SCALARS = st.none() | st.booleans() | JSON_INTEGERS | JSON_FLOATS | st.text(max_size=20)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=25,
)

# A value of the wrong type for a named field of an event.
WRONG_TYPED_VALUES = st.one_of(
    JSON_INTEGERS,
    st.booleans(),
    st.lists(st.text(max_size=3), max_size=3),
    st.dictionaries(st.text(max_size=5), JSON_INTEGERS, max_size=3),
    st.text(max_size=30),
    st.none(),
)
