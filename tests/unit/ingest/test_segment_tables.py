"""Segment's call types and id limit come from one table (shared/events.py) in every adapter."""

from __future__ import annotations

import pytest
from lumen.v1 import events_pb2

from services.ingest.grpc_api import event_to_dict
from services.ingest.openapi import openapi_document
from services.ingest.validation import SCHEMA, Rejection, validate
from shared.events import (
    EVENT_TYPES,
    MAX_ID_LENGTH,
    OBJECT_FIELDS,
    REQUIRED_FIELD_BY_TYPE,
    STRING_FIELDS,
)


def test_every_grpc_event_type_is_a_segment_call_type_and_back() -> None:
    named = {
        value.number: event_to_dict(events_pb2.Event(type=value.number))["type"]
        for value in events_pb2.EventType.DESCRIPTOR.values
        if value.number != events_pb2.EVENT_TYPE_UNSPECIFIED
    }
    assert sorted(named.values()) == sorted(EVENT_TYPES)
    for number, call_type in named.items():
        assert events_pb2.EventType.Name(number) == f"EVENT_TYPE_{call_type.upper()}"


@pytest.mark.parametrize("call_type", EVENT_TYPES)
def test_validation_and_openapi_require_the_same_field_per_call_type(call_type: str) -> None:
    required = REQUIRED_FIELD_BY_TYPE.get(call_type)
    schema = openapi_document()["components"]["schemas"][call_type.capitalize()]
    assert schema.get("required", []) == ([required] if required else [])
    if required is None:
        assert validate({"userId": "u"}, call_type)["type"] == call_type
        return
    with pytest.raises(Rejection) as refused:
        validate({"userId": "u"}, call_type)
    assert (refused.value.reason, refused.value.field) == (SCHEMA, required)
    assert validate({"userId": "u", required: "x"}, call_type)[required] == "x"


@pytest.mark.parametrize("field", ["userId", "anonymousId", "messageId"])
def test_ids_up_to_the_shared_limit_are_accepted(field: str) -> None:
    longest = {"userId": "u", field: "i" * MAX_ID_LENGTH}
    assert validate(longest, "identify")[field] == "i" * MAX_ID_LENGTH
    with pytest.raises(Rejection) as refused:
        validate({**longest, field: "i" * (MAX_ID_LENGTH + 1)}, "identify")
    assert refused.value.field == field


def test_every_segment_field_crosses_grpc_under_its_segment_name() -> None:
    event = events_pb2.Event(type=events_pb2.EVENT_TYPE_TRACK)
    for name in STRING_FIELDS:
        setattr(event, events_pb2.Event.DESCRIPTOR.fields_by_camelcase_name[name].name, name)
    for name in OBJECT_FIELDS:
        getattr(event, name).update({"from": name})
    decoded = event_to_dict(event)
    assert {name: decoded[name] for name in STRING_FIELDS} == {n: n for n in STRING_FIELDS}
    assert {name: decoded[name] for name in OBJECT_FIELDS} == {
        n: {"from": n} for n in OBJECT_FIELDS
    }


def test_the_openapi_schema_types_every_segment_field() -> None:
    common = openapi_document()["components"]["schemas"]["Common"]["properties"]
    assert {name: common[name]["type"] for name in STRING_FIELDS} == dict.fromkeys(
        STRING_FIELDS, "string"
    )
    assert {name: common[name]["type"] for name in OBJECT_FIELDS} == dict.fromkeys(
        OBJECT_FIELDS, "object"
    )
