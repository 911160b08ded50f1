"""Typed, versioned messages of Lumen's own Kafka topics: one model per topic, its encoder and
its decoder. Writers build a model and send ``encode()``; readers ``decode()`` the record value.

The JSON keeps the camelCase names the topics have always carried, plus ``schemaVersion``.
Version rule: a field added with a default keeps the version (readers ignore names they do not
know); a change an older reader would misread bumps it. A record without ``schemaVersion`` is
version 1, the shape written before the field existed; a reader refuses versions newer than
its own with ``MessageError``, like any value that does not match its model. Versions are per
topic (``latest_version``): ``support.intents`` is at 2, every other topic at 1.

``support.intents`` version 2 adds one optional object, ``suggestion`` (the support
assistant's reply, or its hand-off): every version-1 field keeps its name and meaning, so a
reader that only uses them reads version 2 records unchanged. A record without a suggestion is
still written as version 1.

``events.raw`` and ``events.dlq`` carry Segment events and their rejections: their contract is
the event model (``shared.events``, docs/event-model.md), not this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.topics import (
    PROFILES_UPDATED,
    SUPPORT_FEEDBACK,
    SUPPORT_INTENTS,
    SUPPORT_LABELS,
    SUPPORT_MESSAGES,
    TopicSpec,
)

SCHEMA_VERSION = 1

# Conversation and message ids are the producer's own: a string, or a number as it came.
ExternalId = str | int | None


class MessageError(ValueError):
    """A record value that is not a valid message of its topic."""


class Message(BaseModel):
    """Base of every topic message: camelCase on the wire, ``schemaVersion`` first."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")
    topic: ClassVar[TopicSpec]
    latest_version: ClassVar[int] = SCHEMA_VERSION  # the newest version of this topic's shape

    schema_version: int = Field(SCHEMA_VERSION, alias="schemaVersion")

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, version: int) -> int:
        if not 1 <= version <= cls.latest_version:
            raise ValueError(
                f"schemaVersion {version} is not one this reader knows (1..{cls.latest_version})"
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


HandoffReason = Literal["out_of_scope", "low_confidence", "no_answer"]


class SuggestedPassage(BaseModel):
    """A knowledge-base passage the assistant found for a message, best first."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    article_id: str = Field(alias="articleId")
    title: str
    score: float  # cosine similarity, plus the intent boost when the article is tagged with it


class Suggestion(BaseModel):
    """The assistant's answer to one support message (``support.intents`` version 2).

    ``text`` is a reply assembled from the best knowledge-base passage (retrieval, not
    generation). ``handoff`` true: a human should answer (``handoffReason`` says why) and
    ``text`` is the hand-off notice."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    text: str
    confidence: float
    handoff: bool
    handoff_reason: HandoffReason | None = Field(None, alias="handoffReason")
    article_id: str | None = Field(None, alias="articleId")
    article_title: str | None = Field(None, alias="articleTitle")
    passages: list[SuggestedPassage] = Field(default_factory=list)
    context_messages: int = Field(0, alias="contextMessages")  # earlier turns embedded with it
    knowledge_base: str = Field("", alias="knowledgeBase")  # the passages' version (a digest)
    encoder: str = ""  # "name:version" of the text encoder


class SupportIntent(Message):
    """``support.intents``, keyed by conversation: one classified and routed support message.

    A message that could not be classified has ``intent`` null, ``outOfScope`` true, the
    out-of-scope route and ``error`` (the only field left out when it is null). Version 2
    adds ``suggestion``, written only when the assistant answered."""

    topic: ClassVar[TopicSpec] = SUPPORT_INTENTS
    latest_version: ClassVar[int] = 2

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
    suggestion: Suggestion | None = None

    def encode(self) -> bytes:
        left_out = {name for name in ("error", "suggestion") if getattr(self, name) is None}
        wire = self._wire(exclude=left_out or None)
        if self.suggestion is not None:
            wire["schemaVersion"] = max(2, self.schema_version)
        return orjson.dumps(wire)


FeedbackAction = Literal["accept", "edit", "reject"]


class SupportFeedback(Message):
    """``support.feedback``, keyed by conversation: what an agent did with a suggested reply.

    ``messageId``, ``intent`` and the model name and version are those of the
    ``support.intents`` record that carried the suggestion."""

    topic: ClassVar[TopicSpec] = SUPPORT_FEEDBACK

    conversation_id: ExternalId = Field(None, alias="conversationId")
    message_id: ExternalId = Field(None, alias="messageId")
    action: FeedbackAction
    intent: str | None = None
    model_name: str = Field("", alias="modelName")
    model_version: str = Field("", alias="modelVersion")
    article_id: str | None = Field(None, alias="articleId")
    agent_id: str | None = Field(None, alias="agentId")
    sent_at: str | None = Field(None, alias="sentAt")  # ISO 8601, UTC


class SupportLabel(Message):
    """``support.labels``, keyed by conversation: an agent's final intent for one support
    message (``messageId`` of its ``support.messages`` record, in the same conversation).

    ``label`` ``oos`` or empty: the message is out of scope. A later label of the same message
    (by ``labelledAt``) replaces an earlier one."""

    topic: ClassVar[TopicSpec] = SUPPORT_LABELS

    conversation_id: ExternalId = Field(None, alias="conversationId")
    message_id: str | int = Field(alias="messageId")
    label: str = ""
    agent_id: str | None = Field(None, alias="agentId")
    labelled_at: str | None = Field(None, alias="labelledAt")  # ISO 8601, UTC


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
    model.topic.name: model
    for model in (SupportMessage, SupportIntent, ProfileUpdated, SupportFeedback, SupportLabel)
}
