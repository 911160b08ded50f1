"""ISO-8601 date-times as events and messages carry them (shared/timestamps.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.timestamps import TimestampOutOfRange, format_iso, now_iso, parse_iso

MOMENT = datetime(2025, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2025-01-02T03:04:05.678901Z",
        "2025-01-02T03:04:05.678901+00:00",
        "2025-01-02T05:04:05.678901+02:00",
        "2025-01-01T21:34:05.678901-05:30",
        "2025-01-02T03:04:05.678901",  # no offset: UTC
    ],
)
def test_parse_gives_the_moment_in_utc(text: str) -> None:
    parsed = parse_iso(text)
    assert parsed == MOMENT
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ["yesterday", "", "2025-13-01T00:00:00Z", "2025-01-02T25:00Z"])
def test_parse_refuses_what_is_not_a_date_time(text: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_iso(text)
    assert not isinstance(refused.value, TimestampOutOfRange)


@pytest.mark.parametrize("text", ["9999-12-31T23:00:00-06:00", "0001-01-01T00:00:00+01:00"])
def test_parse_tells_a_moment_out_of_range_in_utc(text: str) -> None:
    with pytest.raises(TimestampOutOfRange):
        parse_iso(text)


def test_format_writes_utc_with_z_and_milliseconds() -> None:
    assert format_iso(MOMENT) == "2025-01-02T03:04:05.678Z"
    east = MOMENT.astimezone(timezone(timedelta(hours=9)))
    assert format_iso(east) == "2025-01-02T03:04:05.678Z"
    assert format_iso(MOMENT.replace(tzinfo=None)) == "2025-01-02T03:04:05.678Z"  # naive: UTC
    assert format_iso(MOMENT, "auto") == "2025-01-02T03:04:05.678901Z"
    assert format_iso(MOMENT, "seconds") == "2025-01-02T03:04:05Z"


def test_format_and_parse_round_trip_at_millisecond_precision() -> None:
    assert parse_iso(format_iso(MOMENT)) == MOMENT.replace(microsecond=678_000)


def test_now_is_the_current_time_formatted() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    stamped = now_iso()
    after = datetime.now(UTC)
    assert stamped.endswith("Z") and len(stamped) == len("2025-01-02T03:04:05.678Z")
    assert before <= parse_iso(stamped) <= after
