"""ISO-8601 date-times as Lumen reads and writes them in events and messages.

Written: UTC with a ``Z`` and milliseconds (``2024-05-01T12:00:00.000Z``), the form of
``receivedAt``, ``timestamp`` and ``sentAt`` on ``events.raw``. Read: any ISO-8601 date-time
Python parses, ``Z`` or an offset; one without an offset is taken as UTC (Segment's rule).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

TimeSpec = Literal["auto", "seconds", "milliseconds", "microseconds"]


class TimestampOutOfRange(ValueError):
    """A well-formed date-time that lies outside datetime's range once in UTC."""


def parse_iso(text: str) -> datetime:
    """The date-time in ``text`` as an aware datetime in UTC.

    Raises ``ValueError`` when ``text`` is not an ISO-8601 date-time, and its subclass
    ``TimestampOutOfRange`` for one such as ``9999-12-31T23:00-06:00`` that lies past year 9999
    in UTC.
    """
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise TimestampOutOfRange(f"{text[:40]!r} is out of range in UTC") from None


def format_iso(moment: datetime, timespec: TimeSpec = "milliseconds") -> str:
    """``moment`` in UTC with a ``Z`` (a naive one is taken as UTC).

    Raises ``OverflowError`` when the moment lies outside datetime's range in UTC.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def now_iso(timespec: TimeSpec = "milliseconds") -> str:
    """The current time, formatted by ``format_iso``."""
    return format_iso(datetime.now(UTC), timespec)
