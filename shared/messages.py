"""Typed, versioned messages of Lumen's own Kafka topics: one model per topic, its encoder and
its decoder. Writers build a model and send ``encode()``; readers ``decode()`` the record value.

The JSON keeps the camelCase names the topics have always carried, plus ``schemaVersion``.
Version rule: a field added with a default keeps the version (readers ignore names they do not
know); a change an older reader would misread bumps it. A record without ``schemaVersion`` is
version 1, the shape written before the field existed; a reader refuses versions newer than
its own with ``MessageError``, like any value that does not match its model.

``events.raw`` and ``events.dlq`` carry Segment events and their rejections: their contract is
the event model (``shared.events``, docs/event-model.md), not this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.topics import PROFILES_UPDATED, SUPPORT_INTENTS, SUPPORT_MESSAGES, TopicSpec

SCHEMA_VERSION = 1

# Conversation and message ids are the producer's own: a string, or a number as it came.
ExternalId = str | int | None


class MessageError(ValueError):
    """A record value that is not a valid message of its topic."""


class Message(BaseModel):
    """Base of every topic message: camelCase on the wire, ``schemaVersion`` first."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")
    topic: ClassVar[TopicSpec]

    schema_version: int = Field(SCHEMA_VERSION, alias="schemaVersion")

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, version: int) -> int:
        if not 1 <= version <= SCHEMA_VERSION:
            raise ValueError(
                f"schemaVersion {version} is not one this reader knows (1..{SCHEMA_VERSION})"
            )
        return version

    def encode(self) -> bytes:
        """The record value: compact JSON with the wire names; fields the writer left unset
        stay off the wire, ``schemaVersion`` is always on it."""
        return orjson.dumps(self._wire())

    def _wire(self, exclude: set[str] | None = None) -> dict[str, Any]:
        body = self.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude=exclude)
        return {"schemaVersion": self.schema_version, **body}

    @classmethod
    def decode(cls, raw: bytes | str | None) -> Self:
        """A record value as this topic's message; ``MessageError`` says what is wrong."""
        try:
            value = orjson.loads(raw if raw is not None else b"")
        except orjson.JSONDecodeError:
            raise MessageError("not JSON") from None
        if not isinstance(value, dict):
            raise MessageError("not a JSON object")
        try:
            return cls.model_validate(value)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()
            )
            raise MessageError(problems) from None


class SupportMessage(Message):
    """``support.messages``, keyed by conversation: a customer-support message to classify.

    Producers may add their own fields (``channel``, ``dataset``, ...); they are kept on the
    wire and ignored by the router."""

    model_config = ConfigDict(extra="allow")
    topic: ClassVar[TopicSpec] = SUPPORT_MESSAGES

    conversation_id: ExternalId = Field(None, alias="conversationId")
    message_id: ExternalId = Field(None, alias="messageId")
    text: str | None = None  # missing or blank: published to support.intents, error "no text"
    sent_at: str | None = Field(None, alias="sentAt")  # ISO 8601, UTC


class IntentAlternative(BaseModel):
    model_config = ConfigDict(frozen=True)

    intent: str
    confidence: float


class SupportIntent(Message):
    """``support.intents``, keyed by conversation: one classified and routed support message.

    A message that could not be classified has ``intent`` null, ``outOfScope`` true, the
    out-of-scope route and ``error`` (the only field left out when it is null)."""

    topic: ClassVar[TopicSpec] = SUPPORT_INTENTS

    conversation_id: ExternalId = Field(None, alias="conversationId")
    message_id: ExternalId = Field(None, alias="messageId")
    route: str
    model_name: str = Field(alias="modelName")
    model_version: str = Field(alias="modelVersion")
    classified_at: str = Field(alias="classifiedAt")  # ISO 8601, UTC, "Z"
    intent: str | None
    confidence: float
    out_of_scope: bool = Field(alias="outOfScope")
    alternatives: list[IntentAlternative] = Field(default_factory=list)
    error: str | None = None

    def encode(self) -> bytes:
        return orjson.dumps(self._wire(exclude={"error"} if self.error is None else None))


class ProfileUpdated(Message):
    """``profiles.updated`` (compacted), keyed by profile: the compact summary after a change.
    An erased or merged-away profile gets a tombstone (a null value) instead."""

    topic: ClassVar[TopicSpec] = PROFILES_UPDATED

    key: str
    user_id: str | None = Field(None, alias="userId")
    version: int  # the profile document's version, not the message's
    applied: int  # events of the batch applied to this profile
    last_seen: str | None = Field(None, alias="lastSeen")
    updated_at: str | None = Field(None, alias="updatedAt")
    recent_items: list[str] = Field(default_factory=list, alias="recentItems")  # last 10
    segment: str | None = None  # the RFM segment, from the first purchase on

    @classmethod
    def decode_record(cls, raw: bytes | None) -> ProfileUpdated | None:
        """A record value of the topic: the summary, or None for a tombstone."""
        return None if raw is None else cls.decode(raw)


def encode_profile_updated(summary: Mapping[str, Any] | None) -> bytes | None:
    """The record value of a profile's summary, in ``ProfileUpdated``'s wire names (``None``:
    the tombstone of an erased one).

    The updater sends one per changed profile of every batch, so the summary is encoded as it
    is, with the version added, instead of through the model: validating it cost about 20 times
    the encoding. Its shape is held by the tests, which decode the updater's output with
    ``ProfileUpdated``."""
    if summary is None:
        return None
    return orjson.dumps({"schemaVersion": SCHEMA_VERSION, **summary})


MESSAGES: dict[str, type[Message]] = {
    model.topic.name: model for model in (SupportMessage, SupportIntent, ProfileUpdated)
}
