"""Typed topic messages: the JSON each writer puts on the wire, and what readers accept."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from services.inference.intent import IntentResult
from services.inference.support import output_record, parse_message
from shared.messages import (
    MESSAGES,
    SCHEMA_VERSION,
    MessageError,
    ProfileUpdated,
    SupportIntent,
    SupportLabel,
    SupportMessage,
    encode_profile_updated,
)
from shared.packed_ids import pack_sequence
from shared.topics import (
    PROFILES_UPDATED,
    SUPPORT_FEEDBACK,
    SUPPORT_INTENTS,
    SUPPORT_LABELS,
    SUPPORT_MESSAGES,
)

ROUTING = {"refund": "payments", "out_of_scope": "human-triage", "default": "general"}
MODEL = ("intent-classifier", "3")


def test_every_topic_with_a_model_is_declared_once() -> None:
    assert set(MESSAGES) == {
        SUPPORT_MESSAGES.name,
        SUPPORT_INTENTS.name,
        PROFILES_UPDATED.name,
        SUPPORT_FEEDBACK.name,
        SUPPORT_LABELS.name,
    }
    assert SCHEMA_VERSION == 1


def test_a_label_names_its_message_and_needs_the_message_id() -> None:
    label = SupportLabel(
        conversation_id="c-1", message_id=7, label="refund", agent_id="a-2", labelled_at="x"
    )
    wire = orjson.loads(label.encode())
    assert wire == {
        "schemaVersion": 1,
        "conversationId": "c-1",
        "messageId": 7,
        "label": "refund",
        "agentId": "a-2",
        "labelledAt": "x",
    }
    assert SupportLabel.decode(label.encode()) == label
    with pytest.raises(MessageError, match="messageId"):
        SupportLabel.decode(b'{"conversationId": "c-1", "label": "refund"}')


def test_a_classified_message_has_todays_fields_plus_the_schema_version() -> None:
    message, error = parse_message(
        b'{"conversationId": "c-1", "messageId": 7, "text": "my refund?"}', 2000
    )
    result = IntentResult("refund", 0.91234567, False, [("refund", 0.91234567), ("card", 0.05)])
    wire = orjson.loads(output_record(message, result, error, ROUTING, MODEL).encode())
    classified_at = wire.pop("classifiedAt")
    assert datetime.fromisoformat(classified_at).tzinfo is not None and classified_at[-1] == "Z"
    assert wire == {
        "schemaVersion": 1,
        "conversationId": "c-1",
        "messageId": 7,
        "route": "payments",
        "modelName": "intent-classifier",
        "modelVersion": "3",
        "intent": "refund",
        "confidence": 0.912346,
        "outOfScope": False,
        "alternatives": [
            {"intent": "refund", "confidence": 0.912346},
            {"intent": "card", "confidence": 0.05},
        ],
    }


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (None, "not JSON"),
        (b'{"conversationId": "c-1", "text": "   "}', "no text"),
        (b'{"conversationId": "c-1"}', "no text"),
        (b'{"conversationId": "c-1", "text": 42}', "text: Input should be a valid string"),
        (b'{"text": "hi", "schemaVersion": 2}', "schemaVersion 2 is not one this reader knows"),
    ],
)
def test_an_unclassifiable_message_is_routed_out_of_scope_with_its_reason(
    raw: bytes | None, reason: str
) -> None:
    message, error = parse_message(raw, 2000)
    assert error is not None and reason in error
    wire = orjson.loads(output_record(message, None, error, ROUTING, MODEL).encode())
    assert wire["error"] == error and wire["route"] == "human-triage"
    assert (wire["intent"], wire["outOfScope"], wire["alternatives"]) == (None, True, [])
    assert SupportIntent.decode(orjson.dumps(wire)).error == error


def test_a_message_without_schema_version_reads_as_version_1_and_keeps_extra_fields() -> None:
    raw = orjson.dumps(
        {"conversationId": "banking77-0", "text": "x" * 50, "channel": "chat", "sentAt": "t"}
    )
    message, error = parse_message(raw, max_chars=10)
    assert error is None and message.schema_version == 1 and message.text == "x" * 10
    assert orjson.loads(message.encode())["channel"] == "chat"


def test_the_seed_writes_support_messages_readers_accept() -> None:
    seeded: dict[str, object] = {"conversationId": "c-9", "text": "card lost", "sentAt": "now"}
    seeded["dataset"] = {"name": "banking77", "intent": "lost_or_stolen_card"}
    wire = orjson.loads(SupportMessage.model_validate(seeded).encode())
    assert wire == {**seeded, "schemaVersion": 1}


def test_readers_of_support_intents_take_the_older_unversioned_records() -> None:
    older = {
        "conversationId": "c-1",
        "messageId": "m-1",
        "route": "payments",
        "modelName": "intent-classifier",
        "modelVersion": "1",
        "classifiedAt": "2026-01-01T00:00:00Z",
        "intent": "refund",
        "confidence": 0.9,
        "outOfScope": False,
        "alternatives": [{"intent": "refund", "confidence": 0.9}],
    }
    intent = SupportIntent.decode(orjson.dumps(older))
    assert intent.schema_version == 1 and intent.intent == "refund" and intent.error is None
    assert orjson.loads(intent.encode()) == {**older, "schemaVersion": 1}
    with pytest.raises(MessageError, match="route"):
        SupportIntent.decode(orjson.dumps({k: v for k, v in older.items() if k != "route"}))


def test_profiles_updated_carries_the_summary_unchanged_plus_the_version() -> None:
    from services.profiles.updates import summary

    at = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    doc = {
        "_id": "u-ü",
        "userId": "u-ü",
        "version": 4,
        "lastSeen": at,
        "updatedAt": at,
        "recentItems": pack_sequence([str(i) for i in range(12)]),
        "rfm": {"segment": "champion"},
    }
    body = summary(doc, 3)
    value = encode_profile_updated(body)
    assert value is not None and "u-ü".encode() in value  # UTF-8, not \\u escapes
    assert orjson.loads(value) == {**body, "schemaVersion": 1}
    # The updater encodes its summary without the model: every wire name must be the model's.
    wire_names = {field.alias or name for name, field in ProfileUpdated.model_fields.items()}
    assert set(orjson.loads(value)) == wire_names
    decoded = ProfileUpdated.decode_record(value)
    assert decoded is not None and decoded.recent_items == [str(i) for i in range(2, 12)]
    assert (decoded.key, decoded.version, decoded.applied) == ("u-ü", 4, 3)
    assert decoded.segment == "champion" and decoded.last_seen == "2026-03-01T12:30:00Z"


def test_a_profiles_updated_tombstone_stays_a_null_value() -> None:
    assert encode_profile_updated(None) is None
    assert ProfileUpdated.decode_record(None) is None
