"""Segment-spec validation and enrichment rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.ingest.validation import SCHEMA, Rejection, enrich, validate

RECEIVED = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


def reason_of(raw: object, call_type: str | None = "track") -> tuple[str, str]:
    with pytest.raises(Rejection) as caught:
        validate(raw, call_type)
    return caught.value.reason, caught.value.field


@pytest.mark.parametrize(
    ("raw", "call_type", "field"),
    [
        ({"event": "x"}, "track", "userId"),
        ({"userId": "u"}, "track", "event"),
        ({"userId": "u"}, "alias", "previousId"),
        ({"userId": "u"}, "group", "groupId"),
        ({"userId": ["u"], "event": "x"}, "track", "userId"),
        ({"userId": "u", "event": "x", "properties": [1]}, "track", "properties"),
        ({"userId": "u", "traits": "t"}, "identify", "traits"),
        ({"userId": "u", "context": 3}, "page", "context"),
        ({"userId": "u", "integrations": True}, "page", "integrations"),
        ({"userId": "u", "context": {"traits": ["pro"]}}, "identify", "context.traits"),
        ({"userId": "u", "event": "x", "timestamp": "yesterday"}, "track", "timestamp"),
        ({"userId": "u", "event": "x", "timestamp": 5}, "track", "timestamp"),
        ({"userId": "u", "event": "x", "type": "page"}, "track", "type"),
        ({"userId": "u", "type": "nope"}, None, "type"),
        ({"userId": "u"}, None, "type"),
        ({"userId": "u" * 300, "event": "x"}, "track", "userId"),
        ("a string", "track", "event"),
    ],
)
def test_invalid_events_name_the_field(raw: object, call_type: str | None, field: str) -> None:
    assert reason_of(raw, call_type) == (SCHEMA, field)


def test_valid_event_is_copied_and_typed() -> None:
    raw = {"anonymousId": "a", "event": "Viewed", "properties": {"x": 1}}
    event = validate(raw, "track")
    assert event == {**raw, "type": "track"}
    assert "type" not in raw


def test_numeric_ids_become_strings() -> None:
    assert validate({"userId": 42, "type": "identify"}, None)["userId"] == "42"


def test_describe_names_the_field_once() -> None:
    assert Rejection(SCHEMA, "userId", "must be a string").describe() == "userId must be a string"
    assert Rejection(SCHEMA, "userId", "userId or anonymousId is required").describe() == (
        "userId or anonymousId is required"
    )


def test_enrich_corrects_clock_skew_from_sent_at() -> None:
    # The client's clock is 10 minutes fast: it says it sent at 12:10 what happened at 12:05.
    event = enrich(
        {
            "type": "track",
            "userId": "u",
            "event": "x",
            "timestamp": "2025-01-01T12:05:00Z",
            "sentAt": "2025-01-01T12:10:00Z",
        },
        "web",
        RECEIVED,
    )
    assert event["timestamp"] == "2025-01-01T11:55:00.000Z"
    assert event["originalTimestamp"] == "2025-01-01T12:05:00Z"
    assert event["receivedAt"] == "2025-01-01T12:00:00.000Z"
    assert event["sourceId"] == "web"
    assert event["messageId"]


def test_enrich_uses_batch_sent_at_and_defaults_timestamp() -> None:
    skewed = enrich(
        {"type": "track", "userId": "u", "timestamp": "2025-01-01T11:00:00Z"},
        "web",
        RECEIVED,
        batch_sent_at="2025-01-01T11:30:00Z",
    )
    assert skewed["timestamp"] == "2025-01-01T11:30:00.000Z"
    plain = enrich({"type": "track", "userId": "u"}, "web", RECEIVED)
    assert plain["timestamp"] == plain["receivedAt"]
    assert enrich({"messageId": "keep"}, "s", RECEIVED)["messageId"] == "keep"


def test_the_libraries_full_shapes_pass_unchanged() -> None:
    """What segment-analytics-python and rudder-sdk-python send, field for field."""
    sent = {
        "type": "track",
        "userId": "u1",
        "anonymousId": None,
        "event": "Order Completed",
        "properties": {"order_id": "o1", "products": [{"product_id": "p1", "price": 3}]},
        "context": {
            "library": {"name": "analytics-python", "version": "2.4.0"},
            "traits": {"plan": "pro"},
        },
        "integrations": {"All": True, "Mixpanel": False},
        "_metadata": {"nodeVersion": "3.11"},
        "channel": "server",
        "messageId": "m-1",
        "timestamp": "2025-01-01T11:59:00+00:00",
        "sentAt": "2025-01-01T12:00:00+00:00",
        "rudderId": "r-1",
    }
    assert validate(sent, None) == sent
