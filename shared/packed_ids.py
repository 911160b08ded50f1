"""Lists of item ids packed into one binary value, for the profile's item lists.

A profile holds the items a user bought or rated (``purchasedItems``, a set, about a hundred
ids for a MovieLens user) and the last items they touched (``recentItems``, a sequence). As
BSON arrays every id costs about 12 bytes (type byte, the array index as a key, a length,
the string); packed, a numeric id costs one or two bytes. That took a MovieLens profile from
2,350 to 748 BSON bytes (docs/profiles.md, "Storage").

Layout: one format byte, then the ids.

* ``NUMERIC_SET`` (1): canonical decimal ids (``"0"``, ``"42"``; no sign, no leading zero),
  ascending and unique, each stored as the LEB128 varint of its difference to the previous one.
* ``NUMERIC_SEQUENCE`` (2): canonical decimal ids in their own order, repeats kept, each as
  the varint of its value.
* ``TEXT`` (3): any ids, each as the varint of its UTF-8 length and the bytes; used as soon
  as one id of the list is not canonical decimal. A set in this format is sorted.

Readers accept the older array form as well (``unpack`` of a list returns it as strings), so
documents written before packing need no migration: the next write of a profile packs it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import accumulate
from typing import Any

NUMERIC_SET = 1
NUMERIC_SEQUENCE = 2
TEXT = 3
_MAX_DIGITS = 18  # below 2**63: fits every signed 64-bit reader of the varints


def _canonical_number(item_id: str) -> bool:
    return (
        0 < len(item_id) <= _MAX_DIGITS
        and item_id.isascii()
        and item_id.isdigit()
        and (item_id[0] != "0" or item_id == "0")
    )


def _varint(value: int, out: bytearray) -> None:
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _pack_text(ids: Iterable[str]) -> bytes:
    out = bytearray((TEXT,))
    for item_id in ids:
        raw = item_id.encode()
        _varint(len(raw), out)
        out += raw
    return bytes(out)


def pack_set(ids: Iterable[str]) -> bytes:
    """A set of ids, packed (order does not matter, duplicates collapse)."""
    unique = set(ids)
    if not all(_canonical_number(i) for i in unique):
        return _pack_text(sorted(unique))
    out = bytearray((NUMERIC_SET,))
    previous = 0
    for number in sorted(int(i) for i in unique):
        _varint(number - previous, out)
        previous = number
    return bytes(out)


def pack_sequence(ids: Sequence[str]) -> bytes:
    """A sequence of ids, packed in its order, repeats kept."""
    if not all(_canonical_number(i) for i in ids):
        return _pack_text(ids)
    out = bytearray((NUMERIC_SEQUENCE,))
    for item_id in ids:
        _varint(int(item_id), out)
    return bytes(out)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    """The varint starting at ``at`` and the position after it."""
    value = shift = 0
    while True:
        if at >= len(data):
            raise ValueError("packed ids end inside a number")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def _varints(data: bytes) -> list[int]:
    if not data or max(data) < 0x80:  # every number below 128: one byte each (the usual case)
        return list(data)
    # One loop over the bytes, no call per number: profiles are decoded on every Recommend.
    values: list[int] = []
    value = shift = 0
    for byte in data:
        if byte & 0x80:
            value |= (byte & 0x7F) << shift
            shift += 7
        else:
            values.append(value | (byte << shift))
            value = shift = 0
    if shift:
        raise ValueError("packed ids end inside a number")
    return values


def _unpack_text(data: bytes) -> list[str]:
    ids: list[str] = []
    at = 0
    while at < len(data):
        length, at = _read_varint(data, at)
        if at + length > len(data):
            raise ValueError("packed ids end inside an id")
        ids.append(data[at : at + length].decode())
        at += length
    return ids


def unpack(value: Any) -> list[str]:
    """The ids of a stored value: packed bytes, an array (older documents) or nothing."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(i) for i in value]
    data = bytes(value)
    if not data:
        return []
    kind, body = data[0], data[1:]
    if kind == NUMERIC_SET:
        return list(map(str, accumulate(_varints(body))))
    if kind == NUMERIC_SEQUENCE:
        return list(map(str, _varints(body)))
    if kind == TEXT:
        return _unpack_text(body)
    raise ValueError(f"unknown packed ids format {kind}")
